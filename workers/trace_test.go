package workers_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/workers"
)

// A handler's ctx carries the request's process span, a child of the
// span its traceparent names: the handler's own spans nest under it, and
// so does a child request it makes, whose worker continues the same trace.
// Each event carries the traceparent of its own send span.
func TestHandlerSpansNest(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	ns := fabrictest.NATS(t)
	fabrictest.StartWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{}, func(w *workers.Worker) error {
		if err := w.HandleRaw("test/parent", workers.HandlerFunc(func(ctx context.Context, req *workers.Request, s *workers.Stream) error {
			ctx, span := tp.Tracer("user").Start(ctx, "user work")
			defer span.End()
			if _, err := s.Call(ctx, "test/child", nil); err != nil {
				return err
			}
			return s.Respond("ok")
		})); err != nil {
			return err
		}
		return w.HandleRaw("test/child", workers.HandlerFunc(func(ctx context.Context, req *workers.Request, s *workers.Stream) error {
			return s.Respond("child ok")
		}))
	}, workers.WithTracerProvider(tp))

	nc := fabrictest.Connect(t, ns, "gateway")
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	const gatewaySpan = "00f067aa0ba902b7"
	reply := "fabric.evt." + session + ".p1"
	events := make(chan *nats.Msg, 16)
	sub, err := nc.ChanSubscribe(reply+".>", events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	err = nc.PublishMsg(&nats.Msg{Subject: "fabric.req.test.parent", Reply: reply, Header: nats.Header{
		"Fabric-Id": {"p1"}, "Fabric-Session": {session}, "traceparent": {"00-" + traceID + "-" + gatewaySpan + "-01"}}})
	if err != nil {
		t.Fatal(err)
	}
	eventParents := map[string]string{} // event subject → the span id its traceparent names
	for len(eventParents) < 2 {
		select {
		case m := <-events:
			tp := m.Header.Get("traceparent")
			if len(tp) != 55 || tp[3:35] != traceID {
				t.Fatalf("event %s: traceparent %q, want one in trace %s", m.Subject, tp, traceID)
			}
			eventParents[m.Subject] = tp[36:52]
		case <-time.After(5 * time.Second):
			t.Fatal("no events")
		}
	}

	var spans []sdktrace.ReadOnlySpan
	fabrictest.Eventually(t, 5*time.Second, func() bool {
		spans = rec.Ended()
		for _, s := range spans {
			if s.Name() == "process test/parent" {
				return true
			}
		}
		return false
	})
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		if s.SpanContext().TraceID().String() != traceID {
			t.Errorf("span %q in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), traceID)
		}
		byName[s.Name()] = s
	}
	parentOf := func(child, parent string) {
		t.Helper()
		c, p := byName[child], byName[parent]
		if c == nil || p == nil {
			t.Fatalf("spans %q or %q missing", child, parent)
		}
		if c.Parent().SpanID() != p.SpanContext().SpanID() {
			t.Errorf("%q: parent %s, want %q (%s)", child, c.Parent().SpanID(), parent, p.SpanContext().SpanID())
		}
	}
	if got := byName["process test/parent"].Parent().SpanID().String(); got != gatewaySpan {
		t.Errorf("process span's parent %s, want the request's traceparent %s", got, gatewaySpan)
	}
	parentOf("user work", "process test/parent")
	parentOf("process test/child", "user work")
	parentOf("send test/parent:response", "process test/parent")
	if got, want := eventParents[reply+".test.parent.response"], byName["send test/parent:response"].SpanContext().SpanID().String(); got != want {
		t.Errorf("response event's traceparent names span %s, want its send span %s", got, want)
	}
}
