package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seed82ac63c1/fabric/internal/topology"
)

// connsPerSource is how many connections leave from one 127.0.0.x address:
// well inside its range of ephemeral ports.
const connsPerSource = 5000

// sourceIP returns the source address of the i-th connection: 127.0.0.2
// for the first connsPerSource, then 127.0.0.3, and so on.
func sourceIP(i int) net.IP {
	n := 2 + i/connsPerSource
	return net.IPv4(127, byte(n>>16), byte(n>>8), byte(n))
}

// gatewaySample is what the gateway's memory looks like from outside.
type gatewaySample struct {
	rss, heapInuse, stackInuse, goroutines, conns float64
	heapKept                                      float64 // heap free but not returned to the OS
}

var sampledMetrics = []string{"go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines", "fabric_gateway_connections",
	"go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes"}

// sample reads the gateway's RSS and metrics a second apart until RSS
// has settled (two readings within 1%), at most ten times, and keeps the
// smallest of each. After a collection the runtime returns freed memory
// to the OS over a few seconds (its scavenger): a reading right after it
// holds garbage the gateway no longer uses, by a varying amount.
func (f *fabric) sample(ctx context.Context) (gatewaySample, error) {
	s := gatewaySample{math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1), math.Inf(1)}
	prev := math.Inf(1)
	for i := range 10 {
		if i > 0 {
			select {
			case <-ctx.Done():
				return s, ctx.Err()
			case <-time.After(time.Second):
			}
		}
		rss, err := ProcRSS(f.gateway.pid())
		if err != nil {
			return s, err
		}
		m, err := Scrape(f.httpURL()+"/metrics", sampledMetrics...)
		if err != nil {
			return s, err
		}
		settled := math.Abs(float64(rss)-prev) < 0.01*prev
		prev = float64(rss)
		s.rss = min(s.rss, float64(rss))
		s.heapInuse = min(s.heapInuse, m[sampledMetrics[0]])
		s.stackInuse = min(s.stackInuse, m[sampledMetrics[1]])
		s.goroutines = min(s.goroutines, m[sampledMetrics[2]])
		s.conns = min(s.conns, m[sampledMetrics[3]])
		s.heapKept = min(s.heapKept, m[sampledMetrics[4]]-m[sampledMetrics[5]])
		if settled {
			break
		}
	}
	return s, nil
}

// Idle opens cfg.Conns connections to a gateway, each from one of several
// 127.0.0.x addresses; each says hello, sends one demo/echo and then idles
// (answering pings). It reports the gateway's RSS, heap, stacks and
// goroutines per connection: the differences from a baseline taken before
// connecting, divided by the connections.
//
// Before each sample it forces a garbage collection in the gateway (its
// --debug-listen's /debug/pprof/heap?gc=1) and reads the live heap from the
// gateway's gctrace line; with cfg.GCWait it waits, up to that long, for
// the runtime's own collection instead. Every figure is the smaller of two
// samples a second apart.
func Idle(ctx context.Context, cfg Config) (_ *Report, err error) {
	n := cfg.Conns
	if n <= 0 {
		n = 10000
	}
	limit, err := reserveFiles(n+200, fmt.Sprintf("idle with %d connections", n))
	if err != nil {
		return nil, err
	}
	bin, err := fabricBinary(cfg)
	if err != nil {
		return nil, err
	}
	f, err := startFabric(ctx, bin, fabricOptions{durable: cfg.Durable, maxConns: n + 1000})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, f.stop()) }()
	r := newReport("idle", cfg, f, map[string]string{"conns": strconv.Itoa(n), "gc-wait": cfg.GCWait.String(), "warmup": cfg.Warmup.String()})
	if gwFiles, err := ProcMaxFiles(f.gateway.pid()); err == nil {
		r.AddValue("gateway open files limit", float64(gwFiles), "")
	}
	if err := warmUp(ctx, cfg, f); err != nil {
		return nil, err
	}
	if err := f.collect(ctx); err != nil {
		return nil, err
	}
	_, baseLive, _ := f.gc.last()
	base, err := f.sample(ctx)
	if err != nil {
		return nil, err
	}

	cfg.logf("idle: opening %d connections from %d source addresses", n, (n+connsPerSource-1)/connsPerSource)
	connect, echo := NewLatencies(), NewLatencies()
	var (
		mu      sync.Mutex
		conns   []*wsConn
		dropped atomic.Int64
		closing atomic.Bool
		readers sync.WaitGroup
		next    atomic.Int64
		workers sync.WaitGroup
	)
	start := time.Now()
	for range 64 {
		workers.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				c, err := openIdle(ctx, f.wsURL(), sourceIP(i), i, connect, echo)
				if err != nil {
					continue // counted by openIdle
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
				readers.Go(func() {
					if err := c.idle(); !closing.Load() {
						dropped.Add(1)
						cfg.logf("idle: a connection dropped: %v", err)
					}
				})
			}
		})
	}
	workers.Wait()
	opened := time.Since(start)
	defer func() {
		closing.Store(true)
		for _, c := range conns {
			c.close()
		}
		readers.Wait()
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	connected := len(conns)
	cfg.logf("idle: %d connections open in %s", connected, opened.Round(time.Millisecond))
	r.AddLatency("connect", "welcome", TargetFabric, connect.Summary())
	r.AddLatency("echo", "finish", TargetFabric, echo.Summary())
	r.AddValue("connections", float64(connected), "")
	r.AddValue("connect rate", math.Round(float64(connected)/opened.Seconds()), "conns/s")

	gcSeen := false
	if cfg.GCWait <= 0 {
		// Two: a collection halves a parked goroutine's stack at most, and
		// an idle connection's reader parks with the 8 KiB stack its last
		// frame grew; the runtime's own collections shrink it just the same,
		// over time.
		for range 2 {
			if err := f.collect(ctx); err != nil {
				return nil, err
			}
		}
		gcSeen = true
		r.Notes = append(r.Notes, "sampled after two garbage collections forced in the gateway (/debug/pprof/heap?gc=1), once RSS had settled")
	} else {
		cfg.logf("idle: waiting up to %s for a garbage collection in the gateway", cfg.GCWait)
		waitStart := time.Now()
		gcSeen, err = f.awaitGC(ctx, waitStart.Add(time.Second), cfg.GCWait)
		if err != nil {
			return nil, err
		}
		if gcSeen {
			r.Notes = append(r.Notes, fmt.Sprintf("sampled after a garbage collection in the gateway, %s after the connections were made", time.Since(waitStart).Round(time.Second)))
		}
	}
	_, live, _ := f.gc.last()
	s, err := f.sample(ctx)
	if err != nil {
		return nil, err
	}
	if err := f.alive(); err != nil {
		return nil, err
	}
	if cfg.Profile != "" {
		if err := f.saveProfiles(cfg.Profile); err != nil {
			return nil, err
		}
		r.Notes = append(r.Notes, "the gateway's profiles with the connections open: "+cfg.Profile)
	}
	r.Errors += dropped.Load()
	per := func(after, before float64) float64 {
		if connected == 0 {
			return 0
		}
		return math.Round((after - before) / float64(connected))
	}
	r.AddValue("gateway connections (metric)", s.conns, "")
	r.AddValue("gateway RSS before", base.rss, "bytes")
	r.AddValue("gateway RSS", s.rss, "bytes")
	r.AddValue("RSS per connection", per(s.rss, base.rss), "bytes")
	r.AddValue("heap in use per connection", per(s.heapInuse, base.heapInuse), "bytes")
	r.AddValue("stack in use per connection", per(s.stackInuse, base.stackInuse), "bytes")
	r.AddValue("heap free, kept from the OS, per connection", per(s.heapKept, base.heapKept), "bytes")
	r.AddValue("goroutines per connection", math.Round((s.goroutines-base.goroutines)/float64(max(connected, 1))*100)/100, "")
	if rss := per(s.rss, base.rss); rss > 0 {
		r.AddValue("connections per GiB of RSS", math.Round(float64(1<<30)/rss), "")
	}
	if gcSeen {
		r.AddValue("live heap per connection (gctrace, MB-rounded)", per(float64(live), float64(baseLive)), "bytes")
	} else {
		r.Notes = append(r.Notes, "no garbage collection seen after the connections were made: heap and RSS include garbage (pass --gc-wait 2m10s)")
	}
	r.Notes = append(r.Notes, fmt.Sprintf("connections from 127.0.0.2–%s; open files limit %d", sourceIP(n-1), limit))
	return r, nil
}

// openIdle opens the i-th idle connection: hello, one demo/echo. It
// records its times, or a failure, in connect and echo.
func openIdle(ctx context.Context, url string, src net.IP, i int, connect, echo *Latencies) (*wsConn, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	start := time.Now()
	c, err := dialFabric(dctx, url, src)
	if err != nil {
		connect.Fail()
		return nil, err
	}
	connect.Record(time.Since(start))
	_ = c.ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	rt, err := c.roundTrip(fmt.Appendf(nil, `{"type":"demo/echo","id":"i%d","payload":{"hello":"world"}}`, i))
	_ = c.ws.SetReadDeadline(time.Time{})
	if err != nil || rt.failed {
		echo.Fail()
		c.close()
		if err == nil {
			err = errors.New("bench: echo ended in :error")
		}
		return nil, err
	}
	echo.Record(rt.last)
	return c, nil
}

// saveProfiles saves the gateway's heap and goroutine profiles in dir.
func (f *fabric) saveProfiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"heap", "goroutine"} {
		resp, err := topology.MonitorClient.Get("http://" + f.debugAddr + "/debug/pprof/" + name)
		if err != nil {
			return fmt.Errorf("bench: %s profile: %w", name, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("bench: %s profile: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "gateway-"+name+".pb.gz"), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// saveCPUProfile waits warmup, then saves the gateway's and the worker's
// CPU profiles of the next d in dir.
func (f *fabric) saveCPUProfile(ctx context.Context, dir string, warmup, d time.Duration) error {
	if err := sleepCtx(ctx, warmup); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	errs := make(chan error, 2)
	for name, addr := range map[string]string{"gateway": f.debugAddr, "worker": f.workerDebugAddr} {
		go func() { errs <- saveCPUProfile(addr, filepath.Join(dir, name+"-cpu.pb.gz"), d) }()
	}
	return errors.Join(<-errs, <-errs)
}

// saveCPUProfile saves the CPU profile of the next d of the process whose
// --debug-listen is addr in path.
func saveCPUProfile(addr, path string, d time.Duration) error {
	client := &http.Client{Timeout: d + 30*time.Second}
	resp, err := client.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, max(1, int(d.Seconds()))))
	if err != nil {
		return fmt.Errorf("bench: CPU profile: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("bench: CPU profile: %w", err)
	}
	return os.WriteFile(path, b, 0o644)
}

// collect forces a garbage collection in the gateway and waits for its
// gctrace line.
func (f *fabric) collect(ctx context.Context) error {
	since := time.Now()
	if err := topology.Get("http://"+f.debugAddr+"/debug/pprof/heap?gc=1", nil); err != nil {
		return fmt.Errorf("bench: force a collection in the gateway: %w", err)
	}
	ok, err := f.awaitGC(ctx, since, 10*time.Second)
	if err == nil && !ok {
		err = errors.New("bench: the gateway logged no collection after /debug/pprof/heap?gc=1")
	}
	return err
}

// awaitGC waits until the gateway has logged a collection that ended after
// since, for at most wait; it reports whether one came.
func (f *fabric) awaitGC(ctx context.Context, since time.Time, wait time.Duration) (bool, error) {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if _, _, at := f.gc.last(); at.After(since) {
			return true, nil
		}
		if err := f.alive(); err != nil {
			return false, err
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return false, nil
}

// warmUp runs demo/echo and demo/count round trips on one connection for
// cfg.Warmup, so that the gateway's lazily made state exists before a
// baseline.
func warmUp(ctx context.Context, cfg Config, f *fabric) error {
	if cfg.Warmup <= 0 {
		return nil
	}
	c, err := dialFabric(ctx, f.wsURL(), nil)
	if err != nil {
		return err
	}
	defer c.closeNormal()
	end := time.Now().Add(cfg.Warmup)
	for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
		frame := fmt.Appendf(nil, `{"type":"demo/echo","id":"w%d","payload":{"hello":"world"}}`, i)
		if i%2 == 1 {
			frame = fmt.Appendf(nil, `{"type":"demo/count","id":"w%d","payload":{"n":4}}`, i)
		}
		if _, err := c.roundTrip(frame); err != nil {
			return fmt.Errorf("bench: warm-up: %w", err)
		}
	}
	return ctx.Err()
}

// fabricBinary returns cfg.Fabric, or this executable.
func fabricBinary(cfg Config) (string, error) {
	if cfg.Fabric != "" {
		return cfg.Fabric, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("bench: %w (pass --fabric)", err)
	}
	return exe, nil
}

// newReport starts a report of scenario with the common settings and the
// scenario's own.
func newReport(scenario string, cfg Config, f *fabric, settings map[string]string) *Report {
	if cfg.Durable {
		settings["durable"] = "true"
	}
	args := slices.Clone(f.gatewayArgs)
	if i := slices.Index(args, "--resume-secret"); i >= 0 && i+1 < len(args) {
		args[i+1] = "(random)"
	}
	return &Report{Scenario: scenario, Mode: cfg.mode(), Machine: DescribeMachine(), Settings: settings, GatewayArgs: args}
}
