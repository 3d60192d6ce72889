package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// bus plays the gateway's part on NATS: it publishes requests and collects
// their events, so the SDK is tested against the subject contract itself.
type bus struct {
	t  *testing.T
	nc *nats.Conn
}

type event struct {
	suffix string
	seq    string
	id     string
	data   string
}

const session = "AAAAAAAAAAAAAAAAAAAAAA"

func newWorker(t *testing.T, cfg workers.Config, register func(w *workers.Worker)) (*workers.Worker, *bus) {
	t.Helper()
	ns := fabrictest.NATS(t)
	w := fabrictest.StartWorker(t, fabrictest.Connect(t, ns, "worker"), cfg, func(w *workers.Worker) error { register(w); return nil })
	return w, &bus{t: t, nc: fabrictest.Connect(t, ns, "gateway")}
}

// request publishes a request and returns a channel of its events, closed
// after the finish.
func (b *bus) request(typeName, id string, payload string) <-chan event {
	b.t.Helper()
	reply := "fabric.evt." + session + "." + id
	ch := make(chan event, 1024)
	var sub *nats.Subscription
	sub, err := b.nc.Subscribe(reply+".>", func(m *nats.Msg) {
		suffix := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		ch <- event{suffix, m.Header.Get("Fabric-Seq"), m.Header.Get("Fabric-Id"), string(m.Data)}
		if suffix == "finish" {
			_ = sub.Unsubscribe()
			close(ch)
		}
	})
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { _ = sub.Unsubscribe() })
	msg := &nats.Msg{Subject: "fabric.req." + strings.ReplaceAll(typeName, "/", "."), Reply: reply,
		Header: nats.Header{"Fabric-Id": {id}, "Fabric-Session": {session}, "Fabric-User": {"ada"}}, Data: []byte(payload)}
	if err := b.nc.PublishMsg(msg); err != nil {
		b.t.Fatal(err)
	}
	return ch
}

func (b *bus) collect(ch <-chan event) []event {
	b.t.Helper()
	var out []event
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, e)
		case <-timeout:
			b.t.Fatalf("no finish; got %+v", out)
		}
	}
}

func (b *bus) cancel(id string) {
	if err := b.nc.Publish("fabric.cancel."+session+"."+id, nil); err != nil {
		b.t.Fatal(err)
	}
}

func summary(events []event) string {
	var parts []string
	for _, e := range events {
		parts = append(parts, fmt.Sprintf("%s#%s:%s", e.suffix, e.seq, e.data))
	}
	return strings.Join(parts, " ")
}

type params struct {
	N int `json:"n"`
}
type result struct {
	Sum int `json:"sum"`
}

var sumRoute = protocol.NewRoute[params, result]("test/sum")

func TestTypedHandler(t *testing.T) {
	_, b := newWorker(t, workers.Config{}, func(w *workers.Worker) {
		err := workers.Handle(w, sumRoute, func(ctx context.Context, p params, s *workers.Stream) (result, error) {
			if p.N < 0 {
				return result{}, &protocol.Error{Code: "negative", Message: "n is negative", Details: json.RawMessage(`{"n":-1}`)}
			}
			sum := 0
			for i := 1; i <= p.N; i++ {
				sum += i
				if err := s.Progress(map[string]int{"i": i}); err != nil {
					return result{}, err
				}
			}
			if s.User() != "ada" || s.Session() != session || s.Type() != "test/sum" {
				return result{}, errors.New("bad request metadata")
			}
			return result{Sum: sum}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	events := b.collect(b.request("test/sum", "m1", `{"n":3}`))
	if got, want := summary(events), `progress#1:{"i":1} progress#2:{"i":2} progress#3:{"i":3} response#4:{"sum":6} finish#5:`; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	for _, e := range events {
		if e.id != "m1" {
			t.Fatalf("Fabric-Id %q", e.id)
		}
	}
	events = b.collect(b.request("test/sum", "m2", `{"n":-1}`))
	if got, want := summary(events), `error#1:{"code":"negative","message":"n is negative","details":{"n":-1}} finish#2:`; got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	events = b.collect(b.request("test/sum", "m3", `{"n":"three"}`))
	if len(events) != 2 || !strings.Contains(events[0].data, `"code":"bad_request"`) {
		t.Fatalf("bad params: %s", summary(events))
	}
	// No payload at all decodes as null: the zero params.
	if got := summary(b.collect(b.request("test/sum", "m4", ``))); got != `response#1:{"sum":0} finish#2:` {
		t.Fatalf("no payload: %s", got)
	}
}

func TestErrorsAndPanics(t *testing.T) {
	_, b := newWorker(t, workers.Config{}, func(w *workers.Worker) {
		_ = w.HandleRaw("test/plain", workers.HandlerFunc(func(context.Context, *workers.Request, *workers.Stream) error {
			return errors.New("database password is hunter2")
		}))
		_ = w.HandleRaw("test/panic", workers.HandlerFunc(func(context.Context, *workers.Request, *workers.Stream) error {
			panic("boom")
		}))
		_ = w.HandleRaw("test/events", workers.HandlerFunc(func(_ context.Context, _ *workers.Request, s *workers.Stream) error {
			if err := s.Send("finish", nil); !errors.Is(err, workers.ErrReservedEvent) {
				return fmt.Errorf("send finish: %v", err)
			}
			if err := s.Send("bad.suffix", nil); err == nil {
				return errors.New("bad suffix accepted")
			}
			return s.Send("token", "t")
		}))
	})
	if got := summary(b.collect(b.request("test/plain", "p1", `null`))); got != `error#1:{"code":"internal","message":"internal error"} finish#2:` {
		t.Fatalf("plain error leaked or lost: %s", got)
	}
	for i := range 3 { // the worker survives panics
		if got := summary(b.collect(b.request("test/panic", fmt.Sprintf("x%d", i), `null`))); got != `error#1:{"code":"internal","message":"internal error"} finish#2:` {
			t.Fatalf("panic: %s", got)
		}
	}
	if got := summary(b.collect(b.request("test/events", "e1", `null`))); got != `token#1:"t" finish#2:` {
		t.Fatalf("events: %s", got)
	}
}

func TestCancel(t *testing.T) {
	started := make(chan string, 4)
	_, b := newWorker(t, workers.Config{}, func(w *workers.Worker) {
		_ = w.HandleRaw("test/wait", workers.HandlerFunc(func(ctx context.Context, req *workers.Request, _ *workers.Stream) error {
			started <- req.ID
			<-ctx.Done()
			return ctx.Err()
		}))
	})
	ch := b.request("test/wait", "c1", `null`)
	<-started
	b.cancel("c1")
	if got := summary(b.collect(ch)); got != `error#1:{"code":"cancelled","message":"cancelled"} finish#2:` {
		t.Fatalf("got %s", got)
	}
	// A cancel that overtakes its request still cancels it.
	b.cancel("c2")
	time.Sleep(20 * time.Millisecond)
	if got := summary(b.collect(b.request("test/wait", "c2", `null`))); got != `error#1:{"code":"cancelled","message":"cancelled"} finish#2:` {
		t.Fatalf("early cancel: %s", got)
	}
}

func TestMaxConcurrent(t *testing.T) {
	var running, peak atomic.Int32
	release := make(chan struct{})
	_, b := newWorker(t, workers.Config{MaxConcurrent: 2}, func(w *workers.Worker) {
		_ = w.HandleRaw("test/hold", workers.HandlerFunc(func(context.Context, *workers.Request, *workers.Stream) error {
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			<-release
			running.Add(-1)
			return nil
		}))
	})
	var chans []<-chan event
	for i := range 5 {
		chans = append(chans, b.request("test/hold", fmt.Sprintf("h%d", i), `null`))
	}
	fabrictest.Eventually(t, 5*time.Second, func() bool { return running.Load() == 2 })
	close(release)
	for _, ch := range chans {
		b.collect(ch)
	}
	if peak.Load() != 2 {
		t.Fatalf("peak concurrency %d, want 2", peak.Load())
	}
}

func TestShutdownLetsHandlersFinish(t *testing.T) {
	started := make(chan struct{}, 1)
	w, b := newWorker(t, workers.Config{}, func(w *workers.Worker) {
		_ = w.HandleRaw("test/slow", workers.HandlerFunc(func(ctx context.Context, _ *workers.Request, s *workers.Stream) error {
			started <- struct{}{}
			select {
			case <-time.After(200 * time.Millisecond):
				return s.Respond("done")
			case <-ctx.Done():
				return ctx.Err()
			}
		}))
	})
	ch := b.request("test/slow", "s1", `null`)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := summary(b.collect(ch)); got != `response#1:"done" finish#2:` {
		t.Fatalf("got %s", got)
	}
	if err := w.Shutdown(ctx); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
}

func TestShutdownCancelsAfterGrace(t *testing.T) {
	started := make(chan struct{}, 1)
	w, b := newWorker(t, workers.Config{}, func(w *workers.Worker) {
		_ = w.HandleRaw("test/forever", workers.HandlerFunc(func(ctx context.Context, _ *workers.Request, _ *workers.Stream) error {
			started <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		}))
	})
	ch := b.request("test/forever", "f1", `null`)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := w.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if got := summary(b.collect(ch)); !strings.HasPrefix(got, `error#1:{"code":"cancelled"`) {
		t.Fatalf("got %s", got)
	}
}

func TestRegistration(t *testing.T) {
	ns := fabrictest.NATS(t)
	w, err := workers.New(fabrictest.Connect(t, ns, "w"), workers.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := workers.HandlerFunc(func(context.Context, *workers.Request, *workers.Stream) error { return nil })
	for _, bad := range []string{"", "sys/x", "a.b", "a/*"} {
		if err := w.HandleRaw(bad, h); err == nil {
			t.Errorf("route %q accepted", bad)
		}
	}
	if err := w.HandleRaw("ok/route", h); err != nil {
		t.Fatal(err)
	}
	if err := w.HandleRaw("ok/route", h); !errors.Is(err, workers.ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	if err := w.HandleRaw("late/route", h); !errors.Is(err, workers.ErrStarted) {
		t.Fatalf("after start: %v", err)
	}
	_ = w.Shutdown(context.Background())
	if _, err := workers.New(nil, workers.Config{Prefix: "bad..prefix"}); err == nil {
		t.Fatal("bad prefix accepted")
	}
}

func TestPush(t *testing.T) {
	ns := fabrictest.NATS(t)
	w, err := workers.New(fabrictest.Connect(t, ns, "w"), workers.Config{})
	if err != nil {
		t.Fatal(err)
	}
	nc := fabrictest.Connect(t, ns, "watcher")
	got := make(chan *nats.Msg, 8)
	sub, err := nc.ChanSubscribe("fabric.push.>", got)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = nc.Flush()
	ctx := context.Background()
	for _, tc := range []struct {
		to      workers.Target
		subject string
	}{
		{workers.ToSession(session), "fabric.push.session." + session},
		{workers.ToUser("ada@example.com"), "fabric.push.user.YWRhQGV4YW1wbGUuY29t"},
		{workers.ToAll(), "fabric.push.all"},
	} {
		if err := w.Push(ctx, tc.to, "app/news", map[string]string{"k": "v"}); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m.Subject != tc.subject || m.Header.Get("Fabric-Type") != "app/news" || string(m.Data) != `{"k":"v"}` {
				t.Fatalf("push: %s %v %s", m.Subject, m.Header, m.Data)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("push not published")
		}
	}
	for _, typ := range []string{"sys/evil", "a.b", ""} {
		if err := w.Push(ctx, workers.ToAll(), typ, nil); err == nil {
			t.Errorf("push type %q accepted", typ)
		}
	}
	if err := w.Push(ctx, workers.ToSession("short"), "app/x", nil); err == nil {
		t.Error("bad session id accepted")
	}
	if err := w.Push(ctx, workers.ToUser(""), "app/x", nil); err == nil {
		t.Error("empty user accepted")
	}
	if err := w.Push(ctx, workers.Target{}, "app/x", nil); err == nil {
		t.Error("empty target accepted")
	}
}
