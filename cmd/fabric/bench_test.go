package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/seed82ac63c1/fabric/internal/bench"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
)

// runBenchScenario runs `fabric bench` with args and --json, and returns
// the report it wrote; it fails the test if the command failed.
func runBenchScenario(t *testing.T, args ...string) *bench.Report {
	t.Helper()
	tmp := t.TempDir()
	out := filepath.Join(tmp, "report.json")
	p := fabrictest.StartProcess(t, []string{"TMPDIR=" + tmp}, fabricBin, append(append([]string{"bench"}, args...), "--json", out)...)
	if code := p.Wait(60 * time.Second); code != 0 {
		t.Fatalf("fabric bench %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, p.Stdout(), p.Stderr())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r bench.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Errors != 0 {
		t.Errorf("%d errors\n%s", r.Errors, p.Stdout())
	}
	if r.Machine.CPUs == 0 || r.Machine.GoVersion == "" || r.Machine.Date.IsZero() {
		t.Errorf("machine: %+v", r.Machine)
	}
	for _, l := range r.Latencies {
		if l.Count == 0 || l.P50 <= 0 || l.P50 > l.P99 || l.P99 > l.P999 || l.P999 > l.Max {
			t.Errorf("%s %s %s: %+v", l.Case, l.Which, l.Target, l.Summary)
		}
	}
	// Every child has stopped and the temporary directory is gone.
	if left, _ := filepath.Glob(filepath.Join(tmp, "fabric-bench-*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	return &r
}

// TestBenchIdle: 50 idle connections against real child processes.
func TestBenchIdle(t *testing.T) {
	t.Parallel()
	r := runBenchScenario(t, "idle", "--conns", "50", "--gc-wait", "0", "--warmup", "200ms")
	if c, _ := r.Value("connections"); c != 50 {
		t.Errorf("connections %v, want 50", c)
	}
	if c, _ := r.Value("gateway connections (metric)"); c != 50 {
		t.Errorf("the gateway counts %v connections, want 50", c)
	}
	for _, name := range []string{"RSS per connection", "heap in use per connection", "goroutines per connection"} {
		if v, ok := r.Value(name); !ok || v <= 0 {
			t.Errorf("%s: %v", name, v)
		}
	}
	if len(r.Latencies) != 2 {
		t.Errorf("latencies: %+v", r.Latencies)
	}
}

// TestBenchLatency: 200 requests per case and target, with every baseline.
func TestBenchLatency(t *testing.T) {
	t.Parallel()
	r := runBenchScenario(t, "latency", "--requests", "200", "--warmup", "0")
	targets := map[string]int{}
	for _, l := range r.Latencies {
		targets[l.Target]++
		if l.Count != 200 {
			t.Errorf("%s %s %s: %d samples, want 200", l.Case, l.Which, l.Target, l.Count)
		}
		if (l.Target == bench.TargetFabric || l.Target == bench.TargetFabricEmbedded) && len(l.Ratios) != 5 {
			t.Errorf("%s %s: ratios %+v, want one per baseline", l.Case, l.Which, l.Ratios)
		}
	}
	for _, target := range []string{bench.TargetFabric, bench.TargetFabricEmbedded, bench.TargetNATSTCP, bench.TargetNATSWS, bench.TargetWSEcho, bench.TargetWSRelay, bench.TargetWSRelayEmbedded} {
		if targets[target] != 4 {
			t.Errorf("%s: %d rows, want 4 (2 cases × first, last)", target, targets[target])
		}
	}
}

// TestBenchStorm: 50 connects at 100 per second.
func TestBenchStorm(t *testing.T) {
	t.Parallel()
	r := runBenchScenario(t, "storm", "--rate", "100", "--duration", "500ms", "--warmup", "0")
	if c, _ := r.Value("connects"); c != 50 {
		t.Errorf("connects %v, want 50", c)
	}
	if v, _ := r.Value("achieved rate"); v <= 0 {
		t.Errorf("achieved rate %v", v)
	}
	if len(r.Latencies) != 1 || r.Latencies[0].Count != 50 {
		t.Errorf("latencies: %+v", r.Latencies)
	}
}

// TestBenchThroughput: 4 connections for a second on each target, and one
// fixed rate.
func TestBenchThroughput(t *testing.T) {
	t.Parallel()
	r := runBenchScenario(t, "throughput", "--conns", "4", "--duration", "1s", "--warmup", "200ms",
		"--rate", "600", "--rate-conns", "4", "--rate-duration", "500ms")
	for _, name := range []string{"fabric 4 conns: events/s", "fabric 4 conns: requests/s", "nats-ws 4 conns: replies/s",
		"4 conns: fabric events/s ÷ nats-ws replies/s", "fabric 4 conns: gateway CPU per million events",
		"ws-relay 4 conns: replies/s", "4 conns: fabric events/s ÷ ws-relay replies/s",
		"fabric-embedded 4 conns: events/s", "4 conns: fabric-embedded events/s ÷ nats-ws replies/s"} {
		if v, ok := r.Value(name); !ok || v <= 0 {
			t.Errorf("%s: %v", name, v)
		}
	}
	events, _ := r.Value("fabric 4 conns: events/s")
	requests, _ := r.Value("fabric 4 conns: requests/s")
	if math.Abs(events/requests-6) > 0.1 {
		t.Errorf("%v events/s for %v requests/s: want 6 events per request", events, requests)
	}
	if v, ok := r.Value("600 events/s offered: achieved"); !ok || v <= 0 {
		t.Errorf("achieved at a fixed rate: %v", v)
	}
	if len(r.Latencies) != 5 { // fabric, fabric-embedded, nats-ws, ws-relay; one fixed rate
		t.Errorf("latencies: %+v", r.Latencies)
	}
}

// TestBenchResume: 20 durable clients, half of them on the gateway that is
// killed: they resume on the other and lose nothing.
func TestBenchResume(t *testing.T) {
	t.Parallel()
	r := runBenchScenario(t, "resume", "--durable", "--clients", "20", "--events", "20", "--interval", "50ms", "--warmup", "0")
	want := map[string]float64{"clients moved (their gateway killed)": 10, "sessions resumed": 10,
		"events received": 20 * 22, "events lost": 0, "events duplicated": 0}
	for name, w := range want {
		if v, ok := r.Value(name); !ok || v != w {
			t.Errorf("%s: %v, want %v", name, v, w)
		}
	}
	if len(r.Latencies) != 2 {
		t.Errorf("latencies: %+v", r.Latencies)
	}
}

// TestBenchTracing: 100 requests per case on each of the three fabrics;
// the sampled one's spans reach the benchmark's collector.
func TestBenchTracing(t *testing.T) {
	t.Parallel()
	r := runBenchScenario(t, "tracing", "--requests", "100", "--warmup", "0")
	rows := map[string]int{}
	for _, l := range r.Latencies {
		rows[l.Target]++
		if l.Count != 100 {
			t.Errorf("%s %s %s: %d samples, want 100", l.Case, l.Which, l.Target, l.Count)
		}
	}
	for _, target := range []string{"tracing off", "sampled 0", "sampled 1"} {
		if rows[target] != 4 {
			t.Errorf("%s: %d rows, want 4 (2 cases × first, last)", target, rows[target])
		}
	}
	sampled, _ := r.Value("requests sampled (sampled 1, measured)")
	spans, _ := r.Value("spans received by the collector")
	// A sampled request makes a request span, a send span and a process
	// span, and a send and a deliver span per event: 2 events at least.
	if sampled != 200 || spans < 7*sampled {
		t.Errorf("%v requests sampled, %v spans received: want 200, and at least 7 spans each", sampled, spans)
	}
	if _, ok := r.Value("5 events, sampled 0: p50 overhead"); !ok {
		t.Errorf("no overhead of sampled 0: %+v", r.Values)
	}
}
