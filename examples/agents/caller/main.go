// Command caller is the client side of the agents example: it connects to a
// gateway, streams one research/ask request, printing each event as it
// arrives, then calls the route again with client.Invoke for its typed
// result.
//
//	go run ./examples/agents/caller --url ws://localhost:8080/ws --question "Why is the sky blue?"
//
// --url falls back to the FABRIC_URL environment variable. The exit status is
// 1 when the request fails (its :error is printed).
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
	"strings"
	"syscall"
	"time"

	"github.com/seed82ac63c1/fabric/client"
	"github.com/seed82ac63c1/fabric/examples/agents/routes"
	"github.com/seed82ac63c1/fabric/protocol"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "caller:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("caller", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", envOr("FABRIC_URL", "ws://localhost:8080/ws"), "gateway WebSocket URL (env FABRIC_URL)")
	question := fs.String("question", "Why is the sky blue?", "the research question")
	steps := fs.Int("steps", 0, fmt.Sprintf("research steps, 1..%d (0 means %d)", routes.MaxSteps, routes.DefaultSteps))
	timeout := fs.Duration("timeout", 30*time.Second, "give up, cancelling the request, after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	c, err := client.Dial(ctx, *url, client.Options{
		Name:   "agents-caller",
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	defer c.Close()
	params := routes.AskParams{Question: *question, Steps: *steps}

	// Stream: each event as it arrives, through :finish. Leaving the loop
	// early, or ctx ending, would cancel the request.
	fmt.Fprintf(stdout, "stream %s %q\n", routes.Ask.Type(), params.Question)
	var failed error
	for m, err := range c.Stream(ctx, routes.Ask.Type(), params) {
		if err != nil {
			return err
		}
		if err := printEvent(stdout, m); err != nil && failed == nil {
			failed = err
		}
	}
	if failed != nil {
		return failed
	}

	// Invoke: the same route, typed end to end; the events in between are
	// not needed here.
	fmt.Fprintf(stdout, "invoke %s %q\n", routes.Ask.Type(), params.Question)
	res, err := client.Invoke(ctx, c, routes.Ask, params)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "answer: %s\n", res.Answer)
	for _, s := range res.Sources {
		fmt.Fprintf(stdout, "source: %s\n", s)
	}
	return nil
}

// printEvent prints one event of research/ask as a line: its seq, its type
// and its payload, decoded into the type the route declares for it. It
// returns the payload of an :error event as a *protocol.Error.
func printEvent(w io.Writer, m protocol.Message) error {
	var detail string
	var failed error
	switch m.Suffix() {
	case protocol.SuffixProgress:
		var p routes.Progress
		if err := m.Decode(&p); err != nil {
			return err
		}
		detail = fmt.Sprintf("step %d: %s", p.Step, p.Note)
	case routes.SuffixToken:
		var t routes.Token
		if err := m.Decode(&t); err != nil {
			return err
		}
		detail = fmt.Sprintf("%q", t.Text)
	case protocol.SuffixResponse:
		var r routes.AskResult
		if err := m.Decode(&r); err != nil {
			return err
		}
		detail = fmt.Sprintf("answer of %d characters, %d sources", len(r.Answer), len(r.Sources))
	case protocol.SuffixError:
		var e protocol.Error
		if err := m.Decode(&e); err != nil {
			return err
		}
		detail, failed = e.Error(), &e
	}
	fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("%3d %-22s %s", m.Seq, m.Type, detail), " "))
	return failed
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
