package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers"
)

func resumeHello(w protocol.Welcome) map[string]any {
	return map[string]any{"resume": map[string]string{"sessionId": w.SessionID, "resumeToken": w.ResumeToken}}
}

// dropped cuts a client's TCP connection without a close frame and waits
// until g has seen it go.
func dropped(t *testing.T, g *fabrictest.Gateway, ws *fabrictest.WS) {
	t.Helper()
	_ = ws.Conn.NetConn().Close()
	waitMetric(t, g, "fabric_gateway_connections 0")
}

func waitMetric(t *testing.T, g *fabrictest.Gateway, line string) {
	t.Helper()
	fabrictest.Eventually(t, 10*time.Second, func() bool {
		_, body := g.HTTPGet(t, "/metrics")
		return strings.Contains(body, line)
	})
}

// checkInterrupted asserts an :error{interrupted} + :finish numbered after+1
// and after+2.
func checkInterrupted(t *testing.T, msgs []protocol.Message, typ, id string, after uint64) {
	t.Helper()
	if len(msgs) != 2 ||
		msgs[0].Type != typ+":error" || msgs[0].ID != id || msgs[0].Seq != after+1 || !strings.Contains(string(msgs[0].Payload), `"code":"interrupted"`) ||
		msgs[1].Type != typ+":finish" || msgs[1].ID != id || msgs[1].Seq != after+2 {
		t.Fatalf("got %s, want interrupted at seq %d,%d", dump(msgs), after+1, after+2)
	}
}

func TestResumeSameGateway(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	ws, w1 := fabrictest.Hello(t, f.Gateway.URL)
	if w1.Resumed || len(w1.SessionID) < 22 || w1.Gateway != f.Gateway.ID() || w1.ResumeToken == "" {
		t.Fatalf("welcome %+v", w1)
	}
	count := map[string]int{"n": 1000, "intervalMs": 10}
	ws.Request("demo/count", "r1", count)
	if m := ws.Read(); m.ID != "r1" || m.Seq != 1 {
		t.Fatalf("got %+v", m)
	}
	dropped(t, f.Gateway, ws)

	ws2 := fabrictest.Dial(t, f.Gateway.URL)
	w2 := ws2.Hello(resumeHello(w1))
	if !w2.Resumed || w2.SessionID != w1.SessionID {
		t.Fatalf("resume: welcome %+v, want resumed session %s", w2, w1.SessionID)
	}
	// The unfinished request, re-sent with after, is interrupted, numbered
	// on from the client's last seq.
	ws2.Send(map[string]any{"type": "demo/count", "id": "r1", "payload": count, "after": 1})
	checkInterrupted(t, ws2.Collect("r1")["r1"], "demo/count", "r1", 1)
	ws2.Send(map[string]any{"type": "demo/count", "id": "r7", "payload": count, "after": 7})
	checkInterrupted(t, ws2.Collect("r7")["r7"], "demo/count", "r7", 7)
	// The resumed session serves new requests, and its new token resumes it too.
	checkEvents(t, "n", ws2.Call("demo/echo", "n", 1), want{"demo/echo:response", "1"}, want{"demo/echo:finish", ""})
	dropped(t, f.Gateway, ws2)
	ws3 := fabrictest.Dial(t, f.Gateway.URL)
	if w3 := ws3.Hello(resumeHello(w2)); !w3.Resumed || w3.SessionID != w1.SessionID {
		t.Fatalf("second resume: %+v", w3)
	}
}

func TestResumeRejected(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	_, w1 := fabrictest.Hello(t, f.Gateway.URL)
	other, w2 := fabrictest.Hello(t, f.Gateway.URL)
	_ = other
	for name, resume := range map[string]protocol.Welcome{
		"bad token":             {SessionID: w1.SessionID, ResumeToken: "AAAA"},
		"another session token": {SessionID: w1.SessionID, ResumeToken: w2.ResumeToken},
		"empty token":           {SessionID: w1.SessionID},
		"unknown session":       {SessionID: "AAAAAAAAAAAAAAAAAAAAAA", ResumeToken: w1.ResumeToken},
		"malformed session":     {SessionID: "a.b>", ResumeToken: w1.ResumeToken},
	} {
		t.Run(name, func(t *testing.T) {
			ws := fabrictest.Dial(t, f.Gateway.URL)
			w := ws.Hello(resumeHello(resume))
			if w.Resumed || w.SessionID == w1.SessionID || w.SessionID == w2.SessionID {
				t.Fatalf("welcome %+v: want a new session", w)
			}
			checkEvents(t, "x", ws.Call("demo/echo", "x", 1), want{"demo/echo:response", "1"}, want{"demo/echo:finish", ""})
		})
	}
}

func TestNormalCloseEndsSession(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	ws, w1 := fabrictest.Hello(t, f.Gateway.URL)
	if err := ws.Conn.WriteControl(8, []byte{0x03, 0xe8}, time.Now().Add(time.Second)); err != nil { // close 1000
		t.Fatal(err)
	}
	if code := ws.CloseCode(); code != 1000 {
		t.Fatalf("close answer %d", code)
	}
	waitMetric(t, f.Gateway, "fabric_gateway_sessions 0")
	ws2 := fabrictest.Dial(t, f.Gateway.URL)
	if w := ws2.Hello(resumeHello(w1)); w.Resumed || w.SessionID == w1.SessionID {
		t.Fatalf("resume after a normal close: %+v", w)
	}
}

func TestSessionRetentionExpires(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{SessionRetention: 100 * time.Millisecond})
	ws, w1 := fabrictest.Hello(t, f.Gateway.URL)
	dropped(t, f.Gateway, ws)
	waitMetric(t, f.Gateway, "fabric_gateway_sessions 0")
	ws2 := fabrictest.Dial(t, f.Gateway.URL)
	if w := ws2.Hello(resumeHello(w1)); w.Resumed {
		t.Fatalf("resumed an expired session: %+v", w)
	}
}

func TestResumeWhileConnectedClosesOld(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	old, w1 := fabrictest.Hello(t, f.Gateway.URL)
	ws := fabrictest.Dial(t, f.Gateway.URL)
	if w := ws.Hello(resumeHello(w1)); !w.Resumed || w.SessionID != w1.SessionID {
		t.Fatalf("welcome %+v", w)
	}
	if code := old.CloseCode(); code != int(protocol.CloseSessionResumed) {
		t.Fatalf("old connection closed with %d, want %d", code, protocol.CloseSessionResumed)
	}
	checkEvents(t, "x", ws.Call("demo/echo", "x", 1), want{"demo/echo:response", "1"}, want{"demo/echo:finish", ""})
}

// twoGateways starts two gateways sharing a resume secret on one NATS.
func twoGateways(t *testing.T, cfg gateway.Config) (a, b *fabrictest.Gateway, f *fabrictest.Fabric) {
	cfg.ResumeSecret = []byte("shared-secret-for-tests")
	f = fabrictest.Start(t, cfg)
	b = fabrictest.StartGateway(t, fabrictest.Connect(t, f.NATS, "gateway-b"), cfg)
	return f.Gateway, b, f
}

func TestResumeOnAnotherGateway(t *testing.T) {
	a, b, _ := twoGateways(t, gateway.Config{})
	ws, w1 := fabrictest.Hello(t, a.URL)
	dropped(t, a, ws)

	ws2 := fabrictest.Dial(t, b.URL)
	w2 := ws2.Hello(resumeHello(w1))
	if !w2.Resumed || w2.SessionID != w1.SessionID || w2.Gateway != b.ID() {
		t.Fatalf("welcome %+v, want session %s resumed on %s", w2, w1.SessionID, b.ID())
	}
	waitMetric(t, a, "fabric_gateway_sessions 0") // a handed it over
	checkEvents(t, "x", ws2.Call("demo/whoami", "x", nil),
		want{"demo/whoami:response", `{"session":"` + w1.SessionID + `","user":""}`}, want{"demo/whoami:finish", ""})
}

func TestResumeOnAnotherGatewayWhileConnected(t *testing.T) {
	a, b, f := twoGateways(t, gateway.Config{})
	old, w1 := fabrictest.Hello(t, a.URL)
	ws := fabrictest.Dial(t, b.URL)
	if w := ws.Hello(resumeHello(w1)); !w.Resumed || w.SessionID != w1.SessionID {
		t.Fatalf("welcome %+v", w)
	}
	if code := old.CloseCode(); code != int(protocol.CloseSessionResumed) {
		t.Fatalf("old connection closed with %d, want %d", code, protocol.CloseSessionResumed)
	}
	// Pushes to the session now reach only the new connection, on b.
	w, err := workers.New(fabrictest.Connect(t, f.NATS, "pusher"), workers.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Push(context.Background(), workers.ToSession(w1.SessionID), "app/notice", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if m := ws.Read(); m.Type != "app/notice" || m.ID != "" || compact(t, m.Payload) != `{"n":1}` {
		t.Fatalf("push: %+v", m)
	}
}

func TestSessionIsolation(t *testing.T) {
	a, b, f := twoGateways(t, gateway.Config{})
	wsA, wA := fabrictest.Hello(t, a.URL)
	wsB, wB := fabrictest.Hello(t, b.URL)
	if wA.SessionID == wB.SessionID {
		t.Fatal("two sessions share an id")
	}
	// The same message id on two sessions: each gets only its own events.
	wsA.Request("demo/count", "same", map[string]int{"n": 3, "intervalMs": 5})
	wsB.Request("demo/echo", "same", "B")
	checkEvents(t, "same", wsB.Collect("same")["same"], want{"demo/echo:response", `"B"`}, want{"demo/echo:finish", ""})
	if got := wsA.Collect("same")["same"]; len(got) != 5 || got[4].Type != "demo/count:finish" {
		t.Fatalf("A got %s", dump(got))
	}
	// A push to one session reaches it alone; a push to all reaches both.
	w, err := workers.New(fabrictest.Connect(t, f.NATS, "pusher"), workers.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := w.Push(ctx, workers.ToSession(wA.SessionID), "app/only", "A"); err != nil {
		t.Fatal(err)
	}
	if err := w.Push(ctx, workers.ToAll(), "app/all", "everyone"); err != nil {
		t.Fatal(err)
	}
	// The two pushes travel on different subjects: either may come first.
	if m1, m2 := wsA.Read(), wsA.Read(); m1.Type+","+m2.Type != "app/only,app/all" && m1.Type+","+m2.Type != "app/all,app/only" {
		t.Fatalf("A got %s and %s", m1.Type, m2.Type)
	}
	if m := wsB.Read(); m.Type != "app/all" {
		t.Fatalf("B got %+v, want only the push to all", m)
	}
}

// TestResumeWithStuckWorker: a worker that ignores cancel does not delay the
// interrupted answer to a re-sent request, and its late events never reach
// the client under a reused id.
func TestResumeWithStuckWorker(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	release := make(chan struct{})
	fabrictest.StartWorker(t, fabrictest.Connect(t, f.NATS, "stuck-worker"), workers.Config{}, func(w *workers.Worker) error {
		return w.HandleRaw("test/stuck", workers.HandlerFunc(func(_ context.Context, _ *workers.Request, s *workers.Stream) error {
			_ = s.Progress(1)
			<-release // ignores its ctx
			_ = s.Progress("late")
			return nil
		}))
	})
	t.Cleanup(func() { close(release) }) // runs before the worker's shutdown

	ws, w1 := fabrictest.Hello(t, f.Gateway.URL)
	ws.Request("test/stuck", "s1", nil)
	if m := ws.Read(); m.Seq != 1 {
		t.Fatalf("got %+v", m)
	}
	dropped(t, f.Gateway, ws)
	ws2 := fabrictest.Dial(t, f.Gateway.URL)
	if w2 := ws2.Hello(resumeHello(w1)); !w2.Resumed {
		t.Fatalf("welcome %+v", w2)
	}
	ws2.Send(map[string]any{"type": "test/stuck", "id": "s1", "after": 1})
	checkInterrupted(t, ws2.Collect("s1")["s1"], "test/stuck", "s1", 1)
	// A new request may not reuse the id while the stuck run may still send.
	ws2.Request("test/stuck", "s1", nil)
	if m := ws2.Read(); m.Type != protocol.TypeError || m.ID != "s1" || !strings.Contains(string(m.Payload), "still finishing") {
		t.Fatalf("got %+v", m)
	}
}

// TestResumeAfterShutdown: a gateway going away (1001) keeps its sessions
// until clients resume them on another gateway.
func TestResumeAfterShutdown(t *testing.T) {
	a, b, _ := twoGateways(t, gateway.Config{HandoffTimeout: gateway.DefaultHandoffTimeout})
	ws, w1 := fabrictest.Hello(t, a.URL)
	shut := make(chan error, 1)
	go func() { shut <- a.Shutdown(context.Background()) }()
	if code := ws.CloseCode(); code != int(protocol.CloseGoingAway) {
		t.Fatalf("close %d, want 1001", code)
	}
	ws2 := fabrictest.Dial(t, b.URL)
	if w := ws2.Hello(resumeHello(w1)); !w.Resumed || w.SessionID != w1.SessionID {
		t.Fatalf("resume on b after a's shutdown: %+v", w)
	}
	select {
	case err := <-shut: // returns as soon as every session is handed over
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(gateway.DefaultHandoffTimeout - time.Second):
		t.Fatal("shutdown waited although every session was taken over")
	}
}
