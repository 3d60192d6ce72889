package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/embeddednats"
	"github.com/seed82ac63c1/fabric/web"
)

func runGateway(ctx context.Context, args []string) error {
	fs := newFlagSet("gateway")
	var gf gatewayFlags
	var lf logFlags
	natsURL := fs.String("nats", nats.DefaultURL, "NATS server URLs, comma-separated")
	embedNATS := fs.String("embed-nats", "", "run a NATS server inside the gateway, configured by this nats-server configuration `FILE` (listen port, cluster routes, JetStream, accounts); the gateway connects to it in-process, workers and other nodes as to any NATS server; --nats is then not used")
	natsAuth := registerNATSAuth(fs)
	withInspector := fs.Bool("inspector", false, "serve the request inspector at /inspector: the recent requests of the whole fabric, with payload previews, to anyone who can reach --listen")
	var inf inspectorFlags
	gf.register(fs)
	inf.register(fs)
	lf.register(fs, "json")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	log, err := lf.logger(os.Stderr)
	if err != nil {
		return err
	}
	stopTracing, err := setupTracing(ctx, "fabric-gateway", log)
	if err != nil {
		return err
	}
	defer stopTracing()
	if gf.resumeSecret == "" {
		log.Warn("no resume secret (FABRIC_RESUME_SECRET): sessions resume only on this gateway")
	}
	natsOpts := natsAuth.options()
	if *embedNATS != "" {
		if flagGiven(fs, "nats") {
			return errors.New("gateway: --nats and --embed-nats: give one, the NATS to connect to or the NATS to run")
		}
		ns, err := embeddednats.StartFile(*embedNATS, log, 0)
		if err != nil {
			return err
		}
		// Last, after the gateway's connection has drained: the workers
		// connected to this node reconnect to the others.
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		log.Info("embedded NATS server ready", "url", ns.ClientURL(), "config", *embedNATS)
		// The gateway's own connections are pipes into the server: no
		// socket, no loopback round trip, and no TLS, whatever the node
		// asks of the clients that dial it (a tls:// URL would have
		// nats.go handshake over the pipe).
		*natsURL = strings.Replace(ns.ClientURL(), "tls://", "nats://", 1)
		natsOpts = append(natsOpts, nats.InProcessServer(ns))
	}
	nc, err := connectNATS(*natsURL, "fabric-gateway", log, natsOpts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	var site http.Handler
	if *withInspector {
		// Requests are known from their events: a subscription to the
		// request subjects would turn the cluster's no_responders into
		// timeouts.
		cfg := inf.config(gf.prefix)
		cfg.NoRequests = true
		insp, err := startInspector(ctx, *natsURL, cfg, log, natsOpts...)
		if err != nil {
			return err
		}
		defer insp.Close()
		site = insp.beside(nil)
		log.Warn("request inspector on at " + web.InspectorPath + ": it shows every request's ids and payload previews")
	}
	return serveGateway(ctx, nc, &gf, log, site, func(addr net.Addr) {
		log.Info("gateway listening", "addr", addr.String(), "nats", nc.ConnectedUrlRedacted())
	})
}

// serveGateway runs a gateway on nc until ctx is done, then shuts down in
// order: clients are told to go elsewhere (1001), the HTTP server stops, and
// the NATS connection drains. site, if not nil, serves every path that is not
// the gateway's own (/ws, /healthz, /readyz, /metrics): `fabric dev`'s page.
func serveGateway(ctx context.Context, nc *nats.Conn, gf *gatewayFlags, log *slog.Logger, site http.Handler, ready func(net.Addr)) error {
	cfg := gf.config()
	stopDebug, err := serveDebug(*gf.debugListen, log)
	if err != nil {
		return err
	}
	defer stopDebug()
	authCfg, authCloser, err := gf.auth.config(nc, gf.prefix, log)
	if err != nil {
		return err
	}
	defer authCloser.Close()
	cfg.Auth = authCfg
	if authCfg == nil {
		log.Info("no authentication configured: clients are anonymous")
	}
	gw, err := gateway.New(nc, cfg, gateway.WithLogger(log), gateway.WithRegistry(gf.metricsRegistry()))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", gf.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	handler := gw.Handler()
	if site != nil {
		mux := http.NewServeMux()
		mux.Handle("/", site)
		for _, path := range []string{"/ws", "/healthz", "/readyz", "/metrics"} {
			mux.Handle(path, handler)
		}
		handler = mux
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	ready(ln.Addr())

	select {
	case <-ctx.Done():
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	}
	log.Info("shutting down", "grace", gf.shutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), gf.shutdownGrace)
	defer cancel()
	if err := gw.Shutdown(sctx); err != nil {
		log.Warn("gateway shutdown incomplete", "err", err)
	}
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown incomplete", "err", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http server", "err", err)
	}
	return drainNATS(sctx, nc)
}

// drainNATS drains nc and waits for it to close.
func drainNATS(ctx context.Context, nc *nats.Conn) error {
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		return nil // already closed
	}
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		nc.Close()
		return nil
	}
}
