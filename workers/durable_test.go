package workers_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed82ac63c1/fabric/workers"
)

// In durable mode (the request carries Fabric-Durable) a worker publishes
// each event again until the event store acknowledges it. A store that
// goes away mid-stream (its stream deleted, then made again) still ends up
// holding every event from the first one it missed, in order, through the
// finish; and the finish waits for the store.
func TestDurableEventsReachTheStore(t *testing.T) {
	gate := make(chan struct{})
	_, b := newWorker(t, workers.Config{}, func(w *workers.Worker) {
		_ = w.HandleRaw("test/stream", workers.HandlerFunc(func(ctx context.Context, req *workers.Request, s *workers.Stream) error {
			for i := 1; i <= 20; i++ {
				if i == 11 {
					<-gate
				}
				if err := s.Progress(map[string]int{"i": i}); err != nil {
					return err
				}
			}
			return s.Respond("done")
		}))
	})
	js, err := jetstream.New(b.nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	streamCfg := jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"fabric.evt.>"}, Storage: jetstream.MemoryStorage}
	stream, err := js.CreateStream(ctx, streamCfg)
	if err != nil {
		t.Fatal(err)
	}

	live := make(chan *nats.Msg, 1024)
	sub, err := b.nc.ChanSubscribe("fabric.evt."+session+".d1.>", live)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	req := &nats.Msg{Subject: "fabric.req.test.stream", Reply: "fabric.evt." + session + ".d1",
		Header: nats.Header{"Fabric-Id": {"d1"}, "Fabric-Session": {session}, "Fabric-Durable": {"1"}}}
	if err := b.nc.PublishMsg(req); err != nil {
		t.Fatal(err)
	}
	// The first ten are stored.
	waitStored(t, stream, 10)

	// The store goes away; the next events are published live but not
	// stored, and the worker tries them again.
	if err := js.DeleteStream(ctx, "EVENTS"); err != nil {
		t.Fatal(err)
	}
	close(gate)
	finishedLive := false
	for !finishedLive {
		select {
		case m := <-live:
			finishedLive = m.Subject == "fabric.evt."+session+".d1.test.stream.finish"
		case <-time.After(10 * time.Second):
			t.Fatal("no live finish")
		}
	}
	stream, err = js.CreateStream(ctx, streamCfg)
	if err != nil {
		t.Fatal(err)
	}

	// The new stream gets seq 11 to 22 (progress 11–20, response, finish)
	// in order; a repeat of an earlier seq is harmless (the gateway drops
	// it), a gap is not.
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	next := uint64(11)
	var got []string
	for next <= 22 {
		m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("stored %v, then: %v", got, err)
		}
		seq, _ := strconv.ParseUint(m.Headers().Get("Fabric-Seq"), 10, 64)
		got = append(got, fmt.Sprint(seq))
		switch {
		case seq == next:
			next++
		case seq > next:
			t.Fatalf("stored seq %d before %d: %v", seq, next, got)
		}
	}
}

// waitStored waits until stream holds n messages.
func waitStored(t *testing.T, stream jetstream.Stream, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := stream.Info(context.Background())
		if err == nil && info.State.Msgs >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream holds fewer than %d messages: %v", n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
