package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// stormSources is how many 127.0.0.x addresses the storm's connections
// leave from, in turn.
const stormSources = 8

// stormMaxInFlight bounds the connects under way at once: a gateway that
// cannot keep up makes the storm fail connects, not exhaust this process.
const stormMaxInFlight = 4096

// Storm opens new connections at cfg.Rate per second, open loop, for
// cfg.Duration: each dials, upgrades, sends sys/hello, reads the welcome,
// and closes normally (1000, which ends its session). A connect's time runs
// from when it was due, not when it started, so a load generator that
// falls behind shows in the latencies rather than hiding in them. It
// reports the connects per second achieved, their distribution, and the
// gateway's CPU time per connect.
func Storm(ctx context.Context, cfg Config) (_ *Report, err error) {
	rate := cfg.Rate
	if rate <= 0 {
		rate = 500
	}
	limit, err := reserveFiles(0, "storm")
	if err != nil {
		return nil, err
	}
	bin, err := fabricBinary(cfg)
	if err != nil {
		return nil, err
	}
	f, err := startFabric(ctx, bin, fabricOptions{durable: cfg.Durable, maxConns: stormMaxInFlight + 1000})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, f.stop()) }()
	r := newReport("storm", cfg, f, map[string]string{"rate": strconv.FormatFloat(rate, 'f', -1, 64),
		"duration": cfg.duration().String(), "warmup": cfg.Warmup.String()})

	var next atomic.Int64 // connects so far, for their source addresses
	if cfg.Warmup > 0 {
		cfg.logf("storm: warming up for %s", cfg.Warmup)
		storm(ctx, f.wsURL(), rate, cfg.Warmup, &next, NewLatencies())
	}
	cpu0, err := ProcCPU(f.gateway.pid())
	if err != nil {
		return nil, err
	}
	cfg.logf("storm: %g connects/s for %s", rate, cfg.duration())
	connects := NewLatencies()
	start := time.Now()
	late := storm(ctx, f.wsURL(), rate, cfg.duration(), &next, connects)
	elapsed := time.Since(start)
	cpu1, err := ProcCPU(f.gateway.pid())
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := f.alive(); err != nil {
		return nil, err
	}
	s := connects.Summary()
	r.AddLatency("connect", "welcome", TargetFabric, s)
	r.AddValue("target rate", rate, "conns/s")
	r.AddValue("achieved rate", math.Round(float64(s.Count)/elapsed.Seconds()), "conns/s")
	r.AddValue("connects", float64(s.Count), "")
	r.AddValue("connects started late (load generator saturated)", float64(late), "")
	if s.Count > 0 {
		r.AddValue("gateway CPU per connect", math.Round(float64((cpu1-cpu0).Microseconds())/float64(s.Count)*10)/10, "µs")
	}
	r.Notes = append(r.Notes,
		"connect: dial + WebSocket upgrade + sys/hello → sys/welcome, timed from when the connect was due; each connection then closes with 1000",
		fmt.Sprintf("connections from 127.0.0.2–127.0.0.%d in turn; open files limit %d; gateway CPU from /proc/<pid>/stat, 10 ms resolution", 1+stormSources, limit))
	return r, nil
}

// storm opens connections at rate per second for d, recording each
// connect in l, and waits for the last; it returns how many found
// stormMaxInFlight connects under way and started late.
func storm(ctx context.Context, url string, rate float64, d time.Duration, next *atomic.Int64, l *Latencies) (late int) {
	interval := time.Duration(float64(time.Second) / rate)
	sem := make(chan struct{}, stormMaxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	total := int(math.Round(d.Seconds() * rate))
	for i := 0; i < total && ctx.Err() == nil; i++ {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		select {
		case sem <- struct{}{}:
		default:
			late++
			sem <- struct{}{}
		}
		n := int(next.Add(1))
		wg.Go(func() {
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			c, err := dialFabric(cctx, url, net.IPv4(127, 0, 0, byte(2+n%stormSources)))
			if err != nil {
				l.Fail()
				return
			}
			l.Record(time.Since(due))
			c.closeNormal()
		})
	}
	wg.Wait()
	return late
}
