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
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/seed82ac63c1/fabric/workers"
	"github.com/seed82ac63c1/fabric/workers/demo"
	"github.com/seed82ac63c1/fabric/workers/demo/agents"
)

func runWorker(ctx context.Context, args []string) error {
	fs := newFlagSet("worker")
	var lf logFlags
	var af agentFlags
	natsURL := fs.String("nats", nats.DefaultURL, "NATS server URLs, comma-separated")
	natsAuth := registerNATSAuth(fs)
	prefix := fs.String("prefix", "fabric", "NATS subject prefix")
	withDemo := fs.Bool("demo", false, "serve the demo routes (demo/echo, demo/count, …)")
	withAgents := fs.Bool("agents", false, "serve the multi-agent demo's routes (agent/ask, agent/plan, agent/sql, agent/analyze, agent/chart)")
	maxConcurrent := fs.Int("max-concurrent", workers.DefaultMaxConcurrent, "handlers running at once")
	grace := fs.Duration("shutdown-grace", 30*time.Second, "time for handlers in flight to finish on SIGTERM")
	metricsListen := fs.String("metrics-listen", "", "address of an HTTP listener serving /metrics and /healthz (default: none)")
	debugListen := registerDebugListen(fs)
	af.register(fs)
	lf.register(fs, "json")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if !*withDemo && !*withAgents {
		return errors.New("worker: nothing to serve: pass --demo or --agents (your own workers use the workers package)")
	}
	if af.routes != "" && !*withAgents {
		return errors.New("worker: --agent-routes needs --agents")
	}
	log, err := lf.logger(os.Stderr)
	if err != nil {
		return err
	}
	stopTracing, err := setupTracing(ctx, "fabric-worker", log)
	if err != nil {
		return err
	}
	defer stopTracing()
	nc, err := connectNATS(*natsURL, "fabric-worker", log, natsAuth.options()...)
	if err != nil {
		return err
	}
	defer nc.Close()
	register := func(w *workers.Worker) error {
		if *withDemo {
			if err := demo.Register(w); err != nil {
				return err
			}
		}
		if *withAgents {
			return af.registerAgents(w)
		}
		return nil
	}
	stopDebug, err := serveDebug(*debugListen, log)
	if err != nil {
		return err
	}
	defer stopDebug()
	var opts []workers.Option
	if *metricsListen != "" {
		reg := newRegistry()
		stop, err := serveMetrics(*metricsListen, reg, nc, log)
		if err != nil {
			return err
		}
		defer stop() // after the worker has drained: its last counts stay visible until then
		opts = append(opts, workers.WithMetrics(reg))
	}
	return serveWorker(ctx, nc, workers.Config{Prefix: *prefix, MaxConcurrent: *maxConcurrent}, *grace, log, register, nil, opts...)
}

// serveMetrics serves reg on GET /metrics, and the NATS connection's health
// on GET /healthz (503 when disconnected, as a gateway's), at addr until
// stop is called.
func serveMetrics(addr string, reg *prometheus.Registry, nc *nats.Conn, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !nc.IsConnected() {
			http.Error(w, "nats: "+nc.Status().String(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	log.Info("metrics listening", "addr", ln.Addr().String())
	return serveHTTP(ln, mux, "metrics", log), nil
}

// agentFlags choose which agents a worker serves, and at what pace.
type agentFlags struct {
	routes string
	pace   time.Duration
}

func (f *agentFlags) register(fs interface {
	StringVar(*string, string, string, string)
	DurationVar(*time.Duration, string, time.Duration, string)
}) {
	fs.StringVar(&f.routes, "agent-routes", "", "with --agents: the agents' routes to serve, comma-separated (default: all)")
	fs.DurationVar(&f.pace, "agent-pace", agents.DefaultPace, "the agents' pause between two pieces of output; 0: none")
}

func (f *agentFlags) registerAgents(w *workers.Worker) error {
	var names []string
	for name := range strings.SplitSeq(f.routes, ",") {
		if name = strings.TrimSpace(name); name != "" {
			names = append(names, name)
		}
	}
	pace := f.pace
	if pace == 0 {
		pace = -1 // the flag's 0 means none; Config's 0 means the default
	}
	return agents.Register(w, agents.Config{Pace: pace}, names...)
}

// serveWorker serves the routes register adds until ctx is done, then
// drains: no new work, handlers in flight finish within grace, NATS drains.
// ready, if not nil, is called once the worker takes requests. opts come
// after the logger (workers.WithMetrics, say).
func serveWorker(ctx context.Context, nc *nats.Conn, cfg workers.Config, grace time.Duration, log *slog.Logger, register func(*workers.Worker) error, ready func(), opts ...workers.Option) error {
	w, err := workers.New(nc, cfg, append([]workers.Option{workers.WithLogger(log)}, opts...)...)
	if err != nil {
		return err
	}
	if err := register(w); err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	log.Info("worker serving", "nats", nc.ConnectedUrlRedacted())
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := w.Shutdown(sctx); err != nil {
		log.Warn("worker shutdown: handlers cancelled after the grace period", "err", err)
	}
	return drainNATS(sctx, nc)
}
