package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed82ac63c1/fabric/internal/embeddednats"
	"github.com/seed82ac63c1/fabric/subjects"
)

// testStore opens a durable store on an embedded NATS server.
func testStore(t *testing.T) (*store, *nats.Conn) {
	t.Helper()
	ns, err := embeddednats.Start(embeddednats.Config{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := openStore(ctx, nc, subjects.MustSpace(""), DurableConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return st, nc
}

// TestReplayGroup: replays that start together read through one consumer,
// each gets its own request's events, in order, and nothing else; a replay
// whose client has no room leaves the group (errReplaySlow) and the next
// replay of its request runs alone; the consumer ends with its last member.
func TestReplayGroup(t *testing.T) {
	st, nc := testStore(t)
	st.groups.window = time.Second // every replay below starts within it, however slow the machine
	st.consumerIdle = time.Second  // a stopped consumer goes soon
	const requests, events = 20, 30
	// Interleaved, as many clients' streams are in the store.
	for e := 1; e <= events; e++ {
		for r := range requests {
			subject := subjects.Event(st.space.Reply("S", fmt.Sprintf("r%d", r)), "demo/count", "progress")
			if err := nc.Publish(subject, fmt.Appendf(nil, "%d", e)); err != nil {
				t.Fatal(err)
			}
		}
	}
	stream, err := st.js.Stream(context.Background(), st.stream)
	if err != nil {
		t.Fatal(err)
	}
	consumers := func() int {
		info, err := stream.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Consumers
	}
	awaitStored := time.Now().Add(10 * time.Second)
	for {
		info, err := stream.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == requests*events {
			break
		}
		if time.Now().After(awaitStored) {
			t.Fatalf("%d messages stored, want %d", info.State.Msgs, requests*events)
		}
		time.Sleep(10 * time.Millisecond)
	}

	var mu sync.Mutex
	got := make(map[string][]string)
	slowEnded := make(chan error, 1)
	stops := make([]func(), requests)
	var wg sync.WaitGroup
	for r := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("r%d", r)
			pace := func(context.Context) error { return nil }
			if r == 0 { // this client never has room
				pace = func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
			}
			stop, err := st.replay(context.Background(), "S", id, pace,
				func(m jetstream.Msg) {
					mu.Lock()
					got[id] = append(got[id], m.Subject()+" "+string(m.Data()))
					mu.Unlock()
				},
				func(err error) { slowEnded <- err })
			if err != nil {
				t.Error(err)
				return
			}
			stops[r] = stop
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if n := consumers(); n != 1 {
		t.Errorf("%d consumers for %d replays started together, want 1", n, requests)
	}
	if err := <-slowEnded; !errors.Is(err, errReplaySlow) {
		t.Fatalf("the slow replay ended with %v, want errReplaySlow", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r := 1; r < requests; r++ {
		id := fmt.Sprintf("r%d", r)
		for {
			mu.Lock()
			n := len(got[id])
			mu.Unlock()
			if n >= events || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		mu.Lock()
		evs := got[id]
		mu.Unlock()
		if len(evs) != events {
			t.Fatalf("%s: %d events, want %d", id, len(evs), events)
		}
		for e, ev := range evs {
			want := subjects.Event(st.space.Reply("S", id), "demo/count", "progress") + fmt.Sprintf(" %d", e+1)
			if ev != want {
				t.Fatalf("%s event %d: %q, want %q", id, e, ev, want)
			}
		}
	}
	if len(got["r0"]) != 0 {
		t.Errorf("the slow replay got %d events through the group", len(got["r0"]))
	}

	// The slow request's next replay runs alone, paced.
	var alone int
	stop, err := st.replay(context.Background(), "S", "r0", func(context.Context) error { return nil },
		func(jetstream.Msg) { mu.Lock(); alone++; mu.Unlock() }, func(error) {})
	if err != nil {
		t.Fatal(err)
	}
	if n := consumers(); n != 2 {
		t.Errorf("%d consumers with the group and the slow replay alone, want 2", n)
	}
	fabricEventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return alone == events })
	stop()
	for r := 1; r < requests; r++ {
		stops[r]()
	}
	stops[0]() // left already: a no-op
	fabricEventually(t, func() bool { return consumers() == 0 })
}

func fabricEventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
