package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers"
)

// want is the expected shape of one event frame.
type want struct {
	typ     string
	payload string // compact JSON; "" means no payload field
}

// checkEvents asserts that msgs are exactly the wanted events of request id,
// numbered 1, 2, … and ending with the finish.
func checkEvents(t *testing.T, id string, msgs []protocol.Message, wants ...want) {
	t.Helper()
	if len(msgs) != len(wants) {
		t.Fatalf("request %s: got %d frames %s, want %d", id, len(msgs), dump(msgs), len(wants))
	}
	for i, m := range msgs {
		w := wants[i]
		if m.Type != w.typ || m.ID != id || m.Seq != uint64(i+1) || compact(t, m.Payload) != w.payload {
			t.Fatalf("request %s frame %d: got %s, want type %s seq %d payload %s", id, i, dump(msgs[i:i+1]), w.typ, i+1, w.payload)
		}
	}
}

func compact(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	if len(raw) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("payload %q: %v", raw, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func dump(msgs []protocol.Message) string {
	b, _ := json.Marshal(msgs)
	return string(b)
}

func TestDemoRoutes(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{RequestTimeout: 500 * time.Millisecond})
	ws, welcome := fabrictest.Hello(t, f.Gateway.URL)

	t.Run("echo", func(t *testing.T) {
		checkEvents(t, "e1", ws.Call("demo/echo", "e1", map[string]any{"a": []int{1, 2}, "s": "é\"x"}),
			want{"demo/echo:response", `{"a":[1,2],"s":"é\"x"}`}, want{"demo/echo:finish", ""})
		ws.Send(map[string]any{"type": "demo/echo", "id": "e2"}) // no payload
		checkEvents(t, "e2", ws.Collect("e2")["e2"], want{"demo/echo:response", "null"}, want{"demo/echo:finish", ""})
	})
	t.Run("count", func(t *testing.T) {
		checkEvents(t, "c1", ws.Call("demo/count", "c1", map[string]any{"n": 3}),
			want{"demo/count:progress", `{"i":1}`}, want{"demo/count:progress", `{"i":2}`}, want{"demo/count:progress", `{"i":3}`},
			want{"demo/count:response", `{"n":3}`}, want{"demo/count:finish", ""})
		checkEvents(t, "c2", ws.Call("demo/count", "c2", map[string]any{"n": 2, "intervalMs": 20}),
			want{"demo/count:progress", `{"i":1}`}, want{"demo/count:progress", `{"i":2}`},
			want{"demo/count:response", `{"n":2}`}, want{"demo/count:finish", ""})
		checkEvents(t, "c3", ws.Call("demo/count", "c3", map[string]any{"n": 0}),
			want{"demo/count:response", `{"n":0}`}, want{"demo/count:finish", ""})
	})
	t.Run("fail", func(t *testing.T) {
		checkEvents(t, "f1", ws.Call("demo/fail", "f1", map[string]any{"code": "quota_exceeded", "message": "try later"}),
			want{"demo/fail:error", `{"code":"quota_exceeded","message":"try later"}`}, want{"demo/fail:finish", ""})
	})
	t.Run("bad params", func(t *testing.T) {
		msgs := ws.Call("demo/count", "b1", "not an object")
		if len(msgs) != 2 || msgs[0].Type != "demo/count:error" || !strings.Contains(string(msgs[0].Payload), `"bad_request"`) {
			t.Fatalf("got %s", dump(msgs))
		}
	})
	t.Run("sleep", func(t *testing.T) {
		msgs := ws.Call("demo/sleep", "s1", map[string]any{"ms": 30})
		var r struct{ SleptMs int64 }
		if len(msgs) != 2 || msgs[0].Type != "demo/sleep:response" || msgs[0].Decode(&r) != nil || r.SleptMs < 30 {
			t.Fatalf("got %s", dump(msgs))
		}
	})
	t.Run("panic", func(t *testing.T) {
		checkEvents(t, "p1", ws.Call("demo/panic", "p1", nil),
			want{"demo/panic:error", `{"code":"internal","message":"internal error"}`}, want{"demo/panic:finish", ""})
		// The worker keeps serving.
		checkEvents(t, "p2", ws.Call("demo/echo", "p2", 1), want{"demo/echo:response", `1`}, want{"demo/echo:finish", ""})
	})
	t.Run("whoami", func(t *testing.T) {
		checkEvents(t, "w1", ws.Call("demo/whoami", "w1", nil),
			want{"demo/whoami:response", fmt.Sprintf(`{"session":%q,"user":""}`, welcome.SessionID)}, want{"demo/whoami:finish", ""})
	})
	t.Run("push", func(t *testing.T) {
		ws.Request("demo/push", "u1", map[string]any{"type": "demo/notice", "payload": map[string]int{"x": 1}, "delayMs": 20})
		got := ws.Collect("u1")
		checkEvents(t, "u1", got["u1"], want{"demo/push:response", `{}`}, want{"demo/push:finish", ""})
		push := got[""]
		if len(push) == 0 {
			push = append(push, ws.Read())
		}
		if p := push[0]; p.Type != "demo/notice" || p.ID != "" || p.Seq != 0 || compact(t, p.Payload) != `{"x":1}` {
			t.Fatalf("push: got %s", dump(push))
		}
	})
	t.Run("silent times out", func(t *testing.T) {
		checkEvents(t, "t1", ws.Call("demo/silent", "t1", nil),
			want{"demo/silent:error", `{"code":"timeout","message":"the worker sent nothing for 500ms"}`}, want{"demo/silent:finish", ""})
	})
	t.Run("no responders", func(t *testing.T) {
		start := time.Now()
		checkEvents(t, "n1", ws.Call("nobody/serves/this", "n1", nil),
			want{"nobody/serves/this:error", `{"code":"no_responders","message":"no worker serves nobody/serves/this"}`},
			want{"nobody/serves/this:finish", ""})
		if time.Since(start) >= 500*time.Millisecond {
			t.Fatal("no_responders waited for the request timeout")
		}
	})
}

func TestSubprotocol(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	ws := fabrictest.Dial(t, f.Gateway.URL)
	if got := ws.Conn.Subprotocol(); got != protocol.Subprotocol {
		t.Fatalf("offered fabric.v1: selected %q", got)
	}
	c, _, err := websocket.DefaultDialer.Dial(f.Gateway.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Subprotocol() != "" {
		t.Fatalf("offered none: selected %q", c.Subprotocol())
	}
	raw := fabrictest.Wrap(t, c)
	raw.Hello(nil)
	checkEvents(t, "x", raw.Call("demo/echo", "x", true), want{"demo/echo:response", "true"}, want{"demo/echo:finish", ""})
}

// TestBadFrames covers every frame the gateway cannot accept: each gets
// sys/error with code bad_request (and the id only when it was valid), and
// the connection stays open.
func TestBadFrames(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	ws.Request("demo/sleep", "busy", map[string]int{"ms": 5000})
	long := strings.Repeat("a", 65)
	cases := []struct {
		name, frame, id string
	}{
		{"not json", `{"type":`, ""},
		{"not an object", `["demo/echo"]`, ""},
		{"string", `"hello"`, ""},
		{"missing type", `{"id":"m1"}`, ""},
		{"type not a string", `{"type":7,"id":"m1"}`, ""},
		{"empty type", `{"type":"","id":"m1"}`, "m1"},
		{"dots", `{"type":"demo.echo","id":"m1"}`, "m1"},
		{"star", `{"type":"demo/*","id":"m1"}`, "m1"},
		{"gt", `{"type":"demo/>","id":"m1"}`, "m1"},
		{"space", `{"type":"demo/ echo","id":"m1"}`, "m1"},
		{"empty segment", `{"type":"demo//echo","id":"m1"}`, "m1"},
		{"trailing slash", `{"type":"demo/","id":"m1"}`, "m1"},
		{"non-ascii", `{"type":"démo/echo","id":"m1"}`, "m1"},
		{"digit first", `{"type":"1demo","id":"m1"}`, "m1"},
		{"segment too long", `{"type":"demo/` + long + `","id":"m1"}`, "m1"},
		{"too many segments", `{"type":"a/b/c/d/e/f/g/h/i","id":"m1"}`, "m1"},
		{"reserved", `{"type":"sys/shutdown","id":"m1"}`, "m1"},
		{"event type", `{"type":"demo/echo:response","id":"m1"}`, "m1"},
		{"second hello", `{"type":"sys/hello"}`, ""},
		{"missing id", `{"type":"demo/echo"}`, ""},
		{"id not a string", `{"type":"demo/echo","id":5}`, ""},
		{"empty id", `{"type":"demo/echo","id":""}`, ""},
		{"id with dot", `{"type":"demo/echo","id":"m.1"}`, ""},
		{"id with star", `{"type":"demo/echo","id":"*"}`, ""},
		{"id too long", `{"type":"demo/echo","id":"` + long + `"}`, ""},
		{"cancel without id", `{"type":"sys/cancel"}`, ""},
		{"cancel bad id", `{"type":"sys/cancel","id":"a>b"}`, ""},
		{"id in flight", `{"type":"demo/echo","id":"busy"}`, "busy"},
		{"bad after", `{"type":"demo/echo","id":"m1","after":-1}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws.SendRaw([]byte(tc.frame))
			m := ws.Read()
			var e protocol.Error
			if m.Type != protocol.TypeError || m.ID != tc.id || m.Decode(&e) != nil || e.Code != protocol.CodeBadRequest || e.Message == "" {
				t.Fatalf("got %s, want sys/error bad_request with id %q", dump([]protocol.Message{m}), tc.id)
			}
		})
	}
	// The connection is still open and serving.
	checkEvents(t, "ok", ws.Call("demo/echo", "ok", "still here"), want{"demo/echo:response", `"still here"`}, want{"demo/echo:finish", ""})
	// Cancelling an unknown or finished id is ignored: nothing comes back.
	ws.Send(map[string]string{"type": "sys/cancel", "id": "never-sent"})
	ws.Send(map[string]string{"type": "sys/cancel", "id": "ok"})
	checkEvents(t, "ok2", ws.Call("demo/echo", "ok2", 2), want{"demo/echo:response", `2`}, want{"demo/echo:finish", ""})
}

func TestCloseCodes(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{HelloTimeout: 200 * time.Millisecond, PingInterval: 150 * time.Millisecond, MaxFrameBytes: 4096})
	t.Run("binary frame 1003", func(t *testing.T) {
		ws, _ := fabrictest.Hello(t, f.Gateway.URL)
		if err := ws.Conn.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"demo/echo","id":"x"}`)); err != nil {
			t.Fatal(err)
		}
		if code := ws.CloseCode(); code != 1003 {
			t.Fatalf("close code %d, want 1003", code)
		}
	})
	t.Run("frame too large 1009", func(t *testing.T) {
		ws, _ := fabrictest.Hello(t, f.Gateway.URL)
		ws.Request("demo/echo", "big", strings.Repeat("x", 5000))
		if code := ws.CloseCode(); code != 1009 {
			t.Fatalf("close code %d, want 1009", code)
		}
	})
	t.Run("first frame not hello 4500", func(t *testing.T) {
		ws := fabrictest.Dial(t, f.Gateway.URL)
		ws.Request("demo/echo", "x", 1)
		if code := ws.CloseCode(); code != int(protocol.CloseProtocol) {
			t.Fatalf("close code %d, want %d", code, protocol.CloseProtocol)
		}
	})
	t.Run("first frame not JSON 4500", func(t *testing.T) {
		ws := fabrictest.Dial(t, f.Gateway.URL)
		ws.SendRaw([]byte("hello"))
		if code := ws.CloseCode(); code != int(protocol.CloseProtocol) {
			t.Fatalf("close code %d, want %d", code, protocol.CloseProtocol)
		}
	})
	t.Run("no hello 4501", func(t *testing.T) {
		ws := fabrictest.Dial(t, f.Gateway.URL)
		if code := ws.CloseCode(); code != int(protocol.CloseHelloTimeout) {
			t.Fatalf("close code %d, want %d", code, protocol.CloseHelloTimeout)
		}
	})
	t.Run("silent client 4000", func(t *testing.T) {
		ws, w := fabrictest.Hello(t, f.Gateway.URL)
		if w.PingIntervalMs != 150 {
			t.Fatalf("pingIntervalMs %d", w.PingIntervalMs)
		}
		// Read without answering pings: the gateway pings, then closes.
		pings := 0
		for {
			_ = ws.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, b, err := ws.Conn.ReadMessage()
			if err != nil {
				ce, ok := err.(*websocket.CloseError)
				if !ok || ce.Code != int(protocol.ClosePingTimeout) {
					t.Fatalf("got %v, want close %d", err, protocol.ClosePingTimeout)
				}
				break
			}
			if string(b) == `{"type":"sys/ping"}` {
				pings++
			}
		}
		if pings == 0 {
			t.Fatal("no sys/ping before the close")
		}
	})
	t.Run("client answering pings stays", func(t *testing.T) {
		ws, _ := fabrictest.Hello(t, f.Gateway.URL)
		deadline := time.Now().Add(700 * time.Millisecond) // more than four intervals
		pings := 0
		for time.Now().Before(deadline) {
			_ = ws.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, b, err := ws.Conn.ReadMessage()
			if err != nil {
				t.Fatalf("connection closed: %v", err)
			}
			if string(b) == `{"type":"sys/ping"}` {
				pings++
				ws.Send(map[string]string{"type": "sys/pong"})
			}
		}
		ws.Send(map[string]string{"type": "sys/ping"})
		if m := ws.Read(); m.Type != protocol.TypePong {
			t.Fatalf("client ping: got %+v, want sys/pong", m)
		}
		if pings < 2 {
			t.Fatalf("%d pings in four intervals", pings)
		}
	})
}

func TestSlowConsumer(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{MaxQueueBytes: 64 << 10})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	// Ask for far more than the socket buffers and the queue hold, and read
	// nothing until the gateway has given up on this client.
	for i := range 4 {
		ws.Request("demo/count", fmt.Sprintf("m%d", i), map[string]int{"n": 100_000})
	}
	fabrictest.Eventually(t, 20*time.Second, func() bool {
		_, body := f.Gateway.HTTPGet(t, "/metrics")
		return strings.Contains(body, "fabric_gateway_slow_consumers_total 1")
	})
	if code := ws.CloseCode(); code != int(protocol.CloseSlowConsumer) {
		t.Fatalf("close code %d, want %d", code, protocol.CloseSlowConsumer)
	}
}

// blockingWorker serves test/block: it holds each request until its ctx is
// cancelled and reports the cancellation.
func blockingWorker(t *testing.T, f *fabrictest.Fabric) <-chan string {
	t.Helper()
	cancelled := make(chan string, 16)
	fabrictest.StartWorker(t, fabrictest.Connect(t, f.NATS, "block-worker"), workers.Config{}, func(w *workers.Worker) error {
		return w.HandleRaw("test/block", workers.HandlerFunc(func(ctx context.Context, req *workers.Request, s *workers.Stream) error {
			_ = s.Progress("started")
			<-ctx.Done()
			cancelled <- req.ID
			_ = s.Progress("too late") // dropped by the gateway
			return ctx.Err()
		}))
	})
	return cancelled
}

func TestCancel(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	cancelled := blockingWorker(t, f)
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	ws.Request("test/block", "b1", nil)
	if m := ws.Read(); m.Type != "test/block:progress" || m.Seq != 1 {
		t.Fatalf("got %+v", m)
	}
	ws.Send(map[string]string{"type": "sys/cancel", "id": "b1"})
	msgs := ws.Collect("b1")["b1"]
	if len(msgs) != 2 || msgs[0].Type != "test/block:error" || msgs[0].Seq != 2 || msgs[1].Type != "test/block:finish" || msgs[1].Seq != 3 ||
		compact(t, msgs[0].Payload) != `{"code":"cancelled","message":"cancelled by the client"}` {
		t.Fatalf("got %s", dump(msgs))
	}
	select {
	case id := <-cancelled:
		if id != "b1" {
			t.Fatalf("cancelled %s", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the worker's ctx was not cancelled")
	}
	// The handler's later events are dropped: the next frame is the next request's.
	checkEvents(t, "after", ws.Call("demo/echo", "after", 1), want{"demo/echo:response", "1"}, want{"demo/echo:finish", ""})
}

func TestTimeoutCancelsWorker(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{RequestTimeout: 200 * time.Millisecond})
	cancelled := blockingWorker(t, f)
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	msgs := ws.Call("test/block", "t1", nil)
	if len(msgs) != 3 || msgs[1].Type != "test/block:error" || !strings.Contains(string(msgs[1].Payload), `"timeout"`) || msgs[2].Seq != 3 {
		t.Fatalf("got %s", dump(msgs))
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the worker was not told to cancel after the timeout")
	}
}

func TestTimeoutResetByEvents(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{RequestTimeout: 300 * time.Millisecond})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	// 8 events 100ms apart: 700ms in all, but never 300ms of silence.
	msgs := ws.Call("demo/count", "slow", map[string]int{"n": 8, "intervalMs": 100})
	if last := msgs[len(msgs)-1]; len(msgs) != 10 || last.Type != "demo/count:finish" || msgs[8].Type != "demo/count:response" {
		t.Fatalf("got %s", dump(msgs))
	}
}

func TestInterleaving(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	const n = 20
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("r%02d", i)
		ws.Request("demo/count", ids[i], map[string]int{"n": 5, "intervalMs": 5})
	}
	got := ws.Collect(ids...)
	for _, id := range ids {
		checkEvents(t, id, got[id],
			want{"demo/count:progress", `{"i":1}`}, want{"demo/count:progress", `{"i":2}`}, want{"demo/count:progress", `{"i":3}`},
			want{"demo/count:progress", `{"i":4}`}, want{"demo/count:progress", `{"i":5}`},
			want{"demo/count:response", `{"n":5}`}, want{"demo/count:finish", ""})
	}
}

func TestMaxInFlight(t *testing.T) {
	const max = 4
	f := fabrictest.Start(t, gateway.Config{MaxInFlight: max})
	ws, w := fabrictest.Hello(t, f.Gateway.URL)
	if w.Limits.MaxInFlight != max || w.Limits.MaxFrameBytes != gateway.DefaultMaxFrameBytes {
		t.Fatalf("limits %+v", w.Limits)
	}
	for i := range max {
		ws.Request("demo/sleep", fmt.Sprintf("s%d", i), map[string]int{"ms": 60_000})
	}
	checkEvents(t, "over", ws.Call("demo/echo", "over", 1),
		want{"demo/echo:error", fmt.Sprintf(`{"code":"overloaded","message":"more than %d requests in flight on this connection"}`, max)},
		want{"demo/echo:finish", ""})
	ws.Send(map[string]string{"type": "sys/cancel", "id": "s0"})
	ws.Collect("s0")
	checkEvents(t, "fits", ws.Call("demo/echo", "fits", 1), want{"demo/echo:response", "1"}, want{"demo/echo:finish", ""})
}

// TestDemoWorkerServesMaxInFlight: the demo worker serves a connection's
// whole in-flight allowance at once.
func TestDemoWorkerServesMaxInFlight(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	ws, w := fabrictest.Hello(t, f.Gateway.URL)
	ids := make([]string, w.Limits.MaxInFlight)
	for i := range ids {
		ids[i] = fmt.Sprintf("q%d", i)
		ws.Request("demo/sleep", ids[i], map[string]int{"ms": 300})
	}
	start := time.Now()
	got := ws.Collect(ids...)
	for _, id := range ids {
		if msgs := got[id]; len(msgs) != 2 || msgs[0].Type != "demo/sleep:response" {
			t.Fatalf("%s: %s", id, dump(msgs))
		}
	}
	t.Logf("%d concurrent 300ms sleeps took %s", len(ids), time.Since(start))
}

func TestTooLarge(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{MaxFrameBytes: 2 << 20})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	max := int(fabrictest.Connect(t, f.NATS, "probe").MaxPayload())
	msgs := ws.Call("demo/echo", "huge", strings.Repeat("x", max))
	if len(msgs) != 2 || !strings.Contains(string(msgs[0].Payload), `"too_large"`) {
		t.Fatalf("got %.300s", dump(msgs))
	}
}

func TestHTTPEndpoints(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	ws.Call("demo/echo", "m", 1)
	if code, body := f.Gateway.HTTPGet(t, "/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("healthz %d %q", code, body)
	}
	if code, _ := f.Gateway.HTTPGet(t, "/readyz"); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	code, body := f.Gateway.HTTPGet(t, "/metrics")
	for _, metric := range []string{
		"fabric_gateway_connections 1",
		`fabric_gateway_requests_total{outcome="ok",route="demo/echo"} 1`,
		"fabric_gateway_events_total 2",
		"fabric_gateway_request_duration_seconds_bucket",
	} {
		if code != 200 || !strings.Contains(body, metric) {
			t.Fatalf("metrics %d: no %q in\n%s", code, metric, body)
		}
	}
}

func TestShutdown(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	ws.Request("demo/sleep", "s", map[string]int{"ms": 60_000})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = f.Gateway.Shutdown(context.Background())
	}()
	if code := ws.CloseCode(); code != int(protocol.CloseGoingAway) {
		t.Fatalf("close code %d, want 1001", code)
	}
	wg.Wait()
	if code, _ := f.Gateway.HTTPGet(t, "/readyz"); code != 503 {
		t.Fatalf("readyz after shutdown: %d", code)
	}
	_, resp, err := websocket.DefaultDialer.Dial(f.Gateway.URL, nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("dial after shutdown: %v %v", err, resp)
	}
	if err := f.Gateway.Shutdown(context.Background()); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
}
