package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/workers"
	"github.com/seed82ac63c1/fabric/workers/demo"
)

var metricsListeningRE = regexp.MustCompile(`"msg":"metrics listening","addr":"([^"]+)"`)

// get fetches url and returns the status and body; status 0 when nothing
// answers.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// echo sends one demo/echo request over NATS, as a gateway does, and waits
// for its finish.
func echo(t *testing.T, nc *nats.Conn, id string) {
	t.Helper()
	const session = "AAAAAAAAAAAAAAAAAAAAAA"
	events := make(chan *nats.Msg, 8)
	sub, err := nc.ChanSubscribe("fabric.evt."+session+"."+id+".>", events)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	err = nc.PublishMsg(&nats.Msg{Subject: "fabric.req.demo.echo", Reply: "fabric.evt." + session + "." + id,
		Header: nats.Header{"Fabric-Id": {id}, "Fabric-Session": {session}}, Data: []byte(`"hi"`)})
	if err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case m := <-events:
			if strings.HasSuffix(m.Subject, ".finish") {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no finish")
		}
	}
}

// TestWorkerMetricsListen runs `fabric worker --metrics-listen` on a free
// port: /metrics has the worker's series from the start and counts what it
// serves, /healthz reports NATS, and the listener goes with the worker.
func TestWorkerMetricsListen(t *testing.T) {
	ns := fabrictest.NATS(t)
	worker := fabrictest.StartProcess(t, nil, fabricBin, "worker", "--demo", "--nats", ns.ClientURL(), "--metrics-listen", "127.0.0.1:0")
	base := "http://" + worker.WaitOutput(metricsListeningRE, 20*time.Second)
	worker.WaitOutput(regexp.MustCompile(`worker serving`), 20*time.Second)

	if code, body := get(t, base+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	code, body := get(t, base+"/metrics")
	for _, line := range []string{
		`fabric_worker_requests_total{outcome="ok",route="demo/echo"} 0`,
		`fabric_worker_handlers_in_flight{route="demo/count"} 0`,
		`fabric_worker_store_giveups_total 0`,
		`go_goroutines `,
	} {
		if code != http.StatusOK || !strings.Contains(body, line) {
			t.Fatalf("metrics (%d) lack %q:\n%s", code, line, body)
		}
	}

	echo(t, fabrictest.Connect(t, ns, "gateway"), "m1")
	fabrictest.Eventually(t, 10*time.Second, func() bool {
		_, body := get(t, base+"/metrics")
		return strings.Contains(body, `fabric_worker_requests_total{outcome="ok",route="demo/echo"} 1`+"\n") &&
			strings.Contains(body, `fabric_worker_events_total{route="demo/echo"} 2`+"\n") // response, finish
	})

	worker.Signal(syscall.SIGTERM)
	if code := worker.Wait(20 * time.Second); code != 0 {
		t.Fatalf("worker exit %d", code)
	}
	if code, _ := get(t, base+"/metrics"); code != 0 {
		t.Fatalf("metrics still served after exit: %d", code)
	}

	// A bad address stops the worker at start.
	bad := fabrictest.StartProcess(t, nil, fabricBin, "worker", "--demo", "--nats", ns.ClientURL(), "--metrics-listen", "127.0.0.1:http-alt-not-a-port")
	if code := bad.Wait(20 * time.Second); code != 1 || !strings.Contains(bad.Stderr(), "--metrics-listen") {
		t.Fatalf("bad --metrics-listen: exit %d, %s", code, bad.Stderr())
	}
}

// A worker given the gateway flags' registry has its metrics on the
// gateway's /metrics: what `fabric dev` does with its worker.
func TestGatewayServesWorkerMetrics(t *testing.T) {
	ns := fabrictest.NATS(t)
	log := slog.New(slog.DiscardHandler)
	fs := newFlagSet("test")
	var gf gatewayFlags
	gf.register(fs)
	if _, err := parse(fs, []string{"--listen", "127.0.0.1:0", "--drain-period", "-1s", "--handoff-timeout", "-1s"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	workerNC, gatewayNC := fabrictest.Connect(t, ns, "worker"), fabrictest.Connect(t, ns, "gateway")
	workerReady := make(chan struct{})
	workerDone := make(chan error, 1)
	go func() {
		workerDone <- serveWorker(ctx, workerNC, workers.Config{}, 5*time.Second, log,
			demo.Register, func() { close(workerReady) }, workers.WithMetrics(gf.metricsRegistry()))
	}()
	<-workerReady
	addr := make(chan net.Addr, 1)
	gatewayDone := make(chan error, 1)
	go func() {
		gatewayDone <- serveGateway(ctx, gatewayNC, &gf, log, nil, func(a net.Addr) { addr <- a })
	}()
	code, body := get(t, "http://"+(<-addr).String()+"/metrics")
	for _, line := range []string{
		"fabric_gateway_connections 0",
		`fabric_worker_requests_total{outcome="ok",route="demo/echo"} 0`,
		"go_goroutines ",
	} {
		if code != http.StatusOK || !strings.Contains(body, line) {
			t.Fatalf("gateway /metrics (%d) lack %q:\n%s", code, line, body)
		}
	}
	cancel()
	for _, done := range []chan error{gatewayDone, workerDone} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
