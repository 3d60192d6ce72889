package telemetry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/internal/telemetry"
	"github.com/seed82ac63c1/fabric/workers"
)

// receiver is an OTLP/HTTP trace receiver: it decodes what exporters send
// to /v1/traces.
type receiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	svc   map[string]bool // service.name of each resource seen
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want protobuf on /v1/traces", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, kv := range rs.Resource.GetAttributes() {
			if kv.Key == "service.name" {
				rc.svc[kv.Value.GetStringValue()] = true
			}
		}
		for _, ss := range rs.ScopeSpans {
			rc.spans = append(rc.spans, ss.Spans...)
		}
	}
	rc.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, Setup installs an SDK that exports
// a real request's spans over OTLP/HTTP; Shutdown flushes them. The
// receiver gets them with OTEL_SERVICE_NAME as the service.
func TestSetupExportsOverOTLPHTTP(t *testing.T) {
	rc := &receiver{svc: map[string]bool{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "fabric-test")
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	if !telemetry.Enabled() {
		t.Fatal("Enabled() = false with an OTLP endpoint")
	}
	tp, shutdown, err := telemetry.Setup(context.Background(), "fabric-gateway", fabrictest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}

	ns := fabrictest.NATS(t)
	g := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gateway"), gateway.Config{}, gateway.WithTracerProvider(tp))
	fabrictest.StartWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{}, func(w *workers.Worker) error {
		return w.HandleRaw("test/hello", workers.HandlerFunc(func(ctx context.Context, req *workers.Request, s *workers.Stream) error {
			return s.Respond("hi")
		}))
	})
	ws, _ := fabrictest.Hello(t, g.URL)
	msgs := ws.Call("test/hello", "h1", nil)
	traceID := msgs[0].Trace
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !rc.svc["fabric-test"] {
		t.Errorf("services %v, want fabric-test (OTEL_SERVICE_NAME)", rc.svc)
	}
	got := map[string]bool{}
	for _, s := range rc.spans {
		if id := hexID(s.TraceId); id != traceID {
			t.Errorf("span %q in trace %s, want %s", s.Name, id, traceID)
		}
		got[s.Name] = true
	}
	for _, name := range []string{"test/hello", "send test/hello", "deliver test/hello:response", "deliver test/hello:finish"} {
		if !got[name] {
			t.Errorf("no span %q received; got %v", name, got)
		}
	}
}

// Without OTEL_* variables asking for it, Setup installs nothing.
func TestSetupOffByDefault(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	if telemetry.Enabled() {
		t.Fatal("Enabled() = true with no OTEL_* variable")
	}
	tp, shutdown, err := telemetry.Setup(context.Background(), "fabric", fabrictest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer("x").Start(context.Background(), "s")
	if span.IsRecording() {
		t.Error("a span records with tracing off")
	}
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_SDK_DISABLED", "true")
	if telemetry.Enabled() {
		t.Error("Enabled() = true with OTEL_SDK_DISABLED=true")
	}
}

// An exporter Fabric does not know is a configuration error, not a
// silent no-op.
func TestSetupRejectsUnknownExporter(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "zipkin")
	if _, _, err := telemetry.Setup(context.Background(), "fabric", fabrictest.Logger(t)); err == nil {
		t.Fatal("Setup accepted OTEL_TRACES_EXPORTER=zipkin")
	}
}

func hexID(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
