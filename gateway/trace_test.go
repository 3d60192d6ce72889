package gateway_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/workers"
	"github.com/seed82ac63c1/fabric/workers/demo"
)

// tracedFabric starts NATS, a gateway and a demo worker that record their
// spans in one recorder, as two processes exporting to one collector
// would.
func tracedFabric(t *testing.T, opts ...sdktrace.TracerProviderOption) (*fabrictest.Gateway, *tracetest.SpanRecorder) {
	g, rec, _ := tracedFabricOn(t, opts...)
	return g, rec
}

// tracedFabricOn is tracedFabric, returning its NATS server too.
func tracedFabricOn(t *testing.T, opts ...sdktrace.TracerProviderOption) (*fabrictest.Gateway, *tracetest.SpanRecorder, *server.Server) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(rec)}, opts...)...)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ns := fabrictest.NATS(t)
	g := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gateway"), gateway.Config{}, gateway.WithTracerProvider(tp))
	w, err := workers.New(fabrictest.Connect(t, ns, "worker"), workers.Config{}, workers.WithTracerProvider(tp), workers.WithLogger(fabrictest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.Register(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Shutdown(context.Background()) })
	return g, rec, ns
}

// With tracing on and a sampler that keeps nothing, a request the client
// sent without a trace is not traced: no span recorded, no trace id in its
// frames, and its events carry no traceparent (nobody would link to it).
// One the client sent in its own trace, even unsampled, keeps that trace's
// id in its frames.
func TestTraceSampledOut(t *testing.T) {
	g, rec, ns := tracedFabricOn(t, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.NeverSample())))
	spy := fabrictest.Connect(t, ns, "spy")
	events, err := spy.SubscribeSync("fabric.evt.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}
	ws, _ := fabrictest.Hello(t, g.URL)
	ws.Request("demo/count", "u1", map[string]int{"n": 1})
	for _, m := range ws.Collect("u1")["u1"] {
		if m.Trace != "" {
			t.Errorf("%s seq %d: trace %q, want none", m.Type, m.Seq, m.Trace)
		}
	}
	for range 3 {
		m, err := events.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if tp := m.Header.Get("traceparent"); tp != "" {
			t.Errorf("%s: traceparent %q, want none", m.Subject, tp)
		}
	}

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	ws.Send(map[string]any{"type": "demo/echo", "id": "u2", "payload": map[string]int{},
		"traceparent": "00-" + traceID + "-00f067aa0ba902b7-00"})
	for _, m := range ws.Collect("u2")["u2"] {
		if m.Trace != traceID {
			t.Errorf("%s seq %d: trace %q, want the client's %q", m.Type, m.Seq, m.Trace, traceID)
		}
	}
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("%d spans recorded, want none: %s", n, names(rec.Ended()))
	}
}

// One request with three events (demo/count n=1: progress, response,
// finish) is one trace, in the client's: the gateway's request span under
// the client's span; its send span; the worker's process span under that;
// the worker's send span of each event; and the gateway's deliver span of
// each, under the request span and linked to the event's send span. Every
// frame carries the trace id.
func TestTraceOfARequest(t *testing.T) {
	g, rec := tracedFabric(t)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	const clientSpan = "00f067aa0ba902b7"
	ws, _ := fabrictest.Hello(t, g.URL)
	ws.Send(map[string]any{"type": "demo/count", "id": "t1", "payload": map[string]int{"n": 1},
		"traceparent": "00-" + traceID + "-" + clientSpan + "-01"})
	msgs := ws.Collect("t1")["t1"]
	if len(msgs) != 3 {
		t.Fatalf("got %d events, want 3: %+v", len(msgs), msgs)
	}
	for _, m := range msgs {
		if m.Trace != traceID {
			t.Errorf("%s seq %d: trace %q, want %q", m.Type, m.Seq, m.Trace, traceID)
		}
	}

	// The worker's process span ends once its handler returned: wait for
	// all nine.
	spans := waitSpans(rec, 9)
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		if s.SpanContext().TraceID().String() != traceID {
			t.Errorf("span %q in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), traceID)
		}
		if _, dup := byName[s.Name()]; dup {
			t.Errorf("two spans named %q", s.Name())
		}
		byName[s.Name()] = s
	}
	if len(spans) != 9 {
		t.Errorf("%d spans, want 9: %s", len(spans), names(spans))
	}
	span := func(name string) sdktrace.ReadOnlySpan {
		s, ok := byName[name]
		if !ok {
			t.Fatalf("no span %q among %s", name, names(spans))
		}
		return s
	}
	request := span("demo/count")
	send := span("send demo/count")
	process := span("process demo/count")
	wantTree := []struct {
		child, parent sdktrace.ReadOnlySpan
		kind          trace.SpanKind
	}{
		{request, nil, trace.SpanKindServer},
		{send, request, trace.SpanKindProducer},
		{process, send, trace.SpanKindConsumer},
	}
	for _, suffix := range []string{"progress", "response", "finish"} {
		sent := span("send demo/count:" + suffix)
		delivered := span("deliver demo/count:" + suffix)
		wantTree = append(wantTree,
			struct {
				child, parent sdktrace.ReadOnlySpan
				kind          trace.SpanKind
			}{sent, process, trace.SpanKindProducer},
			struct {
				child, parent sdktrace.ReadOnlySpan
				kind          trace.SpanKind
			}{delivered, request, trace.SpanKindConsumer})
		links := delivered.Links()
		if len(links) != 1 || links[0].SpanContext.SpanID() != sent.SpanContext().SpanID() {
			t.Errorf("%s: links %+v, want one to %s", delivered.Name(), links, sent.SpanContext().SpanID())
		}
		wantAttrs(t, delivered, attribute.String("fabric.event", suffix), attribute.String("messaging.system", "nats"))
		wantAttrs(t, sent, attribute.String("fabric.event", suffix), attribute.String("messaging.operation.type", "send"))
	}
	for _, w := range wantTree {
		if w.child.SpanKind() != w.kind {
			t.Errorf("%s: kind %v, want %v", w.child.Name(), w.child.SpanKind(), w.kind)
		}
		parent := w.child.Parent().SpanID().String()
		want := clientSpan
		if w.parent != nil {
			want = w.parent.SpanContext().SpanID().String()
		}
		if parent != want {
			t.Errorf("%s: parent %s, want %s", w.child.Name(), parent, want)
		}
	}
	wantAttrs(t, request,
		attribute.String("fabric.route", "demo/count"),
		attribute.String("fabric.message_id", "t1"),
		attribute.String("fabric.outcome", "ok"))
	wantAttrs(t, send,
		attribute.String("messaging.system", "nats"),
		attribute.String("messaging.destination.name", "fabric.req.demo.count"),
		attribute.String("messaging.message.id", "t1"))
	wantAttrs(t, process,
		attribute.String("messaging.operation.type", "process"),
		attribute.String("fabric.route", "demo/count"),
		attribute.String("fabric.message_id", "t1"))
	wantAttrs(t, span("send demo/count:response"), attribute.Int64("fabric.seq", 2))
}

// A request the worker fails has error status and its :error code on the
// gateway's request span, the deliver span of the :error, and the worker's
// process span; a request without a traceparent starts a trace of its own
// at the gateway, whose id its frames carry.
func TestTraceOfAFailedRequest(t *testing.T) {
	g, rec := tracedFabric(t)
	ws, _ := fabrictest.Hello(t, g.URL)
	msgs := ws.Call("demo/fail", "f1", map[string]string{"code": "nope", "message": "no"})
	traceID := msgs[0].Trace
	if len(traceID) != 32 {
		t.Fatalf("frame trace %q, want a new trace id", traceID)
	}
	var spans []sdktrace.ReadOnlySpan
	fabrictest.Eventually(t, 5*time.Second, func() bool {
		spans = rec.Ended()
		for _, s := range spans {
			if s.Name() == "process demo/fail" {
				return true
			}
		}
		return false
	})
	for _, s := range spans {
		if s.SpanContext().TraceID().String() != traceID {
			t.Errorf("span %q in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), traceID)
		}
		switch s.Name() {
		case "demo/fail":
			if s.Parent().IsValid() {
				t.Errorf("request span has parent %s, want a root", s.Parent().SpanID())
			}
			fallthrough
		case "deliver demo/fail:error", "process demo/fail":
			if s.Status().Code.String() != "Error" {
				t.Errorf("%s: status %v, want Error", s.Name(), s.Status())
			}
			wantAttrs(t, s, attribute.String("fabric.error.code", "nope"))
		}
	}
}

// waitSpans waits a while for n spans to end, and returns those ended.
func waitSpans(rec *tracetest.SpanRecorder, n int) []sdktrace.ReadOnlySpan {
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.Ended()) < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return rec.Ended()
}

func names(spans []sdktrace.ReadOnlySpan) string {
	var out []string
	for _, s := range spans {
		out = append(out, fmt.Sprintf("%q", s.Name()))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func wantAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want ...attribute.KeyValue) {
	t.Helper()
	have := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		have[kv.Key] = kv.Value
	}
	for _, kv := range want {
		if v, ok := have[kv.Key]; !ok || v != kv.Value {
			t.Errorf("%s: %s = %v, want %v", s.Name(), kv.Key, v.String(), kv.Value.String())
		}
	}
}
