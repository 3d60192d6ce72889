package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/internal/tail"
)

const tailUsage = `Usage: fabric tail [flags]

Prints every request, event, cancel and push of a fabric as it crosses NATS,
one line each: the time, the session (its first 8 characters), the message
id, what happened, the seq, the trace id and the payload's first bytes.

  14:03:07.123  xMlfmDyW  m1          → demo/count                  -     4bf92f3577b34da6a3ce929d0e0e4736  {"n":3}
  14:03:07.124  xMlfmDyW  m1          demo/count:progress           #1    4bf92f3577b34da6a3ce929d0e0e4736  {"i":1}
  14:03:07.450  xMlfmDyW  m3          ✕ cancel demo/sleep           -     -

It only listens: it publishes nothing and joins no queue group. But while it
subscribes to request subjects, NATS no longer answers a request for a route
that no worker serves with no_responders: the gateway times it out instead.
--requests=false avoids that; requests are then known from their events.
See docs/debugging.md.

Flags:
`

func runTail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tail")
	natsURL := fs.String("nats", nats.DefaultURL, "NATS server URLs, comma-separated")
	natsAuth := registerNATSAuth(fs)
	prefix := fs.String("prefix", "fabric", "NATS subject prefix")
	var f tail.Filter
	fs.StringVar(&f.Route, "route", "", "only this route's requests, events, cancels and pushes")
	fs.StringVar(&f.Session, "session", "", "only this session's requests, events, cancels and pushes")
	fs.StringVar(&f.ID, "id", "", "only the requests with this message id")
	fs.BoolVar(&f.Errors, "errors", false, "only :error events, each after its request")
	asJSON := fs.Bool("json", false, "one JSON object per line instead")
	payloadBytes := fs.Int("payload-bytes", tail.DefaultPayloadBytes, "bytes of each payload to show; 0 shows none")
	requests := fs.Bool("requests", true, "subscribe to request subjects (see above)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), tailUsage)
		fs.PrintDefaults()
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	// The filters are this command's alone: FABRIC_ID names a gateway, and
	// FABRIC_ROUTE or FABRIC_SESSION in a shell would hide everything.
	for name, v := range map[string]*string{"route": &f.Route, "session": &f.Session, "id": &f.ID} {
		if !flagGiven(fs, name) {
			*v = ""
		}
	}
	if len(pos) > 0 {
		fs.Usage()
		return exitError(2)
	}
	if *payloadBytes < 0 {
		return errors.New("tail: --payload-bytes must be 0 or more")
	}
	cfg := tail.Config{Prefix: *prefix, Filter: f, PayloadBytes: *payloadBytes, NoRequests: !*requests}
	if *payloadBytes == 0 {
		cfg.PayloadBytes = -1 // Config's 0 means the default
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	nc, err := connectNATS(*natsURL, "fabric-tail", log, natsAuth.options()...)
	if err != nil {
		return err
	}
	defer nc.Close()

	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	w, err := tail.Start(ctx, nc, cfg, func(rec tail.Record) {
		if *asJSON {
			_ = enc.Encode(rec)
			return
		}
		fmt.Fprintln(stdout, tail.Line(rec))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "fabric tail: watching %s on %s\n", strings.Join(w.Subjects(), " "), nc.ConnectedUrlRedacted())
	if *requests {
		fmt.Fprintln(stderr, "fabric tail: while this runs, a request no worker serves times out instead of failing with no_responders (--requests=false avoids it)")
	}
	<-ctx.Done()
	w.Stop()
	if n := w.Dropped(); n > 0 {
		fmt.Fprintf(stderr, "fabric tail: %d messages dropped: the output was too slow\n", n)
	}
	return nil
}
