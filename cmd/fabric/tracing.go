package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/seed82ac63c1/fabric/internal/telemetry"
)

// setupTracing installs the OpenTelemetry SDK as the global tracer
// provider when the OTEL_* environment asks for it (docs/tracing.md); the
// gateway and workers of the process use it. The returned func flushes the
// spans left, within a few seconds, at exit.
func setupTracing(ctx context.Context, service string, log *slog.Logger) (func(), error) {
	_, shutdown, err := telemetry.Setup(ctx, service, log)
	if err != nil {
		return nil, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			log.Warn("tracing: spans not flushed", "err", err)
		}
	}, nil
}
