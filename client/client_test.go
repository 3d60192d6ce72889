package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"go.uber.org/goleak"

	"github.com/seed82ac63c1/fabric/client"
	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers"
	"github.com/seed82ac63c1/fabric/workers/demo"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func dial(t *testing.T, url string, opts client.Options) *client.Client {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = fabrictest.Logger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func types(msgs []protocol.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = fmt.Sprintf("%s#%d", m.Type, m.Seq)
	}
	return out
}

func TestCall(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	c := dial(t, f.Gateway.URL, client.Options{})
	ctx := context.Background()

	msgs, err := c.Call(ctx, "demo/count", demo.CountParams{N: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"demo/count:progress#1", "demo/count:progress#2", "demo/count:response#3", "demo/count:finish#4"}
	if got := types(msgs); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}

	msgs, err = c.Call(ctx, "demo/fail", demo.FailParams{Code: "nope", Message: "no way"})
	var e *protocol.Error
	if !errors.As(err, &e) || e.Code != "nope" || e.Message != "no way" || len(msgs) != 2 {
		t.Fatalf("fail: %v %v", err, types(msgs))
	}

	if _, err := c.Call(ctx, "bad.type", nil); err == nil {
		t.Fatal("a bad type was sent")
	}
	if _, err := c.Call(ctx, "nobody/home", nil); !errors.Is(err, &protocol.Error{Code: protocol.CodeNoResponders}) {
		t.Fatalf("no responders: %v", err)
	}
}

func TestInvoke(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	c := dial(t, f.Gateway.URL, client.Options{})
	res, err := client.Invoke(context.Background(), c, demo.Count, demo.CountParams{N: 4})
	if err != nil || res.N != 4 {
		t.Fatalf("invoke: %+v %v", res, err)
	}
	who, err := client.Invoke(context.Background(), c, demo.Whoami, nil)
	if err != nil || who.Session != c.Session() {
		t.Fatalf("whoami %+v %v, session %s", who, err, c.Session())
	}
}

func TestStream(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	c := dial(t, f.Gateway.URL, client.Options{})
	var got []string
	for m, err := range c.Stream(context.Background(), "demo/count", demo.CountParams{N: 3, IntervalMs: 5}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s#%d", m.Type, m.Seq))
	}
	if len(got) != 5 || got[4] != "demo/count:finish#5" {
		t.Fatalf("got %v", got)
	}
	// Breaking out of the loop cancels the request.
	for m, err := range c.Stream(context.Background(), "demo/count", demo.CountParams{N: 1000, IntervalMs: 5}) {
		if err != nil || m.Seq == 2 {
			break
		}
	}
	if _, err := c.Call(context.Background(), "demo/echo", 1); err != nil {
		t.Fatal(err)
	}
}

func TestCancelByContext(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	c := dial(t, f.Gateway.URL, client.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Call(ctx, "demo/silent", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("cancel did not return promptly")
	}
	// The connection is still good.
	if _, err := c.Call(context.Background(), "demo/echo", 1); err != nil {
		t.Fatal(err)
	}
}

func TestPushes(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	pushes := make(chan protocol.Message, 1)
	c := dial(t, f.Gateway.URL, client.Options{OnPush: func(m protocol.Message) { pushes <- m }})
	if _, err := c.Call(context.Background(), "demo/push", map[string]any{"type": "app/hi", "payload": "there"}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-pushes:
		if m.Type != "app/hi" || string(m.Payload) != `"there"` {
			t.Fatalf("push %+v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no push")
	}
}

func TestConcurrentCalls(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	c := dial(t, f.Gateway.URL, client.Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			res, err := client.Invoke(context.Background(), c, demo.Count, demo.CountParams{N: i % 7})
			if err == nil && res.N != i%7 {
				err = fmt.Errorf("call %d got n=%d", i, res.N)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestReconnectResumes cuts the network under a streaming request: the
// client reconnects, resumes its session, and the request ends interrupted
// (core mode keeps no events) with no seq repeated or skipped.
func TestReconnectResumes(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	proxy := fabrictest.StartProxy(t, f.Gateway.URL)
	states := make(chan client.State, 16)
	c := dial(t, proxy.URL(), client.Options{BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		OnState: func(s client.State, _ int, _ string) { states <- s }})
	session := c.Session()

	type result struct {
		msgs []protocol.Message
		err  error
	}
	done := make(chan result, 1)
	go func() {
		msgs, err := c.Call(context.Background(), "demo/count", demo.CountParams{N: 10_000, IntervalMs: 5})
		done <- result{msgs, err}
	}()
	time.Sleep(100 * time.Millisecond) // let some events arrive
	proxy.Cut()
	var r result
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the call did not end after the cut")
	}
	if !errors.Is(r.err, &protocol.Error{Code: protocol.CodeInterrupted}) {
		t.Fatalf("got %v, want interrupted", r.err)
	}
	for i, m := range r.msgs {
		if m.Seq != uint64(i+1) {
			t.Fatalf("seq %d at %d: %v", m.Seq, i, types(r.msgs))
		}
	}
	if c.Session() != session || !c.Welcome().Resumed {
		t.Fatalf("session %s resumed=%v, want %s resumed", c.Session(), c.Welcome().Resumed, session)
	}
	if _, err := c.Call(context.Background(), "demo/echo", 1); err != nil {
		t.Fatal(err)
	}
	want := []client.State{client.StateConnecting, client.StateOpen, client.StateReconnecting, client.StateOpen}
	for _, w := range want {
		if s := <-states; s != w {
			t.Fatalf("state %v, want %v", s, w)
		}
	}
}

// TestCallsWaitWhileDisconnected: a request made while the client is
// reconnecting is sent once the connection is back.
func TestCallsWaitWhileDisconnected(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	proxy := fabrictest.StartProxy(t, f.Gateway.URL)
	reconnecting := make(chan struct{}, 1)
	c := dial(t, proxy.URL(), client.Options{BackoffMin: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		OnState: func(s client.State, _ int, _ string) {
			if s == client.StateReconnecting {
				reconnecting <- struct{}{}
			}
		}})
	proxy.Refuse(true)
	proxy.Cut()
	<-reconnecting
	done := make(chan error, 1)
	go func() {
		_, err := client.Invoke(context.Background(), c, demo.Echo, []byte(`"queued"`))
		done <- err
	}()
	time.Sleep(100 * time.Millisecond) // several refused attempts
	proxy.Refuse(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the queued call never completed")
	}
}

// TestReconnectToAnotherGateway moves the client to a second gateway sharing
// the resume secret: it resumes the same session there.
func TestReconnectToAnotherGateway(t *testing.T) {
	cfg := gateway.Config{ResumeSecret: []byte("test-secret")}
	f := fabrictest.Start(t, cfg)
	b := fabrictest.StartGateway(t, fabrictest.Connect(t, f.NATS, "gateway-b"), cfg)
	proxy := fabrictest.StartProxy(t, f.Gateway.URL)
	c := dial(t, proxy.URL(), client.Options{BackoffMin: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	session := c.Session()
	proxy.SetTarget(b.URL)
	proxy.Cut()
	fabrictest.Eventually(t, 10*time.Second, func() bool { return c.Welcome().Gateway == b.ID() })
	if c.Session() != session || !c.Welcome().Resumed {
		t.Fatalf("session %s, want %s resumed: %+v", c.Session(), session, c.Welcome())
	}
	who, err := client.Invoke(context.Background(), c, demo.Whoami, nil)
	if err != nil || who.Session != session {
		t.Fatalf("whoami %+v %v", who, err)
	}
}

// TestNoReconnectOnTerminalCode: a 4500–4999 close ends the client.
func TestNoReconnectOnTerminalCode(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	closed := make(chan int, 1)
	c := dial(t, f.Gateway.URL, client.Options{OnState: func(s client.State, code int, _ string) {
		if s == client.StateClosed {
			closed <- code
		}
	}})
	// Another connection takes the session over: the first gets 4503.
	ws := fabrictest.Dial(t, f.Gateway.URL)
	w := c.Welcome()
	ws.Hello(map[string]any{"resume": map[string]string{"sessionId": w.SessionID, "resumeToken": w.ResumeToken}})
	select {
	case code := <-closed:
		if code != int(protocol.CloseSessionResumed) {
			t.Fatalf("closed with %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not close")
	}
	if _, err := c.Call(context.Background(), "demo/echo", 1); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("call after close: %v", err)
	}
}

// TestNoRetryAfterTerminalCloseOnReconnect: a gateway that answers a
// reconnect's hello with a 4500–4999 close is not asked again.
func TestNoRetryAfterTerminalCloseOnReconnect(t *testing.T) {
	var dials atomic.Int32
	up := websocket.Upgrader{Subprotocols: []string{protocol.Subprotocol}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		n := dials.Add(1)
		if _, _, err := ws.ReadMessage(); err != nil { // hello
			return
		}
		deadline := time.Now().Add(time.Second)
		if n == 1 {
			_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"sys/welcome","payload":{"sessionId":"AAAAAAAAAAAAAAAAAAAAAA","resumeToken":"t","resumed":false,"gateway":"g","pingIntervalMs":25000,"limits":{"maxFrameBytes":1048576,"maxInFlight":8}}}`))
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1001, "going away"), deadline)
		} else {
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(int(protocol.CloseUnauthorized), "no"), deadline)
		}
		_, _, _ = ws.ReadMessage() // the client's close answer
	}))
	defer srv.Close()
	closed := make(chan int, 1)
	c := dial(t, "ws"+strings.TrimPrefix(srv.URL, "http"), client.Options{BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
		OnState: func(s client.State, code int, _ string) {
			if s == client.StateClosed {
				closed <- code
			}
		}})
	_ = c
	select {
	case code := <-closed:
		if code != int(protocol.CloseUnauthorized) {
			t.Fatalf("closed with %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still reconnecting after %d dials", dials.Load())
	}
	time.Sleep(100 * time.Millisecond) // five backoffs: no more dials may come
	if n := dials.Load(); n != 2 {
		t.Fatalf("%d dials, want 2", n)
	}
}

// TestDurableFailover: the client's gateway dies mid-stream; the client
// resumes on another durable gateway and its call completes with every
// event exactly once, in order.
func TestDurableFailover(t *testing.T) {
	ns := fabrictest.NATS(t)
	cfg := gateway.Config{ResumeSecret: []byte("test-secret"), Durable: &gateway.DurableConfig{Storage: "memory"}}
	a := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gateway-a"), cfg)
	b := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gateway-b"), cfg)
	fabrictest.StartDemoWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{})
	proxy := fabrictest.StartProxy(t, a.URL)
	c := dial(t, proxy.URL(), client.Options{BackoffMin: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond})
	session := c.Session()

	const n = 60
	var seen []uint64
	for m, err := range c.Stream(context.Background(), "demo/count", demo.CountParams{N: n, IntervalMs: 10}) {
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, m.Seq)
		if m.Seq == 5 {
			// Gateway a dies: its clients drop and it leaves NATS.
			proxy.SetTarget(b.URL)
			a.Server.CloseClientConnections()
			a.NATS().Close()
			proxy.Cut()
		}
	}
	if len(seen) != n+2 {
		t.Fatalf("got %d events, want %d: %v", len(seen), n+2, seen)
	}
	for i, seq := range seen {
		if seq != uint64(i+1) {
			t.Fatalf("seq %d at %d: %v", seq, i, seen)
		}
	}
	if c.Session() != session || c.Welcome().Gateway != b.ID() || !c.Welcome().Resumed {
		t.Fatalf("welcome %+v, want session %s resumed on %s", c.Welcome(), session, b.ID())
	}
}
