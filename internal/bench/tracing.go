package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// The tracing scenario's fabrics: the same gateway and worker, with the
// OpenTelemetry SDK off, on with nothing sampled, and on with every request
// sampled and exported over OTLP.
const (
	tracingOff      = "tracing off"
	tracingSampled0 = "sampled 0"
	tracingSampled1 = "sampled 1"
)

// Tracing measures what tracing costs a request, as Latency does (one
// connection, closed loop, 1 and 5 events), on three fabrics started side
// by side and measured in alternating rounds: one without tracing
// (OTEL_SDK_DISABLED: no SDK, whatever this process's environment says), one with the SDK installed, exporting over
// OTLP/HTTP, but sampling nothing (parentbased_traceidratio 0: trace
// context still flows), and one sampling every request and exporting its
// spans to a collector in this process, which decodes and counts them.
func Tracing(ctx context.Context, cfg Config) (_ *Report, err error) {
	bin, err := fabricBinary(cfg)
	if err != nil {
		return nil, err
	}
	sink, err := startOTLPSink()
	if err != nil {
		return nil, err
	}
	defer sink.close()
	otel := func(ratio string) []string {
		return []string{"OTEL_SDK_DISABLED=false", "OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_ENDPOINT=" + sink.url, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
			"OTEL_TRACES_SAMPLER=parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG=" + ratio}
	}
	variants := []struct {
		name string
		env  []string
	}{{tracingOff, []string{"OTEL_SDK_DISABLED=true"}}, {tracingSampled0, otel("0")}, {tracingSampled1, otel("1")}}

	var r *Report
	var targets []*latencyTarget
	for _, v := range variants {
		f, err := startFabric(ctx, bin, fabricOptions{durable: cfg.Durable, env: v.env})
		if err != nil {
			return nil, fmt.Errorf("bench: the fabric with %s: %w", v.name, err)
		}
		defer func() { err = errors.Join(err, f.stop()) }()
		if r == nil {
			r = newReport("tracing", cfg, f, map[string]string{"warmup": cfg.Warmup.String(), "duration": cfg.duration().String()})
		}
		c, err := dialFabric(ctx, f.wsURL(), nil)
		if err != nil {
			return nil, err
		}
		defer c.closeNormal()
		targets = append(targets, fabricTargets(v.name, c)...)
	}
	if err := measureRounds(ctx, cfg, targets); err != nil {
		return nil, err
	}
	// The last batch of spans leaves the processes within the batch
	// processor's delay (OTEL_BSP_SCHEDULE_DELAY, 5s by default).
	cfg.logf("tracing: waiting for the last spans")
	spansBefore := sink.spans.Load()
	if err := sleepCtx(ctx, 6*time.Second); err != nil {
		return nil, err
	}

	for _, k := range []string{caseOne, caseFive} {
		for _, which := range []string{"first", "last"} {
			var off Summary
			for _, t := range targets {
				if t.kase != k {
					continue
				}
				l := t.first
				if which == "last" {
					l = t.last
				}
				s := l.Summary()
				r.AddLatency(k, which, t.target, s)
				if t.target == tracingOff {
					off = s
				} else if which == "last" {
					r.AddValue(fmt.Sprintf("%s, %s: p50 overhead", k, t.target), overhead(s.P50, off.P50), "%")
					r.AddValue(fmt.Sprintf("%s, %s: p99 overhead", k, t.target), overhead(s.P99, off.P99), "%")
				}
			}
		}
	}
	var sampled int64
	for _, t := range targets {
		if t.target == tracingSampled1 {
			sampled += t.last.Summary().Count
		}
	}
	r.AddValue("requests sampled (sampled 1, measured)", float64(sampled), "")
	r.AddValue("spans received by the collector", float64(sink.spans.Load()), "")
	r.AddValue("spans received after the load", float64(sink.spans.Load()-spansBefore), "")
	r.AddValue("OTLP export requests", float64(sink.requests.Load()), "")
	r.AddValue("OTLP bytes received", float64(sink.bytes.Load()), "")
	if sink.spans.Load() == 0 {
		return r, errors.New("bench: the collector received no spans from the sampled fabric")
	}
	r.Notes = append(r.Notes,
		"three fabrics (NATS, worker, gateway each), measured in alternating rounds: "+tracingOff+" (OTEL_SDK_DISABLED=true), "+tracingSampled0+" (SDK with OTLP/HTTP export, OTEL_TRACES_SAMPLER=parentbased_traceidratio, ARG=0), "+tracingSampled1+" (ARG=1: every request, exported to a collector in the benchmark's process)",
		"overhead: a row's last-event percentile over the "+tracingOff+" row's, less 1, in %")
	return r, nil
}

// overhead returns how much more a is than b, in percent.
func overhead(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round((a/b-1)*1000) / 10
}

// measureRounds warms the targets up, then measures them in latencyRounds
// alternating rounds, each for its share of cfg's duration or requests.
func measureRounds(ctx context.Context, cfg Config, targets []*latencyTarget) error {
	if cfg.Warmup > 0 {
		cfg.logf("warming up for %s", cfg.Warmup)
		for _, t := range targets {
			if _, err := t.run(ctx, cfg.Warmup/time.Duration(len(targets)), 0, nil, nil); err != nil {
				return err
			}
		}
	}
	cfg.logf("measuring %d cases × targets in %d rounds", len(targets), latencyRounds)
	for _, t := range targets {
		t.first, t.last = NewLatencies(), NewLatencies()
	}
	for round := range latencyRounds {
		for _, t := range targets {
			var d time.Duration
			n := 0
			if cfg.Requests > 0 {
				// The requests split over the rounds; the last takes the rest.
				n = cfg.Requests / latencyRounds
				if round == latencyRounds-1 {
					n = cfg.Requests - n*(latencyRounds-1)
				}
			} else {
				d = cfg.duration() / latencyRounds
			}
			if _, err := t.run(ctx, d, n, t.first, t.last); err != nil {
				return err
			}
		}
	}
	return nil
}

// otlpSink is an OTLP/HTTP trace collector that keeps nothing: it decodes
// each export request, counts its spans and answers success.
type otlpSink struct {
	url                    string
	srv                    *http.Server
	spans, requests, bytes atomic.Int64
}

func startOTLPSink() (*otlpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &otlpSink{url: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", s.export)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *otlpSink) export(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 64<<20))
	var export collectortrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &export)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.requests.Add(1)
	s.bytes.Add(int64(len(body)))
	for _, rs := range export.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			s.spans.Add(int64(len(ss.Spans)))
		}
	}
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	_, _ = w.Write(out)
}

func (s *otlpSink) close() { _ = s.srv.Close() }
