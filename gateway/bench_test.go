package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/workers"
)

// The benchmarks measure the fabric, not its per-connection message rate:
// their gateways run with MessageRate -1 (unlimited).

// readUntilFinish reads frames until n finishes have arrived.
func readUntilFinish(b *testing.B, c *websocket.Conn, n int) {
	for n > 0 {
		_, msg, err := c.ReadMessage()
		if err != nil {
			b.Fatal(err)
		}
		if containsFinish(msg) {
			n--
		}
	}
}

// roundTrips sends requests typ with payload on one connection to url, one
// at a time, each until its :finish, for the benchmark's loop.
func roundTrips(b *testing.B, url, typ, payload string) {
	ws, _ := fabrictest.Hello(b, url)
	frames := make([][]byte, 1024)
	for i := range frames {
		frames[i] = fmt.Appendf(nil, `{"type":%q,"id":"m%d","payload":%s}`, typ, i, payload)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := ws.Conn.WriteMessage(websocket.TextMessage, frames[i%len(frames)]); err != nil {
			b.Fatal(err)
		}
		readUntilFinish(b, ws.Conn, 1)
	}
}

func containsFinish(msg []byte) bool { return bytes.Contains(msg, []byte(`:finish"`)) }

// BenchmarkRoundTrip: one connection, one request at a time, through a real
// gateway, NATS and demo worker: demo/echo (2 frames: response, finish) and
// demo/count n=4 (6 frames).
func BenchmarkRoundTrip(b *testing.B) {
	for _, bc := range []struct {
		name, typ, payload string
	}{
		{"echo", "demo/echo", `{"hello":"world"}`},
		{"count4", "demo/count", `{"n":4}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := fabrictest.Start(b, gateway.Config{MessageRate: -1})
			roundTrips(b, f.Gateway.URL, bc.typ, bc.payload)
		})
	}
}

// BenchmarkRoundTripDurable is BenchmarkRoundTrip/echo with a durable
// gateway (file storage): each request is claimed in the ledger and its
// events are stored. Ids are unique, as the ledger runs each id once.
func BenchmarkRoundTripDurable(b *testing.B) {
	ns := fabrictest.NATS(b)
	g := fabrictest.StartGateway(b, fabrictest.Connect(b, ns, "gateway"), gateway.Config{MessageRate: -1, Durable: &gateway.DurableConfig{}})
	fabrictest.StartDemoWorker(b, fabrictest.Connect(b, ns, "worker"), workers.Config{})
	ws, _ := fabrictest.Hello(b, g.URL)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		frame := fmt.Appendf(nil, `{"type":"demo/echo","id":"d%d","payload":{"hello":"world"}}`, i)
		if err := ws.Conn.WriteMessage(websocket.TextMessage, frame); err != nil {
			b.Fatal(err)
		}
		readUntilFinish(b, ws.Conn, 1)
	}
}

// BenchmarkPipelined: one connection with 64 requests of demo/count n=4 in
// flight at a time; reports events per second delivered to the client.
func BenchmarkPipelined(b *testing.B) {
	f := fabrictest.Start(b, gateway.Config{MessageRate: -1})
	ws, _ := fabrictest.Hello(b, f.Gateway.URL)
	const window = 64
	start := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	sent := 0
	for b.Loop() {
		for range window {
			frame := fmt.Appendf(nil, `{"type":"demo/count","id":"p%d","payload":{"n":4}}`, sent)
			if err := ws.Conn.WriteMessage(websocket.TextMessage, frame); err != nil {
				b.Fatal(err)
			}
			sent++
		}
		readUntilFinish(b, ws.Conn, window)
	}
	b.ReportMetric(float64(sent*6)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkNATSRequestBaseline is the floor the gateway adds to: a raw
// nats.go request/reply to a plain subscriber, same payload, same machine.
func BenchmarkNATSRequestBaseline(b *testing.B) {
	ns := fabrictest.NATS(b)
	server := fabrictest.Connect(b, ns, "echo")
	sub, err := server.Subscribe("bench.echo", func(m *nats.Msg) { _ = m.Respond(m.Data) })
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Unsubscribe()
	nc := fabrictest.Connect(b, ns, "client")
	payload := []byte(`{"hello":"world"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := nc.Request("bench.echo", payload, 5*time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCancelLatency: from the client's sys/cancel to the worker's
// handler seeing its ctx cancelled, through a real gateway and NATS.
func BenchmarkCancelLatency(b *testing.B) {
	f := fabrictest.Start(b, gateway.Config{MessageRate: -1})
	started, cancelled := make(chan struct{}, 1), make(chan time.Time, 1)
	fabrictest.StartWorker(b, fabrictest.Connect(b, f.NATS, "block-worker"), workers.Config{}, func(w *workers.Worker) error {
		return w.HandleRaw("bench/block", workers.HandlerFunc(func(ctx context.Context, _ *workers.Request, _ *workers.Stream) error {
			started <- struct{}{}
			<-ctx.Done()
			cancelled <- time.Now()
			return ctx.Err()
		}))
	})
	ws, _ := fabrictest.Hello(b, f.Gateway.URL)
	var total time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("c%d", i)
		ws.Request("bench/block", id, nil)
		<-started
		sent := time.Now()
		ws.Send(map[string]string{"type": "sys/cancel", "id": id})
		total += (<-cancelled).Sub(sent)
		readUntilFinish(b, ws.Conn, 1)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs-to-ctx")
}

// BenchmarkRoundTripTraced is BenchmarkRoundTrip/count4 (6 frames) with the
// gateway and the worker tracing: "off" with no SDK (the default: a no-op
// span per request); "on" with the SDK sampling every request, spans
// batched to an exporter that discards them; "unreachable" exporting over
// OTLP/HTTP to a port nobody listens on.
func BenchmarkRoundTripTraced(b *testing.B) {
	for _, mode := range []string{"off", "on", "unreachable"} {
		b.Run(mode, func(b *testing.B) {
			var tp trace.TracerProvider = noop.NewTracerProvider()
			switch mode {
			case "on":
				tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
			case "unreachable":
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				addr := ln.Addr().String()
				ln.Close()
				exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpoint(addr), otlptracehttp.WithInsecure())
				if err != nil {
					b.Fatal(err)
				}
				tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
			}
			if sdk, ok := tp.(*sdktrace.TracerProvider); ok {
				b.Cleanup(func() {
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					defer cancel()
					_ = sdk.Shutdown(ctx)
				})
			}
			ns := fabrictest.NATS(b)
			g := fabrictest.StartGateway(b, fabrictest.Connect(b, ns, "gateway"), gateway.Config{MessageRate: -1}, gateway.WithTracerProvider(tp))
			fabrictest.StartDemoWorker(b, fabrictest.Connect(b, ns, "worker"), workers.Config{}, workers.WithTracerProvider(tp))
			roundTrips(b, g.URL, "demo/count", `{"n":4}`)
		})
	}
}

// discard is a span exporter that drops every span.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }
