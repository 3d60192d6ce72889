package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/seed82ac63c1/fabric/internal/embeddednats"
	"github.com/seed82ac63c1/fabric/web"
	"github.com/seed82ac63c1/fabric/workers"
	"github.com/seed82ac63c1/fabric/workers/demo"
)

func runDev(ctx context.Context, args []string) error {
	fs := newFlagSet("dev")
	var gf gatewayFlags
	var lf logFlags
	var af agentFlags
	var inf inspectorFlags
	natsPort := fs.Int("nats-port", 0, "port of the embedded NATS server (default: random)")
	gf.register(fs)
	af.register(fs)
	inf.register(fs)
	lf.register(fs, "text")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if !flagGiven(fs, "durable") {
		gf.durable = true // the embedded NATS has JetStream: nothing is lost on a reconnect
	}
	if !flagGiven(fs, "drain-period") {
		gf.cfg.DrainPeriod = -1 // no other gateway to spread the load onto
	}
	if !flagGiven(fs, "handoff-timeout") {
		gf.cfg.HandoffTimeout = -1 // the only gateway: no one to hand sessions to
	}
	if gf.allowedOrigins == "" {
		gf.allowedOrigins = devOrigins // pages on any local port may connect; other sites may not
	}
	log, err := lf.logger(os.Stderr)
	if err != nil {
		return err
	}
	stopTracing, err := setupTracing(ctx, "fabric-dev", log)
	if err != nil {
		return err
	}
	defer stopTracing()
	store, err := os.MkdirTemp("", "fabric-dev-jetstream-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(store)
	ns, err := embeddednats.Start(embeddednats.Config{Port: *natsPort, JetStream: true, StoreDir: store})
	if err != nil {
		return err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()

	workerNC, err := connectNATS(ns.ClientURL(), "fabric-dev-worker", log)
	if err != nil {
		return err
	}
	defer workerNC.Close()
	workerCtx, stopWorker := context.WithCancel(context.Background())
	workerDone := make(chan error, 1)
	workerReady := make(chan struct{})
	go func() {
		workerDone <- serveWorker(workerCtx, workerNC, workers.Config{Prefix: gf.prefix}, 5*time.Second, log, func(w *workers.Worker) error {
			return errors.Join(demo.Register(w), af.registerAgents(w))
		}, func() { close(workerReady) }, workers.WithMetrics(gf.metricsRegistry()))
	}()
	// The gateway says it listens only once the routes are served, so a
	// request right after that finds a worker.
	select {
	case <-workerReady:
	case err := <-workerDone:
		stopWorker()
		return err
	}

	insp, err := startInspector(ctx, ns.ClientURL(), inf.config(gf.prefix, devRoutes(&af)...), log)
	if err != nil {
		stopWorker()
		<-workerDone
		return err
	}
	defer insp.Close()

	gatewayNC, err := connectNATS(ns.ClientURL(), "fabric-dev-gateway", log)
	if err != nil {
		stopWorker()
		<-workerDone
		return err
	}
	defer gatewayNC.Close()
	err = serveGateway(ctx, gatewayNC, &gf, log, insp.beside(web.Handler()), func(addr net.Addr) {
		url := wsURL(addr)
		fmt.Fprintf(os.Stdout, "fabric dev: gateway listening on %s\n", url)
		fmt.Fprintf(os.Stdout, "fabric dev: embedded NATS on %s (fabric worker --nats %s --demo adds workers)\n", ns.ClientURL(), ns.ClientURL())
		fmt.Fprintf(os.Stdout, "fabric dev: try  go run ./cmd/fabric call demo/count '{\"n\":3}' --url %s\n", url)
		fmt.Fprintf(os.Stdout, "fabric dev: the multi-agent demo is at %s\n", pageURL(addr))
		fmt.Fprintf(os.Stdout, "fabric dev: the request inspector is at %s\n", inspectorURL(addr))
	})
	stopWorker()
	if werr := <-workerDone; err == nil {
		err = werr
	}
	return err
}

// pageURL is the URL of the demo page for a listener address.
func pageURL(addr net.Addr) string {
	return "http" + strings.TrimSuffix(strings.TrimPrefix(wsURL(addr), "ws"), "ws")
}

// wsURL is the WebSocket URL a local client uses for a listener address.
func wsURL(addr net.Addr) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); host == "" || ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return "ws://" + host + ":" + port + "/ws"
}
