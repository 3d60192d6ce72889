package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"
)

// The latency scenario's cases: what one request asks for.
const (
	caseOne  = "1 event"  // demo/echo → :response, then :finish
	caseFive = "5 events" // demo/count n=4 → 4 × :progress, :response, then :finish
)

// payload is the request body of every case and target.
var payload = []byte(`{"hello":"world"}`)

// latencyTarget is one case on one target: a round trip, and the
// distributions of its first and last frame.
type latencyTarget struct {
	target, kase string
	roundTrip    func() (roundTripResult, error)
	first, last  *Latencies
}

var (
	relayNATS       = regexp.MustCompile(`relay nats (\S+)`)
	responderReady  = regexp.MustCompile(`responder ready`)
	echoServerReady = regexp.MustCompile(`echo server listening (\S+)`)
	relayReady      = regexp.MustCompile(`relay listening (\S+)`)
)

// latencyRounds: the targets take turns, each for a fifth of its budget at
// a time, so that a drift of the machine (another process, a warming
// cache) spreads over all of them.
const latencyRounds = 5

// Latency measures one connection doing one request at a time, closed loop,
// through the fabric (with a separate NATS server, and with the NATS node
// inside the gateway) and through four baselines started in the same run:
// raw NATS request/reply over TCP to a plain responder, the same over
// NATS's own WebSocket listener, a bare WebSocket-to-NATS relay (also
// with the NATS node inside it), and a plain WebSocket echo server (the
// floor). Each target answers the same payload with 1 and with 5 replies;
// the fabric adds its :finish, which is the "last" event of its rows. A
// request's "first" and "last" are the times from its send to its first
// and last frame (or message).
func Latency(ctx context.Context, cfg Config) (_ *Report, err error) {
	bin, err := fabricBinary(cfg)
	if err != nil {
		return nil, err
	}
	f, err := startFabric(ctx, bin, fabricOptions{durable: cfg.Durable})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, f.stop()) }()
	settings := map[string]string{"warmup": cfg.Warmup.String()}
	if cfg.Requests > 0 {
		settings["requests"] = strconv.Itoa(cfg.Requests)
	} else {
		settings["duration"] = cfg.duration().String()
	}
	r := newReport("latency", cfg, f, settings)

	if _, err := f.startExtra(ctx, "responder", responderReady, "bench", "responder", "--nats", f.natsURL); err != nil {
		return nil, err
	}
	echoAddr, err := f.startExtra(ctx, "echo-server", echoServerReady, "bench", "echo-server", "--listen", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	relayAddr, err := f.startExtra(ctx, "relay", relayReady, "bench", "relay", "--listen", "127.0.0.1:0", "--nats", f.natsURL)
	if err != nil {
		return nil, err
	}
	relayEmbeddedAddr, err := f.startRelayEmbedded(ctx)
	if err != nil {
		return nil, err
	}
	fc, err := dialFabric(ctx, f.wsURL(), nil)
	if err != nil {
		return nil, err
	}
	defer fc.closeNormal()
	targets := fabricTargets(TargetFabric, fc)
	e, err := f.startEmbedded(ctx, fabricOptions{durable: cfg.Durable})
	if err != nil {
		return nil, fmt.Errorf("bench: the fabric with NATS in the gateway: %w", err)
	}
	ec, err := dialFabric(ctx, e.wsURL(), nil)
	if err != nil {
		return nil, err
	}
	defer ec.closeNormal()
	targets = append(targets, fabricTargets(TargetFabricEmbedded, ec)...)
	for _, b := range []struct{ name, url string }{{TargetNATSTCP, f.natsURL}, {TargetNATSWS, f.natsWSURL}} {
		nc, err := dialNATS(b.url)
		if err != nil {
			return nil, fmt.Errorf("bench: %s baseline: %w", b.name, err)
		}
		defer nc.close()
		targets = append(targets,
			&latencyTarget{target: b.name, kase: caseOne, roundTrip: func() (roundTripResult, error) { return nc.roundTrip(baselineEcho, payload, 1) }},
			&latencyTarget{target: b.name, kase: caseFive, roundTrip: func() (roundTripResult, error) { return nc.roundTrip(baselineCount, payload, countReplies) }})
	}
	for _, k := range []struct {
		kase    string
		replies int
	}{{caseOne, 1}, {caseFive, countReplies}} {
		ec, err := dialEcho(ctx, echoAddr, k.replies)
		if err != nil {
			return nil, fmt.Errorf("bench: echo baseline: %w", err)
		}
		defer ec.close()
		targets = append(targets, &latencyTarget{target: TargetWSEcho, kase: k.kase, roundTrip: func() (roundTripResult, error) { return ec.roundTrip(payload) }})
		rc, err := dialEcho(ctx, relayAddr, k.replies) // the same client: a message out, replies back
		if err != nil {
			return nil, fmt.Errorf("bench: relay baseline: %w", err)
		}
		defer rc.close()
		targets = append(targets, &latencyTarget{target: TargetWSRelay, kase: k.kase, roundTrip: func() (roundTripResult, error) { return rc.roundTrip(payload) }})
		re, err := dialEcho(ctx, relayEmbeddedAddr, k.replies)
		if err != nil {
			return nil, fmt.Errorf("bench: relay baseline with NATS in it: %w", err)
		}
		defer re.close()
		targets = append(targets, &latencyTarget{target: TargetWSRelayEmbedded, kase: k.kase, roundTrip: func() (roundTripResult, error) { return re.roundTrip(payload) }})
	}

	if err := measureRounds(ctx, cfg, targets); err != nil {
		return nil, err
	}
	if err := f.alive(); err != nil {
		return nil, err
	}
	for _, k := range []string{caseOne, caseFive} {
		for _, which := range []string{"first", "last"} {
			for _, t := range targets {
				if t.kase != k {
					continue
				}
				l := t.first
				if which == "last" {
					l = t.last
				}
				r.AddLatency(k, which, t.target, l.Summary())
			}
		}
	}
	r.ComputeRatios()
	r.Notes = append(r.Notes,
		"fabric rows: the last event is the request's :finish (1 event: :response + :finish; 5 events: 4 × :progress, :response, :finish)",
		"baselines: the same payload answered with 1 or 5 messages; nats-tcp and nats-ws are nats.go request/reply (a publish with a reply subject) to a plain responder process",
		"ws-relay: a bare WebSocket-to-NATS relay process in front of the same responder, the fabric's topology with nothing of the fabric: client → relay → NATS → responder → NATS → relay → client",
		"fabric-embedded: a second gateway with the first one's arguments and --embed-nats (the NATS node inside the gateway, connected in-process) and a second worker connected to that node: client → gateway+NATS → worker → gateway+NATS → client, the process count of nats-ws",
		"ws-relay-embedded: the bare relay running the NATS node its own responder connects to, fabric-embedded's topology with nothing of the fabric")
	return r, nil
}

// fabricTargets returns the two cases, 1 and 5 events, on the fabric
// connection c, as target.
func fabricTargets(target string, c *wsConn) []*latencyTarget {
	var ids atomic.Int64
	rt := func(typ, params string) func() (roundTripResult, error) {
		return func() (roundTripResult, error) {
			// Unique ids: a durable gateway runs each id once.
			return c.roundTrip(fmt.Appendf(nil, `{"type":%q,"id":"l%d","payload":%s}`, typ, ids.Add(1), params))
		}
	}
	return []*latencyTarget{
		{target: target, kase: caseOne, roundTrip: rt("demo/echo", string(payload))},
		{target: target, kase: caseFive, roundTrip: rt("demo/count", `{"n":4}`)},
	}
}

// run does round trips one after another, for d or n times (whichever is
// set), and records each in first and last (when not nil). A round trip
// that fails is an error; one that ends in :error is recorded as a failure.
func (t *latencyTarget) run(ctx context.Context, d time.Duration, n int, first, last *Latencies) (int, error) {
	end := time.Now().Add(d)
	done := 0
	for ; n > 0 && done < n || n == 0 && time.Now().Before(end); done++ {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		rt, err := t.roundTrip()
		if err != nil {
			return done, fmt.Errorf("bench: %s, %s: %w", t.target, t.kase, err)
		}
		if first == nil {
			continue
		}
		if rt.failed {
			first.Fail()
			last.Fail()
			continue
		}
		first.Record(rt.first)
		last.Record(rt.last)
	}
	return done, nil
}

// startRelayEmbedded starts the relay baseline in the fabric-embedded
// topology: the relay runs the NATS node, and a responder of its own
// connects to it. It returns the relay's address.
func (f *fabric) startRelayEmbedded(ctx context.Context) (string, error) {
	conf := filepath.Join(f.dir, "nats-relay.conf")
	if err := os.WriteFile(conf, []byte("host: \"127.0.0.1\"\nport: -1\n"), 0o600); err != nil {
		return "", err
	}
	url, err := f.startExtra(ctx, "relay with NATS", relayNATS, "bench", "relay", "--listen", "127.0.0.1:0", "--embed-nats", conf)
	if err != nil {
		return "", err
	}
	addr, err := f.extra[len(f.extra)-1].await(ctx, relayReady)
	if err != nil {
		return "", err
	}
	if _, err := f.startExtra(ctx, "responder of the relay with NATS", responderReady, "bench", "responder", "--nats", url); err != nil {
		return "", err
	}
	// The responder stops before the relay whose NATS it is connected to.
	n := len(f.extra)
	f.extra[n-2], f.extra[n-1] = f.extra[n-1], f.extra[n-2]
	return addr, nil
}
