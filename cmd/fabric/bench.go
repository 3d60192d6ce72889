package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/seed82ac63c1/fabric/internal/bench"
)

const benchUsage = `Usage: fabric bench SCENARIO [flags]

Scenarios (each starts its own NATS server, gateway and demo worker as
child processes of this binary, and measures them from this process):
  idle      N connections that each send one request and idle: the gateway's RSS,
            heap, stacks and goroutines per connection
  latency   1 connection, one request at a time, of 1 event (demo/echo) and of 5
            (demo/count n=4): first and last event, against raw NATS over TCP,
            NATS over WebSocket and a plain WebSocket echo, in the same run
  storm     new connections per second with hello/welcome, at --rate
  throughput
            16, 64 and 256 connections, each keeping 8 requests of demo/count
            n=4 in flight: saturation events/s, latency and gateway CPU per
            million events, against NATS over WebSocket; then fixed rates, open
            loop: the highest with p99 < 10 ms
  resume    N clients streaming through 2 gateways; SIGKILL one: time to
            reconnect and resume on the other, events lost and duplicated
  tracing   latency as above on three fabrics side by side: tracing off, the
            SDK sampling nothing, and every request sampled and exported over
            OTLP to a collector in this process

Run "fabric bench SCENARIO -h" for its flags.
`

// runBench is `fabric bench`: a load generator, and the hidden children its
// baselines run (`fabric bench responder`, `fabric bench echo-server`,
// `fabric bench relay`).
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, benchUsage)
		return flag.ErrHelp
	}
	scenario, args := args[0], args[1:]
	switch scenario {
	case "responder":
		return runBenchResponder(ctx, args, stdout)
	case "echo-server":
		return runBenchEchoServer(ctx, args, stdout)
	case "relay":
		return runBenchRelay(ctx, args, stdout)
	}
	var run func(context.Context, bench.Config) (*bench.Report, error)
	fs := newFlagSet("bench " + scenario)
	var cfg bench.Config
	fs.StringVar(&cfg.Fabric, "fabric", "", "the fabric binary to run as NATS, gateway and worker (default: this one)")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured load before the measured phase")
	fs.BoolVar(&cfg.Durable, "durable", false, "run the gateway with --durable (JetStream, file storage)")
	jsonPath := fs.String("json", "", "also write the report as JSON to this file")
	switch scenario {
	case "idle":
		run = bench.Idle
		fs.IntVar(&cfg.Conns, "conns", 10000, "connections")
		fs.StringVar(&cfg.Profile, "profile", "", "save the gateway's heap and goroutine profiles, with the connections open, in this directory (go tool pprof reads them)")
		fs.DurationVar(&cfg.GCWait, "gc-wait", 0, "instead of forcing a garbage collection in the gateway before sampling (through its --debug-listen), wait up to this long for one of the runtime's own (at least every 2 minutes)")
	case "latency":
		run = bench.Latency
		fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per case and target")
		fs.IntVar(&cfg.Requests, "requests", 0, "measured requests per case and target, instead of --duration")
	case "tracing":
		run = bench.Tracing
		fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per case and fabric")
		fs.IntVar(&cfg.Requests, "requests", 0, "measured requests per case and fabric, instead of --duration")
	case "storm":
		run = bench.Storm
		fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time")
		fs.Float64Var(&cfg.Rate, "rate", 500, "new connections per second")
	case "throughput":
		fs.StringVar(&cfg.Profile, "profile", "", "save the gateway's and the worker's CPU profiles of the first measured load in this directory (go tool pprof reads them)")
		run = bench.Throughput
		cfg.ConnCounts = []int{16, 64, 256}
		fs.Func("conns", "comma-separated connection counts, one saturation phase each (default 16,64,256)", func(s string) (err error) {
			cfg.ConnCounts, err = parseList(s, strconv.Atoi)
			return err
		})
		fs.IntVar(&cfg.Window, "window", 8, "requests in flight per connection at saturation")
		fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per connection count and target")
		fs.Func("rate", "comma-separated fixed rates to offer, in events/s (default: steps of a tenth of the saturation rate until p99 ≥ 10ms)", func(s string) (err error) {
			cfg.Rates, err = parseList(s, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) })
			return err
		})
		fs.IntVar(&cfg.RateConns, "rate-conns", 64, "connections of the fixed rates")
		fs.DurationVar(&cfg.RateDuration, "rate-duration", 3*time.Second, "measured time per fixed rate")
	case "resume":
		run = bench.Resume
		fs.IntVar(&cfg.Clients, "clients", 1000, "streaming clients, over 2 gateways")
		fs.DurationVar(&cfg.Backoff, "backoff", 0, "a moved client waits a random time up to this before it reconnects")
		fs.IntVar(&cfg.Events, "events", 40, "events per stream (demo/count n)")
		fs.DurationVar(&cfg.Interval, "interval", 100*time.Millisecond, "time between a stream's events")
	default:
		fmt.Fprintf(stderr, "fabric bench: unknown scenario %q\n\n%s", scenario, benchUsage)
		return exitError(2)
	}
	if _, err := parse(fs, args); err != nil {
		return err
	}
	cfg.Log = stderr
	rep, err := run(ctx, cfg)
	if rep != nil {
		if werr := rep.WriteTable(stdout); werr != nil {
			err = errors.Join(err, werr)
		}
		if *jsonPath != "" {
			b, jerr := json.MarshalIndent(rep, "", "  ")
			if jerr == nil {
				jerr = os.WriteFile(*jsonPath, append(b, '\n'), 0o644)
			}
			err = errors.Join(err, jerr)
		}
	}
	return err
}

// parseList parses a comma-separated list of positive numbers.
func parseList[T int | float64](s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for f := range strings.SplitSeq(s, ",") {
		v, err := parse(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		if v <= 0 {
			return nil, fmt.Errorf("%v: not positive", v)
		}
		out = append(out, v)
	}
	return out, nil
}

// runBenchResponder is `fabric bench responder`, the NATS baselines'
// responder: a child of `fabric bench latency`.
func runBenchResponder(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("bench responder")
	url := fs.String("nats", "nats://127.0.0.1:4222", "NATS server URL")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	return bench.ServeResponder(ctx, *url, stdout)
}

// runBenchEchoServer is `fabric bench echo-server`, the plain WebSocket
// echo baseline: a child of `fabric bench latency`.
func runBenchEchoServer(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("bench echo-server")
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	return bench.ServeEcho(ctx, *listen, stdout)
}

// runBenchRelay is `fabric bench relay`, the bare WebSocket-to-NATS relay
// baseline: a child of `fabric bench latency`.
func runBenchRelay(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("bench relay")
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	url := fs.String("nats", "nats://127.0.0.1:4222", "NATS server URL")
	embed := fs.String("embed-nats", "", "run the NATS node in the relay, from this nats-server configuration `FILE`, instead of connecting to --nats")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	return bench.ServeRelay(ctx, *listen, *url, *embed, stdout)
}
