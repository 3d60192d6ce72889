package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/workers"
	"github.com/seed82ac63c1/fabric/workers/demo"
)

func runWorker(ctx context.Context, args []string) error {
	fs := newFlagSet("worker")
	var lf logFlags
	natsURL := fs.String("nats", nats.DefaultURL, "NATS server URLs, comma-separated")
	prefix := fs.String("prefix", "fabric", "NATS subject prefix")
	withDemo := fs.Bool("demo", false, "serve the demo routes (demo/echo, demo/count, …)")
	maxConcurrent := fs.Int("max-concurrent", workers.DefaultMaxConcurrent, "handlers running at once")
	grace := fs.Duration("shutdown-grace", 30*time.Second, "time for handlers in flight to finish on SIGTERM")
	lf.register(fs, "json")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if !*withDemo {
		return errors.New("worker: nothing to serve: pass --demo (your own workers use the workers package)")
	}
	log, err := lf.logger(os.Stderr)
	if err != nil {
		return err
	}
	nc, err := connectNATS(*natsURL, "fabric-worker", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	return serveDemoWorker(ctx, nc, workers.Config{Prefix: *prefix, MaxConcurrent: *maxConcurrent}, *grace, log)
}

// serveDemoWorker serves the demo routes until ctx is done, then drains:
// no new work, handlers in flight finish within grace, NATS drains.
func serveDemoWorker(ctx context.Context, nc *nats.Conn, cfg workers.Config, grace time.Duration, log *slog.Logger) error {
	w, err := workers.New(nc, cfg, workers.WithLogger(log))
	if err != nil {
		return err
	}
	if err := demo.Register(w); err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	log.Info("worker serving the demo routes", "nats", nc.ConnectedUrlRedacted())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := w.Shutdown(sctx); err != nil {
		log.Warn("worker shutdown: handlers cancelled after the grace period", "err", err)
	}
	return drainNATS(sctx, nc)
}
