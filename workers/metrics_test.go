package workers_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/seed82ac63c1/fabric/internal/embeddednats"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers"
)

// samples gathers reg into "name{label="value",…}" → value, a histogram as
// its _count and _sum.
func samples(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			series := "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				out[mf.GetName()+series] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[mf.GetName()+series] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[mf.GetName()+"_count"+series] = float64(m.GetHistogram().GetSampleCount())
				out[mf.GetName()+"_sum"+series] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// sum adds up the series of samples whose key starts with prefix.
func sum(samples map[string]float64, prefix string) float64 {
	var n float64
	for k, v := range samples {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

// A worker with metrics counts each request under the outcome it had, its
// events, its duration and, while it runs, its handler. Two workers (one
// with a MaxDuration) share one registry and count together.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	ns := fabrictest.NATS(t)
	waiting := make(chan struct{}, 1)
	fabrictest.StartWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{}, func(w *workers.Worker) error {
		return errors.Join(
			w.HandleRaw("test/ok", workers.HandlerFunc(func(_ context.Context, _ *workers.Request, s *workers.Stream) error {
				if err := s.Progress(1); err != nil {
					return err
				}
				return s.Respond("done")
			})),
			w.HandleRaw("test/fail", workers.HandlerFunc(func(context.Context, *workers.Request, *workers.Stream) error {
				return errors.New("boom")
			})),
			w.HandleRaw("test/senderror", workers.HandlerFunc(func(_ context.Context, _ *workers.Request, s *workers.Stream) error {
				return s.Send(protocol.SuffixError, protocol.Error{Code: "nope", Message: "sent, not returned"})
			})),
			w.HandleRaw("test/wait", workers.HandlerFunc(func(ctx context.Context, _ *workers.Request, _ *workers.Stream) error {
				waiting <- struct{}{}
				<-ctx.Done()
				return ctx.Err()
			})),
			w.HandleRaw("test/panic", workers.HandlerFunc(func(context.Context, *workers.Request, *workers.Stream) error {
				panic("boom")
			})),
		)
	}, workers.WithMetrics(reg))
	fabrictest.StartWorker(t, fabrictest.Connect(t, ns, "slow worker"), workers.Config{MaxDuration: 50 * time.Millisecond}, func(w *workers.Worker) error {
		return w.HandleRaw("test/slow", workers.HandlerFunc(func(ctx context.Context, _ *workers.Request, _ *workers.Stream) error {
			<-ctx.Done()
			return ctx.Err()
		}))
	}, workers.WithMetrics(reg))
	b := &bus{t: t, nc: fabrictest.Connect(t, ns, "gateway")}

	routes := []string{"test/ok", "test/fail", "test/senderror", "test/wait", "test/panic", "test/slow"}
	outcomes := []string{"ok", "error", "cancelled", "timeout", "panic"}
	// want is every series the registry must hold, with its value: a route's
	// series exist from its registration.
	want := map[string]float64{
		"fabric_worker_store_republishes_total{}": 0,
		"fabric_worker_store_giveups_total{}":     0,
	}
	for _, r := range routes {
		for _, o := range outcomes {
			want[fmt.Sprintf("fabric_worker_requests_total{outcome=%q,route=%q}", o, r)] = 0
		}
		for _, name := range []string{"fabric_worker_handlers_in_flight", "fabric_worker_events_total", "fabric_worker_request_duration_seconds_count"} {
			want[fmt.Sprintf("%s{route=%q}", name, r)] = 0
		}
	}
	got := samples(t, reg)
	for k := range got {
		if strings.HasPrefix(k, "fabric_worker_request_duration_seconds_sum") {
			delete(got, k)
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("before any request:\n%s", diff(got, want))
	}

	// Every outcome, each request to its finish.
	b.collect(b.request("test/ok", "o1", `null`))
	b.collect(b.request("test/ok", "o2", `null`))
	b.collect(b.request("test/fail", "f1", `null`))
	b.collect(b.request("test/senderror", "e1", `null`))
	b.collect(b.request("test/panic", "p1", `null`))
	b.collect(b.request("test/slow", "s1", `null`))
	ch := b.request("test/wait", "c1", `null`)
	<-waiting
	if n := samples(t, reg)[`fabric_worker_handlers_in_flight{route="test/wait"}`]; n != 1 {
		t.Fatalf("test/wait in flight: %v, want 1", n)
	}
	b.cancel("c1")
	b.collect(ch)

	// The client has the finish; the metrics follow it at once.
	fabrictest.Eventually(t, 5*time.Second, func() bool {
		return sum(samples(t, reg), "fabric_worker_requests_total") == 7
	})
	for key, v := range map[string]float64{
		`fabric_worker_requests_total{outcome="ok",route="test/ok"}`:           2,
		`fabric_worker_requests_total{outcome="error",route="test/fail"}`:      1,
		`fabric_worker_requests_total{outcome="error",route="test/senderror"}`: 1,
		`fabric_worker_requests_total{outcome="panic",route="test/panic"}`:     1,
		`fabric_worker_requests_total{outcome="timeout",route="test/slow"}`:    1,
		`fabric_worker_requests_total{outcome="cancelled",route="test/wait"}`:  1,
		`fabric_worker_events_total{route="test/ok"}`:                          6, // progress, response, finish twice
		`fabric_worker_events_total{route="test/fail"}`:                        2, // error, finish
		`fabric_worker_events_total{route="test/senderror"}`:                   2,
		`fabric_worker_events_total{route="test/panic"}`:                       2,
		`fabric_worker_events_total{route="test/slow"}`:                        2,
		`fabric_worker_events_total{route="test/wait"}`:                        2,
		`fabric_worker_request_duration_seconds_count{route="test/ok"}`:        2,
		`fabric_worker_request_duration_seconds_count{route="test/fail"}`:      1,
		`fabric_worker_request_duration_seconds_count{route="test/senderror"}`: 1,
		`fabric_worker_request_duration_seconds_count{route="test/panic"}`:     1,
		`fabric_worker_request_duration_seconds_count{route="test/slow"}`:      1,
		`fabric_worker_request_duration_seconds_count{route="test/wait"}`:      1,
		`fabric_worker_handlers_in_flight{route="test/wait"}`:                  0,
		`fabric_worker_requests_total{outcome="ok",route="test/fail"}`:         0,
		`fabric_worker_requests_total{outcome="cancelled",route="test/slow"}`:  0,
		`fabric_worker_requests_total{outcome="error",route="test/panic"}`:     0,
		`fabric_worker_store_republishes_total{}`:                              0,
		`fabric_worker_store_giveups_total{}`:                                  0,
	} {
		want[key] = v
	}
	got = samples(t, reg)
	slowSeconds := got[`fabric_worker_request_duration_seconds_sum{route="test/slow"}`]
	for k := range got {
		if strings.HasPrefix(k, "fabric_worker_request_duration_seconds_sum") {
			delete(got, k)
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("after the requests:\n%s", diff(got, want))
	}
	if slowSeconds < 0.05 {
		t.Fatalf("test/slow took %vs, less than its MaxDuration", slowSeconds)
	}
}

// diff lists the series where got and want differ.
func diff(got, want map[string]float64) string {
	var lines []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[k]; !ok || g != want[k] {
			lines = append(lines, fmt.Sprintf("  %s: got %v (present %v), want %v", k, g, ok, want[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			lines = append(lines, fmt.Sprintf("  %s: got %v, not expected", k, got[k]))
		}
	}
	return strings.Join(lines, "\n")
}

// In durable mode, a pass that publishes events again after a failed ack
// is counted, and so is a request whose events are given up; events
// published again are not counted as events.
func TestDurableMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	ns := fabrictest.NATS(t)
	workerNC := fabrictest.Connect(t, ns, "worker")
	gates := map[string]chan struct{}{"d1": make(chan struct{}), "d2": make(chan struct{})}
	fabrictest.StartWorker(t, workerNC, workers.Config{}, func(w *workers.Worker) error {
		return w.HandleRaw("test/stream", workers.HandlerFunc(func(_ context.Context, req *workers.Request, s *workers.Stream) error {
			if err := s.Progress(1); err != nil {
				return err
			}
			<-gates[req.ID]
			return s.Progress(2)
		}))
	}, workers.WithMetrics(reg))
	nc := fabrictest.Connect(t, ns, "gateway")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	streamCfg := jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"fabric.evt.>"}, Storage: jetstream.MemoryStorage}
	stream, err := js.CreateStream(ctx, streamCfg)
	if err != nil {
		t.Fatal(err)
	}
	metric := func(name string) float64 { return samples(t, reg)[name] }
	const (
		republishes = "fabric_worker_store_republishes_total{}"
		giveUps     = "fabric_worker_store_giveups_total{}"
		events      = `fabric_worker_events_total{route="test/stream"}`
	)
	request := func(id string) {
		t.Helper()
		err := nc.PublishMsg(&nats.Msg{Subject: "fabric.req.test.stream", Reply: "fabric.evt." + session + "." + id,
			Header: nats.Header{"Fabric-Id": {id}, "Fabric-Session": {session}, "Fabric-Durable": {"1"}}})
		if err != nil {
			t.Fatal(err)
		}
	}

	// d1: the store acknowledges the first event, then goes away until the
	// worker has published again; it then gets the rest.
	request("d1")
	waitStored(t, stream, 1)
	if n := metric(republishes); n != 0 {
		t.Fatalf("republishes with every ack received: %v", n)
	}
	if err := js.DeleteStream(ctx, "EVENTS"); err != nil {
		t.Fatal(err)
	}
	close(gates["d1"])
	fabrictest.Eventually(t, 10*time.Second, func() bool { return metric(republishes) > 0 })
	if stream, err = js.CreateStream(ctx, streamCfg); err != nil {
		t.Fatal(err)
	}
	waitStored(t, stream, 2) // progress 2 and the finish
	fabrictest.Eventually(t, 5*time.Second, func() bool {
		return metric(`fabric_worker_requests_total{outcome="ok",route="test/stream"}`) == 1
	})
	if got := samples(t, reg); got[events] != 3 || got[giveUps] != 0 {
		t.Fatalf("d1 stored after a republish: %v", got)
	}

	// d2: the store goes away and the worker's connection closes: the
	// worker gives the request's unstored events up.
	request("d2")
	fabrictest.Eventually(t, 5*time.Second, func() bool { return metric(events) == 4 })
	before := metric(republishes)
	if err := js.DeleteStream(ctx, "EVENTS"); err != nil {
		t.Fatal(err)
	}
	close(gates["d2"])
	fabrictest.Eventually(t, 10*time.Second, func() bool { return metric(republishes) > before })
	workerNC.Close()
	fabrictest.Eventually(t, 10*time.Second, func() bool { return metric(giveUps) == 1 })
}

// ExampleWithMetrics registers a worker's metrics on a registry and serves
// it on /metrics, as `fabric worker --metrics-listen` does. A route's
// series exist, at 0, from its registration.
func ExampleWithMetrics() {
	ns, _ := embeddednats.Start(embeddednats.Config{})
	defer ns.WaitForShutdown()
	defer ns.Shutdown()
	nc, _ := nats.Connect(ns.ClientURL())
	defer nc.Close()

	reg := prometheus.NewRegistry()
	w, _ := workers.New(nc, workers.Config{}, workers.WithMetrics(reg), workers.WithLogger(slog.New(slog.DiscardHandler)))
	_ = workers.Handle(w, Greet, func(ctx context.Context, p GreetParams, s *workers.Stream) (Greeting, error) {
		return Greeting{Text: "Hello, " + p.Name + "!"}, nil
	})
	_ = w.Start()
	defer w.Shutdown(context.Background())

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "fabric_worker_requests_total{") {
			fmt.Print(line)
		}
	}
	// Output:
	// fabric_worker_requests_total{outcome="cancelled",route="example/greet"} 0
	// fabric_worker_requests_total{outcome="error",route="example/greet"} 0
	// fabric_worker_requests_total{outcome="ok",route="example/greet"} 0
	// fabric_worker_requests_total{outcome="panic",route="example/greet"} 0
	// fabric_worker_requests_total{outcome="timeout",route="example/greet"} 0
}
