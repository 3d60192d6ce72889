package tail_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/internal/embeddednats"
	"github.com/seed82ac63c1/fabric/internal/tail"
)

// A watcher on a fabric's NATS: here a request and its first event,
// published by hand as a gateway and a worker would.
func ExampleStart() {
	dir, _ := os.MkdirTemp("", "tail-example-")
	defer os.RemoveAll(dir)
	ns, err := embeddednats.Start(embeddednats.Config{StoreDir: dir})
	if err != nil {
		panic(err)
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()

	records := make(chan tail.Record, 10)
	w, err := tail.Start(context.Background(), nc, tail.Config{PayloadBytes: 8}, func(r tail.Record) { records <- r })
	if err != nil {
		panic(err)
	}
	defer w.Stop()

	_ = nc.PublishMsg(&nats.Msg{Subject: "fabric.req.demo.count", Reply: "fabric.evt.S.m1",
		Header: nats.Header{"Fabric-Id": {"m1"}, "Fabric-Session": {"S"}}, Data: []byte(`{"n":3,"intervalMs":10}`)})
	_ = nc.PublishMsg(&nats.Msg{Subject: "fabric.evt.S.m1.demo.count.progress",
		Header: nats.Header{"Fabric-Id": {"m1"}, "Fabric-Seq": {"1"}}, Data: []byte(`{"i":1}`)})
	for range 2 {
		r := <-records
		fmt.Printf("%s %s/%s %s:%s seq=%d %q truncated=%v size=%d\n", r.Kind, r.Session, r.ID, r.Route, r.Suffix, r.Seq, r.Payload, r.Truncated, r.Size)
	}
	// Output:
	// request S/m1 demo/count: seq=0 "{\"n\":3,\"" truncated=true size=23
	// event S/m1 demo/count:progress seq=1 "{\"i\":1}" truncated=false size=7
}

func ExampleLine() {
	at := time.Date(2025, 6, 1, 14, 3, 7, 123e6, time.UTC)
	for _, r := range []tail.Record{
		{Time: at, Kind: tail.KindRequest, Session: "xMlfmDyWf0WvG_EY-0_Acw", ID: "m1", Route: "demo/count", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Payload: `{"n":3}`},
		{Time: at, Kind: tail.KindEvent, Session: "xMlfmDyWf0WvG_EY-0_Acw", ID: "m1", Route: "demo/count", Suffix: "progress", Seq: 1, Origin: tail.OriginWorker, Payload: `{"i":1}`},
		{Time: at, Kind: tail.KindEvent, Session: "xMlfmDyWf0WvG_EY-0_Acw", ID: "m2", Route: "demo/silent", Suffix: "error", Seq: 1, Origin: tail.OriginGateway, Payload: `{"code":"timeout","mes`, Truncated: true},
		{Time: at, Kind: tail.KindCancel, Session: "xMlfmDyWf0WvG_EY-0_Acw", ID: "m2", Route: "demo/silent"},
		{Time: at, Kind: tail.KindPush, Session: "xMlfmDyWf0WvG_EY-0_Acw", To: "session", Route: "chat/message", Suffix: "new", Payload: "{\"text\":\"\x1b[2J\"}"},
	} {
		fmt.Println(tail.Line(r))
	}
	// Output:
	// 14:03:07.123  xMlfmDyW  m1          → demo/count                  -     4bf92f3577b34da6a3ce929d0e0e4736  {"n":3}
	// 14:03:07.123  xMlfmDyW  m1          demo/count:progress           #1    -                                 {"i":1}
	// 14:03:07.123  xMlfmDyW  m2          demo/silent:error [gateway]   #1    -                                 {"code":"timeout","mes…
	// 14:03:07.123  xMlfmDyW  m2          ✕ cancel demo/silent          -     -
	// 14:03:07.123  xMlfmDyW  -           ⇢ push chat/message:new to session  -     -                                 {"text":"\x1b[2J"}
}
