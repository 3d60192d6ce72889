package inspector_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/internal/embeddednats"
	"github.com/seed82ac63c1/fabric/internal/inspector"
)

// An inspector on a fabric's NATS, its API served where the page reads it;
// here a worker's events, published by hand.
func ExampleStart() {
	dir, _ := os.MkdirTemp("", "inspector-example-")
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

	in, err := inspector.Start(context.Background(), nc, inspector.Config{NoRequests: true})
	if err != nil {
		panic(err)
	}
	defer in.Close()
	srv := httptest.NewServer(http.StripPrefix("/inspector/api", in.Handler()))
	defer srv.Close()

	traceparent := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for seq, suffix := range []string{"response", "finish"} {
		_ = nc.PublishMsg(&nats.Msg{Subject: "fabric.evt.S.m1.demo.echo." + suffix,
			Header: nats.Header{"Fabric-Id": {"m1"}, "Fabric-Seq": {fmt.Sprint(seq + 1)}, "traceparent": {traceparent}}})
	}
	_ = nc.Flush()
	for i := 0; i < 1000 && (len(in.Requests(inspector.Filter{})) == 0 || in.Requests(inspector.Filter{})[0].End == nil); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	r := in.Requests(inspector.Filter{ID: "m1"})[0]
	fmt.Println(r.Route, r.State, len(r.Events), r.TraceURL)

	resp, err := http.Get(srv.URL + "/inspector/api/requests?route=demo/echo")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("Content-Type"))
	// Output:
	// demo/echo finished 2 http://localhost:16686/trace/4bf92f3577b34da6a3ce929d0e0e4736
	// 200 OK application/json
}
