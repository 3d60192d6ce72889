package bench

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"
)

func TestBenchLatenciesSummary(t *testing.T) {
	l := NewLatencies()
	if s := l.Summary(); s.Count != 0 || s.P50 != 0 {
		t.Fatalf("empty: %+v", s)
	}
	for i := 1; i <= 1000; i++ { // 1 µs … 1000 µs, one each
		l.Record(time.Duration(i) * time.Microsecond)
	}
	l.Record(2 * time.Minute) // beyond the range: kept as a minute
	l.Fail()
	s := l.Summary()
	within := func(name string, got, want float64) {
		t.Helper()
		if got < want*0.995 || got > want*1.005 { // 3 significant digits
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if s.Count != 1001 || s.Errors != 1 {
		t.Errorf("count %d errors %d", s.Count, s.Errors)
	}
	within("min", s.Min, 1)
	within("p50", s.P50, 501)
	within("p90", s.P90, 901)
	within("p99", s.P99, 991)
	within("p99.9", s.P999, 1000)
	within("max", s.Max, 60e6)
	if !(s.P50 <= s.P90 && s.P90 <= s.P99 && s.P99 <= s.P999 && s.P999 <= s.Max) {
		t.Errorf("not monotonic: %+v", s)
	}
}

func TestBenchParseCPUInfo(t *testing.T) {
	const info = `processor	: 0
vendor_id	: AuthenticAMD
model name	: AMD EPYC 7B13
flags		: fpu vme

processor	: 1
model name	: AMD EPYC 7B13
`
	model, n := parseCPUInfo(strings.NewReader(info))
	if model != "AMD EPYC 7B13" || n != 2 {
		t.Errorf("got %q, %d", model, n)
	}
	if model, n := parseCPUInfo(strings.NewReader("")); model != "" || n != 0 {
		t.Errorf("empty: %q, %d", model, n)
	}
}

func TestBenchParseMemTotal(t *testing.T) {
	if got := parseMemTotal(strings.NewReader("MemTotal:       24684084 kB\nMemFree:  1 kB\n")); got != 24684084*1024 {
		t.Errorf("got %d", got)
	}
	if got := parseMemTotal(strings.NewReader("MemFree: 1 kB\n")); got != 0 {
		t.Errorf("absent: %d", got)
	}
}

func TestBenchParseStatCPU(t *testing.T) {
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime …
	stat := "4242 (fab ric) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 8 0 100 0 0\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil || got != 3250*time.Millisecond {
		t.Errorf("got %v, %v; want 3.25s", got, err)
	}
	for _, bad := range []string{"", "4242 (x) S 1", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 u s"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestBenchParseMetrics(t *testing.T) {
	const text = `# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 42
go_memstats_heap_inuse_bytes 1.2345e+07
fabric_gateway_closes_total{code="1000"} 3
fabric_gateway_connections 7 1700000000000
`
	m, err := parseMetrics(strings.NewReader(text), []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "fabric_gateway_connections"})
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 42 || m["go_memstats_heap_inuse_bytes"] != 12345000 || m["fabric_gateway_connections"] != 7 {
		t.Errorf("got %v", m)
	}
	if _, err := parseMetrics(strings.NewReader(text), []string{"go_threads"}); err == nil {
		t.Error("a missing metric is not an error")
	}
}

func TestBenchGCTrace(t *testing.T) {
	var g gcTrace
	g.line(`{"level":"INFO","msg":"gateway listening"}`)
	g.line("gc 1 @0.012s 2%: 0.016+1.2+0.003 ms clock, 0.032+0.10/0.50/1.1+0.006 ms cpu, 3->4->1 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P")
	g.line("gc 2 @120.5s 0%: 0.02+3+0.01 ms clock, 0.04+0/2/5+0.02 ms cpu, 80->80->61 MB, 90 MB goal, 1 MB stacks, 0 MB globals, 2 P (forced)")
	n, live, at := g.last()
	if n != 2 || live != 61<<20 || at.IsZero() {
		t.Errorf("got %d collections, live %d, at %v", n, live, at)
	}
}

func TestBenchFrameType(t *testing.T) {
	for frame, want := range map[string]string{
		`{"type":"demo/echo:finish","id":"m1","seq":2}`: "demo/echo:finish",
		`{"type":"sys/ping"}`:                           "sys/ping",
		`{"id":"m1","type":"x"}`:                        "",
		`{"type":"unterminated`:                         "",
		``:                                              "",
	} {
		if got := frameType([]byte(frame)); got != want {
			t.Errorf("%s: %q, want %q", frame, got, want)
		}
	}
}

func TestBenchSourceIP(t *testing.T) {
	for i, want := range map[int]string{0: "127.0.0.2", connsPerSource - 1: "127.0.0.2", connsPerSource: "127.0.0.3", 9999: "127.0.0.3", 10000: "127.0.0.4"} {
		if got := sourceIP(i); !got.Equal(net.ParseIP(want)) {
			t.Errorf("%d: %s, want %s", i, got, want)
		}
	}
}

func TestBenchReport(t *testing.T) {
	r := &Report{Scenario: "latency", Mode: "core", Settings: map[string]string{"requests": "10", "duration": "1s"},
		Machine: Machine{CPUModel: "Test CPU", CPUs: 2, MemoryBytes: 8 << 30, Kernel: "6.1", OS: "linux", Arch: "amd64", GoVersion: "go1.26", Date: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)}}
	r.AddLatency(caseOne, "last", TargetFabric, Summary{Count: 10, P50: 300, P90: 400, P99: 600, P999: 900, Max: 1000})
	r.AddLatency(caseOne, "last", TargetNATSWS, Summary{Count: 10, P50: 150, P90: 200, P99: 200, P999: 300, Max: 400})
	r.AddLatency(caseOne, "first", TargetNATSWS, Summary{Count: 10, P50: 1, P99: 1, P999: 1, Max: 1})
	r.AddLatency(caseFive, "last", TargetNATSTCP, Summary{Count: 10, Errors: 2, P50: 100, P99: 100, P999: 100, Max: 100})
	r.AddValue("RSS per connection", 6000, "bytes")
	r.AddValue("goroutines per connection", 1, "")
	r.AddValue("connect rate", 2790.4, "conns/s")
	r.Notes = append(r.Notes, "a note")
	r.ComputeRatios()

	f := r.Latencies[0]
	if len(f.Ratios) != 1 || f.Ratios[0] != (Ratio{Baseline: TargetNATSWS, P50: 2, P99: 3, P999: 3}) {
		t.Errorf("ratios: %+v", f.Ratios)
	}
	if r.Errors != 2 {
		t.Errorf("errors %d, want the rows' 2", r.Errors)
	}
	if v, ok := r.Value("goroutines per connection"); !ok || v != 1 {
		t.Errorf("Value: %v %v", v, ok)
	}
	var buf bytes.Buffer
	if err := r.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := strings.Join(strings.Fields(buf.String()), " ") // columns' widths aside
	for _, want := range []string{
		"fabric bench latency (core mode), 2026-01-02 03:04 UTC",
		"machine: Test CPU, 2 CPUs, 8.00 GiB memory, linux 6.1, go1.26/amd64",
		"settings: --duration 1s --requests 10",
		"1 event last fabric 10 0 300 400 600 900 1000",
		"1 event last fabric nats-ws 2.00× 3.00× 3.00×",
		"RSS per connection 5.86 KiB",
		"connect rate 2790.4 conns/s",
		"errors: 2",
		"note: a note",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table has no %q:\n%s", want, out)
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.Latencies[0].P99 != 600 || back.Machine.CPUModel != "Test CPU" {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
}

func TestBenchFormatBytes(t *testing.T) {
	for b, want := range map[float64]string{0: "0 B", 512: "512 B", 1536: "1.50 KiB", 3 << 20: "3.00 MiB", -2048: "-2.00 KiB"} {
		if got := formatBytes(b); got != want {
			t.Errorf("%v: %q, want %q", b, got, want)
		}
	}
}
