package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
	"github.com/seed82ac63c1/fabric/workers"
)

var secret = []byte("durable-test-secret-0123456789ab")

// durableGateway starts a durable-mode gateway on ns.
func durableGateway(t *testing.T, ns *server.Server, name string, cfg gateway.Config) *fabrictest.Gateway {
	t.Helper()
	cfg.ResumeSecret = secret
	if cfg.Durable == nil {
		cfg.Durable = &gateway.DurableConfig{Storage: "memory"}
	}
	return fabrictest.StartGateway(t, fabrictest.Connect(t, ns, name), cfg)
}

// kill ends g as a crash would: its clients' TCP connections drop and it
// leaves NATS, with no shutdown of any kind.
func kill(g *fabrictest.Gateway) {
	g.Server.CloseClientConnections()
	g.Server.Listener.Close()
	g.NATS().Close()
}

// checkCount asserts demo/count's events n=n from seq after+1 on: every
// remaining one exactly once, in order, through :finish.
func checkCount(t *testing.T, msgs []protocol.Message, n int, after uint64) {
	t.Helper()
	want := uint64(n) + 2 - after
	if uint64(len(msgs)) != want {
		t.Fatalf("got %d events after seq %d, want %d: %s", len(msgs), after, want, dump(msgs))
	}
	for i, m := range msgs {
		seq := after + uint64(i) + 1
		if m.Seq != seq {
			t.Fatalf("event %d has seq %d, want %d: %s", i, m.Seq, seq, dump(msgs))
		}
		switch {
		case seq <= uint64(n):
			if m.Type != "demo/count:progress" || string(m.Payload) != fmt.Sprintf(`{"i":%d}`, seq) {
				t.Fatalf("seq %d: %s", seq, dump(msgs))
			}
		case seq == uint64(n)+1:
			if m.Type != "demo/count:response" {
				t.Fatalf("seq %d: %s", seq, dump(msgs))
			}
		default:
			if m.Type != "demo/count:finish" {
				t.Fatalf("seq %d: %s", seq, dump(msgs))
			}
		}
	}
}

func resend(ws *fabrictest.WS, typ, id string, payload any, after uint64) {
	ws.Send(map[string]any{"type": typ, "id": id, "payload": payload, "after": after})
}

// A client whose connection drops mid-stream resumes on the same gateway
// and gets every remaining event exactly once, including those sent while
// it was away.
func TestDurableResumeSameGatewayLosesNothing(t *testing.T) {
	ns := fabrictest.NATS(t)
	g := durableGateway(t, ns, "gw", gateway.Config{})
	fabrictest.StartDemoWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{})

	ws, w := fabrictest.Hello(t, g.URL)
	count := map[string]int{"n": 30, "intervalMs": 10}
	ws.Request("demo/count", "c1", count)
	for i := 0; i < 5; i++ {
		ws.Read()
	}
	dropped(t, g, ws)
	time.Sleep(60 * time.Millisecond) // the worker goes on meanwhile

	ws2 := fabrictest.Dial(t, g.URL)
	if w2 := ws2.Hello(resumeHello(w)); !w2.Resumed {
		t.Fatalf("not resumed: %+v", w2)
	}
	resend(ws2, "demo/count", "c1", count, 5)
	checkCount(t, ws2.Collect("c1")["c1"], 30, 5)
}

// The gateway dies mid-stream: the client resumes on another gateway, which
// adopts the session from the store and replays, then streams live.
func TestDurableResumeAfterGatewayDies(t *testing.T) {
	ns := fabrictest.NATS(t)
	g1 := durableGateway(t, ns, "gw1", gateway.Config{})
	g2 := durableGateway(t, ns, "gw2", gateway.Config{})
	fabrictest.StartDemoWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{})

	ws, w := fabrictest.Hello(t, g1.URL)
	count := map[string]int{"n": 40, "intervalMs": 10}
	ws.Request("demo/count", "c1", count)
	ws.Request("demo/count", "c2", map[string]int{"n": 3})
	var after uint64
	for after < 7 {
		if m := ws.Read(); m.ID == "c1" {
			after = m.Seq
		}
	}
	kill(g1)

	ws2 := fabrictest.Dial(t, g2.URL)
	w2 := ws2.Hello(resumeHello(w))
	if !w2.Resumed || w2.SessionID != w.SessionID || w2.Gateway != g2.ID() {
		t.Fatalf("welcome %+v, want session %s resumed on %s", w2, w.SessionID, g2.ID())
	}
	resend(ws2, "demo/count", "c1", count, after)
	resend(ws2, "demo/count", "c2", map[string]int{"n": 3}, 0)
	got := ws2.Collect("c1", "c2")
	checkCount(t, got["c1"], 40, after)
	checkCount(t, got["c2"], 3, 0) // finished while nobody listened: all of it, from the store
}

// NATS routes a takeover request to a gateway that has just died until it
// notices the closed connection. A resume caught in that window publishes
// its request again: once NATS has dropped the dead gateway's interest, it
// gets no responders and adopts the session, instead of waiting out
// TakeoverTimeout (here a minute: more than the client waits).
func TestDurableResumeWhileDeadGatewayLingers(t *testing.T) {
	ns := fabrictest.NATS(t)
	g1 := durableGateway(t, ns, "gw1", gateway.Config{})
	g2 := durableGateway(t, ns, "gw2", gateway.Config{TakeoverTimeout: time.Minute})
	fabrictest.StartDemoWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{})

	ws, w := fabrictest.Hello(t, g1.URL)
	count := map[string]int{"n": 10, "intervalMs": 10}
	ws.Request("demo/count", "c1", count)
	after := ws.Read().Seq
	kill(g1)

	// The dead gateway's interest, still routed to: it takes the first
	// two requests, answers nothing, and is gone. An unanswered request is
	// no proof that nobody holds the session: only no responders is.
	ghost := fabrictest.Connect(t, ns, "ghost")
	space, _ := subjects.NewSpace("")
	var requests atomic.Int32
	var sub *nats.Subscription
	sub, err := ghost.Subscribe(space.Takeover(w.SessionID), func(*nats.Msg) {
		if requests.Add(1) == 2 {
			_ = sub.Unsubscribe()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ghost.Flush(); err != nil {
		t.Fatal(err)
	}

	ws2 := fabrictest.Dial(t, g2.URL)
	w2 := ws2.Hello(resumeHello(w))
	if !w2.Resumed || w2.SessionID != w.SessionID || w2.Gateway != g2.ID() {
		t.Fatalf("welcome %+v, want session %s resumed on %s", w2, w.SessionID, g2.ID())
	}
	if n := requests.Load(); n != 2 {
		t.Fatalf("the lingering gateway got %d takeover requests, want 2", n)
	}
	resend(ws2, "demo/count", "c1", count, after)
	checkCount(t, ws2.Collect("c1")["c1"], 10, after)
}

// Each (session, id) runs once: sent again, a request is replayed, not run.
// An id the ledger never saw runs as new, even re-sent with after=0; one
// re-sent with after > 0 that it does not know is interrupted.
func TestDurableRunsEachRequestOnce(t *testing.T) {
	ns := fabrictest.NATS(t)
	g := durableGateway(t, ns, "gw", gateway.Config{})
	var runs atomic.Int32
	fabrictest.StartWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{}, func(w *workers.Worker) error {
		return w.HandleRaw("test/once", workers.HandlerFunc(func(ctx context.Context, req *workers.Request, s *workers.Stream) error {
			runs.Add(1)
			return s.Respond(json.RawMessage(`"done"`))
		}))
	})

	ws, w := fabrictest.Hello(t, g.URL)
	first := ws.Call("test/once", "o1", nil)
	dropped(t, g, ws)
	ws2 := fabrictest.Dial(t, g.URL)
	ws2.Hello(resumeHello(w))
	again := ws2.Call("test/once", "o1", nil)
	if runs.Load() != 1 || dump(again) != dump(first) {
		t.Fatalf("ran %d times; first %s, again %s", runs.Load(), dump(first), dump(again))
	}

	resend(ws2, "test/once", "new", nil, 0)
	if got := ws2.Collect("new")["new"]; len(got) != 2 || got[0].Type != "test/once:response" || runs.Load() != 2 {
		t.Fatalf("an unseen id re-sent with after=0: %s, runs %d", dump(got), runs.Load())
	}
	resend(ws2, "test/once", "lost", nil, 4)
	checkInterrupted(t, ws2.Collect("lost")["lost"], "test/once", "lost", 4)
}

// A request that times out while its client is away ends with the timeout,
// stored: the client gets it when it resumes.
func TestDurableTimeoutWhileAway(t *testing.T) {
	ns := fabrictest.NATS(t)
	g := durableGateway(t, ns, "gw", gateway.Config{RequestTimeout: 200 * time.Millisecond})
	fabrictest.StartDemoWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{})
	ws, w := fabrictest.Hello(t, g.URL)
	ws.Request("demo/silent", "s1", nil)
	dropped(t, g, ws)
	waitMetric(t, g, `fabric_gateway_requests_total{outcome="timeout",route="demo/silent"} 1`)

	ws2 := fabrictest.Dial(t, g.URL)
	ws2.Hello(resumeHello(w))
	resend(ws2, "demo/silent", "s1", nil, 0)
	got := ws2.Collect("s1")["s1"]
	if len(got) != 2 || got[0].Seq != 1 || !strings.Contains(string(got[0].Payload), `"code":"timeout"`) || got[1].Seq != 2 {
		t.Fatalf("got %s, want the stored timeout", dump(got))
	}
}

// A client that closes normally ends its session: it cannot be resumed,
// on this gateway or another.
func TestDurableNormalCloseEndsSession(t *testing.T) {
	ns := fabrictest.NATS(t)
	g1 := durableGateway(t, ns, "gw1", gateway.Config{})
	g2 := durableGateway(t, ns, "gw2", gateway.Config{})
	ws, w := fabrictest.Hello(t, g1.URL)
	ws.Close()
	waitMetric(t, g1, "fabric_gateway_sessions 0")
	ws2 := fabrictest.Dial(t, g2.URL)
	if w2 := ws2.Hello(resumeHello(w)); w2.Resumed {
		t.Fatalf("a closed session was resumed: %+v", w2)
	}
}

// A client too slow for its events is closed with 4001; in durable mode it
// resumes and gets every event it missed.
func TestDurableSlowConsumerResumesWithNothingLost(t *testing.T) {
	ns := fabrictest.NATS(t)
	g := durableGateway(t, ns, "gw", gateway.Config{MaxQueueBytes: 64 << 10})
	// 16 KiB events, 32 MiB in all: more than the loopback socket buffers
	// of both ends can hold, however far the kernel grows them, so the
	// queue overflows whatever the machine.
	const n, size = 2000, 16 << 10
	pad := strings.Repeat("x", size)
	fabrictest.StartWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{}, func(w *workers.Worker) error {
		return w.HandleRaw("test/flood", workers.HandlerFunc(func(ctx context.Context, req *workers.Request, s *workers.Stream) error {
			for i := 1; i <= n; i++ {
				if err := s.Progress(map[string]any{"i": i, "pad": pad}); err != nil {
					return err
				}
			}
			return nil
		}))
	})
	ws, w := fabrictest.Hello(t, g.URL)
	ws.Request("test/flood", "big", nil)
	// Read nothing until the gateway gives up on this client, then what
	// reached the socket, up to the close.
	waitMetric(t, g, "fabric_gateway_slow_consumers_total 1")
	var after uint64
	for {
		m, err := ws.TryRead(5 * time.Second)
		if err != nil {
			break
		}
		if m.ID == "big" {
			after = m.Seq
		}
	}
	if after >= n {
		t.Fatalf("the client got %d events before the close: not slow enough to test", after)
	}
	ws2 := fabrictest.Dial(t, g.URL)
	if w2 := ws2.Hello(resumeHello(w)); !w2.Resumed {
		t.Fatalf("not resumed: %+v", w2)
	}
	resend(ws2, "test/flood", "big", nil, after)
	got := ws2.Collect("big")["big"]
	if len(got) != n+1-int(after) {
		t.Fatalf("got %d events after seq %d, want %d", len(got), after, n+1-int(after))
	}
	for i, m := range got {
		seq := after + uint64(i) + 1
		var p struct{ I uint64 }
		if m.Seq != seq || (seq <= n && (m.Type != "test/flood:progress" || m.Decode(&p) != nil || p.I != seq)) ||
			(seq == n+1 && m.Type != "test/flood:finish") {
			t.Fatalf("event %d: %s %d, want seq %d", i, m.Type, m.Seq, seq)
		}
	}
}

// A durable gateway that shuts down closes its clients with 1001 and lets
// their requests run on: the clients resume on another gateway, with
// nothing lost, whether it takes the session over from the one shutting
// down (handoff) or adopts it from the store once that one is gone.
func TestDurableShutdownLosesNothing(t *testing.T) {
	for _, handoff := range []time.Duration{-1, 5 * time.Second} {
		t.Run(fmt.Sprintf("handoff=%v", handoff), func(t *testing.T) {
			ns := fabrictest.NATS(t)
			g1 := durableGateway(t, ns, "gw1", gateway.Config{HandoffTimeout: handoff})
			g2 := durableGateway(t, ns, "gw2", gateway.Config{})
			fabrictest.StartDemoWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{})

			ws, w := fabrictest.Hello(t, g1.URL)
			count := map[string]int{"n": 40, "intervalMs": 10}
			ws.Request("demo/count", "c1", count)
			var after uint64
			for after < 5 {
				after = ws.Read().Seq
			}
			stopped := make(chan error, 1)
			go func() { stopped <- g1.Shutdown(context.Background()) }()
			var code int
			for code == 0 {
				m, err := ws.TryRead(10 * time.Second)
				if err != nil {
					code = ws.CloseCode()
					break
				}
				after = m.Seq
			}
			if code != int(protocol.CloseGoingAway) {
				t.Fatalf("close code %d, want 1001", code)
			}
			ws2 := fabrictest.Dial(t, g2.URL)
			if w2 := ws2.Hello(resumeHello(w)); !w2.Resumed {
				t.Fatalf("not resumed: %+v", w2)
			}
			resend(ws2, "demo/count", "c1", count, after)
			checkCount(t, ws2.Collect("c1")["c1"], 40, after)
			if err := <-stopped; err != nil {
				t.Fatal(err)
			}
		})
	}
}
