// Command worker is the worker side of the agents example: a process that
// serves the research agent's routes (package routes) over NATS, as many
// copies as you like, on any machine that reaches the NATS server.
//
//	go run ./examples/agents/worker --nats nats://127.0.0.1:4222
//
// --nats falls back to the FABRIC_NATS environment variable, then to
// nats://127.0.0.1:4222. On SIGINT or SIGTERM the worker drains: it stops
// taking requests, lets those in flight finish (for up to --shutdown-grace,
// then cancels them), drains its NATS connection and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/examples/agents"
	"github.com/seed82ac63c1/fabric/examples/agents/routes"
	"github.com/seed82ac63c1/fabric/workers"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "worker:", err)
		}
		os.Exit(1)
	}
}

// run serves until ctx is done, then drains.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := fs.String("nats", envOr("FABRIC_NATS", nats.DefaultURL), "NATS server URLs, comma-separated (env FABRIC_NATS)")
	stepDelay := fs.Duration("step-delay", 300*time.Millisecond, "time each research step takes (a stand-in for model calls)")
	maxConcurrent := fs.Int("max-concurrent", workers.DefaultMaxConcurrent, "requests handled at once")
	grace := fs.Duration("shutdown-grace", 30*time.Second, "time requests in flight have to finish on SIGTERM")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	closed := make(chan struct{})
	nc, err := nats.Connect(*natsURL,
		nats.Name("agents-worker"),
		nats.MaxReconnects(-1),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
	)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", *natsURL, err)
	}
	defer nc.Close()

	w, err := workers.New(nc, workers.Config{MaxConcurrent: *maxConcurrent}, workers.WithLogger(log))
	if err != nil {
		return err
	}
	if err := agents.Register(w, agents.Config{StepDelay: *stepDelay}); err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	log.Info("agents worker ready", "route", routes.Ask.Type(), "nats", nc.ConnectedUrlRedacted())

	<-ctx.Done()
	log.Info("agents worker draining", "grace", *grace)
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := w.Shutdown(sctx); err != nil {
		log.Warn("grace period over: requests in flight were cancelled", "err", err)
	}
	// Shutdown has stopped the subscriptions and waited for the handlers;
	// Drain flushes their last events before closing the connection.
	if err := nc.Drain(); err != nil {
		return fmt.Errorf("drain NATS: %w", err)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		log.Warn("NATS drain did not complete in time")
	}
	log.Info("agents worker stopped")
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
