package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
)

// A throughput request is demo/count n=4: 4 × :progress, :response and
// :finish, six event frames; the NATS-WebSocket baseline's is a request on
// baselineCount, answered with countReplies messages.
const (
	countFrames  = 6
	countRequest = `{"type":"demo/count","id":"%d","payload":{"n":4}}`
)

// Throughput's fixed rates: the latency bound of the search, the unmeasured
// time before each rate is measured, and the bound on a connection's
// requests in flight at a fixed rate (the gateway's --max-in-flight is 128).
const (
	rateP99Bound  = 10 * time.Millisecond
	rateSettle    = 500 * time.Millisecond
	rateMaxWindow = 100
)

// Throughput measures saturation: for each of cfg.ConnCounts, as many
// connections each keep cfg.Window requests of demo/count n=4 in flight
// (closed loop: a request is sent as soon as one ends), through the fabric
// and then, with the same connections and window, through the
// NATS-WebSocket baseline (nats.go over NATS's WebSocket listener, a
// request on baselineCount answered with 5 replies by the responder). It
// reports events (every event frame received, :finish included) and
// requests per second, the distribution of send → :finish (the baseline's
// last reply), and CPU seconds per million events of the gateway and of
// every process on the path, from /proc/<pid>/stat.
//
// Then fixed rates, open loop on cfg.RateConns connections: requests are
// due at a steady rate, each timed from when it was due, so a fabric that
// falls behind shows in the latencies. cfg.Rates, or, by default, steps of
// a tenth of the highest saturation rate until p99 reaches 10 ms; it
// reports the highest offered rate whose p99 stayed under 10 ms.
func Throughput(ctx context.Context, cfg Config) (_ *Report, err error) {
	counts := cfg.ConnCounts
	if len(counts) == 0 {
		counts = []int{16, 64, 256}
	}
	window := cfg.Window
	if window <= 0 {
		window = 8
	}
	rateConns := cfg.RateConns
	if rateConns <= 0 {
		rateConns = 64
	}
	rateDuration := cfg.RateDuration
	if rateDuration <= 0 {
		rateDuration = 3 * time.Second
	}
	if _, err := reserveFiles(0, "throughput"); err != nil {
		return nil, err
	}
	bin, err := fabricBinary(cfg)
	if err != nil {
		return nil, err
	}
	// The worker runs every request in flight at once, as the baseline's
	// responder answers each at once.
	f, err := startFabric(ctx, bin, fabricOptions{durable: cfg.Durable, maxConns: max(slices.Max(counts), rateConns) + 1000,
		handlers: max(slices.Max(counts)*window, rateConns*rateMaxWindow)})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, f.stop()) }()
	settings := map[string]string{"conns": joinInts(counts), "window": strconv.Itoa(window), "duration": cfg.duration().String(),
		"warmup": cfg.Warmup.String(), "rate-conns": strconv.Itoa(rateConns), "rate-duration": rateDuration.String()}
	if len(cfg.Rates) > 0 {
		settings["rate"] = joinFloats(cfg.Rates)
	}
	r := newReport("throughput", cfg, f, settings)
	if _, err := f.startExtra(ctx, "responder", responderReady, "bench", "responder", "--nats", f.natsURL); err != nil {
		return nil, err
	}
	responder := f.extra[len(f.extra)-1].pid()
	relayAddr, err := f.startExtra(ctx, "relay", relayReady, "bench", "relay", "--listen", "127.0.0.1:0", "--nats", f.natsURL)
	if err != nil {
		return nil, err
	}
	relay := f.extra[len(f.extra)-1].pid()
	e, err := f.startEmbedded(ctx, fabricOptions{durable: cfg.Durable, handlers: max(slices.Max(counts)*window, rateConns*rateMaxWindow)})
	if err != nil {
		return nil, fmt.Errorf("bench: the fabric with NATS in the gateway: %w", err)
	}
	self := proc{"load generator", os.Getpid()}
	embeddedProcs := []proc{{"gateway", e.gateway.pid()}, {"worker", e.worker.pid()}, self}
	fabricProcs := []proc{{"gateway", f.gateway.pid()}, {"nats", f.nats.pid()}, {"worker", f.worker.pid()}, self}
	baselineProcs := []proc{{"nats", f.nats.pid()}, {"responder", responder}, self}
	relayProcs := []proc{{"relay", relay}, {"nats", f.nats.pid()}, {"responder", responder}, self}

	var best float64 // the fabric's highest saturation, in events/s
	for i, n := range counts {
		kase := fmt.Sprintf("%d conns", n)
		cfg.logf("throughput: %s × %d in flight, fabric", kase, window)
		var profiled chan error
		if cfg.Profile != "" && i == 0 {
			profiled = make(chan error, 1)
			go func() { profiled <- f.saveCPUProfile(ctx, cfg.Profile, cfg.Warmup, cfg.duration()) }()
		}
		fr, err := runLoad(ctx, cfg, r, n, window, 0, cfg.Warmup, cfg.duration(), fabricProcs,
			func(fl *flow, l *loadSet) (loadConn, error) { return dialFabricLoad(ctx, f.wsURL(), window, fl, l) })
		if err != nil {
			return nil, err
		}
		if profiled != nil {
			if err := <-profiled; err != nil {
				return nil, err
			}
			r.Notes = append(r.Notes, fmt.Sprintf("the gateway's CPU profile during the %s load: %s", kase, cfg.Profile))
		}
		cfg.logf("throughput: %s × %d in flight, nats-ws", kase, window)
		br, err := runLoad(ctx, cfg, r, n, window, 0, cfg.Warmup, cfg.duration(), baselineProcs,
			func(fl *flow, _ *loadSet) (loadConn, error) { return dialNATSLoad(f.natsWSURL, window, fl) })
		if err != nil {
			return nil, err
		}
		cfg.logf("throughput: %s × %d in flight, ws-relay", kase, window)
		rr, err := runLoad(ctx, cfg, r, n, window, 0, cfg.Warmup, cfg.duration(), relayProcs,
			func(fl *flow, l *loadSet) (loadConn, error) { return dialRelayLoad(ctx, relayAddr, window, fl, l) })
		if err != nil {
			return nil, err
		}
		cfg.logf("throughput: %s × %d in flight, fabric with NATS in the gateway", kase, window)
		er, err := runLoad(ctx, cfg, r, n, window, 0, cfg.Warmup, cfg.duration(), embeddedProcs,
			func(fl *flow, l *loadSet) (loadConn, error) { return dialFabricLoad(ctx, e.wsURL(), window, fl, l) })
		if err != nil {
			return nil, err
		}
		if err := f.alive(); err != nil {
			return nil, err
		}
		r.AddLatency(kase, "last", TargetFabric, fr.latency)
		r.AddLatency(kase, "last", TargetFabricEmbedded, er.latency)
		r.AddLatency(kase, "last", TargetNATSWS, br.latency)
		r.AddLatency(kase, "last", TargetWSRelay, rr.latency)
		best = max(best, fr.eventRate())
		r.AddValue("fabric "+kase+": events/s", math.Round(fr.eventRate()), "")
		r.AddValue("fabric "+kase+": requests/s", math.Round(fr.requestRate()), "")
		r.AddValue("fabric "+kase+": gateway CPU", fr.cores("gateway"), "cores")
		r.AddValue("fabric "+kase+": gateway CPU per million events", fr.perMillion("gateway"), "s")
		r.AddValue("fabric "+kase+": gateway+nats+worker CPU per million events", fr.perMillion("gateway", "nats", "worker"), "s")
		r.AddValue("fabric "+kase+": load generator CPU", fr.cores(self.name), "cores")
		r.AddValue("nats-ws "+kase+": replies/s", math.Round(br.eventRate()), "")
		r.AddValue("nats-ws "+kase+": requests/s", math.Round(br.requestRate()), "")
		r.AddValue("nats-ws "+kase+": nats-server CPU per million replies", br.perMillion("nats"), "s")
		r.AddValue("nats-ws "+kase+": nats+responder CPU per million replies", br.perMillion("nats", "responder"), "s")
		r.AddValue("nats-ws "+kase+": load generator CPU", br.cores(self.name), "cores")
		r.AddValue("ws-relay "+kase+": replies/s", math.Round(rr.eventRate()), "")
		r.AddValue("ws-relay "+kase+": relay CPU per million replies", rr.perMillion("relay"), "s")
		r.AddValue("ws-relay "+kase+": relay+nats+responder CPU per million replies", rr.perMillion("relay", "nats", "responder"), "s")
		r.AddValue(kase+": fabric events/s ÷ nats-ws replies/s", ratio(fr.eventRate(), br.eventRate()), "×")
		r.AddValue(kase+": fabric requests/s ÷ nats-ws requests/s", ratio(fr.requestRate(), br.requestRate()), "×")
		r.AddValue(kase+": fabric events/s ÷ ws-relay replies/s", ratio(fr.eventRate(), rr.eventRate()), "×")
		r.AddValue("fabric-embedded "+kase+": events/s", math.Round(er.eventRate()), "")
		r.AddValue("fabric-embedded "+kase+": gateway+nats CPU per million events", er.perMillion("gateway"), "s")
		r.AddValue("fabric-embedded "+kase+": gateway+nats+worker CPU per million events", er.perMillion("gateway", "worker"), "s")
		r.AddValue(kase+": fabric-embedded events/s ÷ nats-ws replies/s", ratio(er.eventRate(), br.eventRate()), "×")
		r.AddValue(kase+": fabric-embedded requests/s ÷ nats-ws requests/s", ratio(er.requestRate(), br.requestRate()), "×")
	}
	r.ComputeRatios()

	rates := cfg.Rates
	search := len(rates) == 0
	if search {
		for i := 1; i <= 10; i++ {
			rates = append(rates, math.Max(100, math.Round(best*float64(i)/10/100)*100))
		}
	}
	highest := 0.0
	for _, rate := range rates {
		every := time.Duration(float64(time.Second) * float64(rateConns) * countFrames / rate)
		cfg.logf("throughput: %g events/s offered on %d conns", rate, rateConns)
		res, err := runLoad(ctx, cfg, r, rateConns, rateMaxWindow, every, rateSettle, rateDuration, fabricProcs,
			func(fl *flow, l *loadSet) (loadConn, error) {
				return dialFabricLoad(ctx, f.wsURL(), rateMaxWindow, fl, l)
			})
		if err != nil {
			return nil, err
		}
		kase := fmt.Sprintf("%g events/s offered", rate)
		r.AddLatency(kase, "last", TargetFabric, res.latency)
		r.AddValue(kase+": achieved", math.Round(res.eventRate()), "events/s")
		ok := res.latency.Errors == 0 && res.latency.Count > 0 && res.latency.P99 < float64(rateP99Bound.Microseconds())
		if ok {
			highest = max(highest, rate)
		} else if search {
			break
		}
	}
	if err := f.alive(); err != nil {
		return nil, err
	}
	r.AddValue(fmt.Sprintf("highest offered rate with p99 < %s (%d conns)", rateP99Bound, rateConns), highest, "events/s")
	r.Notes = append(r.Notes,
		fmt.Sprintf("saturation: each connection keeps %d requests in flight, closed loop, for --duration after --warmup; fabric: demo/count n=4, events are every event frame received (4 × :progress, :response, :finish: %d per request); nats-ws: nats.go over ws:// to NATS's WebSocket listener, a request answered with %d replies by a plain responder process (bench responder); ws-relay: the same requests through a bare WebSocket-to-NATS relay process (bench relay), the fabric's topology with nothing of the fabric; fabric-embedded: the fabric with the NATS node inside the gateway (--embed-nats) and its own worker, whose gateway CPU includes the NATS server's", window, countFrames, countReplies),
		"latency rows (last): from a request's send to its :finish (fabric) or its last reply (nats-ws); requests/s ÷ requests/s compares the same work, events/s ÷ replies/s counts the fabric's :finish as an event",
		"CPU: utime+stime of each process from /proc/<pid>/stat, 10 ms resolution, over the measured time; all processes, the load generator included, share this machine's CPUs",
		fmt.Sprintf("fixed rates: open loop on %d connections, each sending its share of the offered events/s (÷ %d per request) at a steady pace, at most %d in flight, each request timed from when it was due; %s unmeasured, then --rate-duration measured; without --rate, steps of a tenth of the highest saturation events/s until p99 ≥ %s", rateConns, countFrames, rateMaxWindow, rateSettle, rateP99Bound))
	return r, nil
}

// proc is a process whose CPU time a phase measures.
type proc struct {
	name string
	pid  int
}

// loadResult is what one measured phase saw.
type loadResult struct {
	events, requests int64
	elapsed          time.Duration
	latency          Summary
	cpu              map[string]time.Duration // by proc name
}

func (r loadResult) eventRate() float64   { return float64(r.events) / r.elapsed.Seconds() }
func (r loadResult) requestRate() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// cores is the CPU time of the named process over the elapsed time.
func (r loadResult) cores(name string) float64 {
	return math.Round(r.cpu[name].Seconds()/r.elapsed.Seconds()*100) / 100
}

// perMillion is the CPU seconds of the named processes per million events.
func (r loadResult) perMillion(names ...string) float64 {
	if r.events == 0 {
		return 0
	}
	var cpu time.Duration
	for _, n := range names {
		cpu += r.cpu[n]
	}
	return math.Round(cpu.Seconds()/float64(r.events)*1e6*100) / 100
}

// flow counts what a phase's connections receive; each request's time from
// send to end goes to measured while it is set.
type flow struct {
	events, requests atomic.Int64
	measured         atomic.Pointer[Latencies]
	// failed counts requests that ended in :error, or with another number
	// of frames than a request has, outside the measured time; stray, the
	// frames of no request in flight.
	failed, stray atomic.Int64
}

// end counts a request that ended, sent (or due) at at.
func (fl *flow) end(at time.Time, failed bool) {
	fl.requests.Add(1)
	l := fl.measured.Load()
	switch {
	case failed && l != nil:
		l.Fail()
	case failed:
		fl.failed.Add(1)
	case l != nil:
		l.Record(time.Since(at))
	}
}

// loadConn is one connection of the throughput scenario.
type loadConn interface {
	inFlight() *inFlight
	send(id uint64) error
	close()
}

// inFlight is a connection's requests under way: at most cap(slots), each
// with when it was sent (or due) and the frames it has had.
type inFlight struct {
	slots  chan struct{}
	frames int // of a complete request
	broken atomic.Bool

	mu   sync.Mutex
	reqs map[uint64]*pendingReq
}

type pendingReq struct {
	at     time.Time
	frames int
	failed bool
}

func newInFlight(window, frames int) *inFlight {
	return &inFlight{slots: make(chan struct{}, window), frames: frames, reqs: make(map[uint64]*pendingReq, window)}
}

// add notes request id, sent (or due) at at; its slot is taken.
func (p *inFlight) add(id uint64, at time.Time) {
	p.mu.Lock()
	p.reqs[id] = &pendingReq{at: at}
	p.mu.Unlock()
}

// frame counts a frame of request id and returns its frames so far; 0 if
// id is not in flight.
func (p *inFlight) frame(id uint64, failed bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.reqs[id]
	if r == nil {
		return 0
	}
	r.frames++
	r.failed = r.failed || failed
	return r.frames
}

// end ends request id, frees its slot and counts it in fl.
func (p *inFlight) end(id uint64, fl *flow) {
	p.mu.Lock()
	r := p.reqs[id]
	delete(p.reqs, id)
	p.mu.Unlock()
	if r == nil {
		fl.stray.Add(1)
		return
	}
	<-p.slots
	fl.end(r.at, r.failed || r.frames != p.frames)
}

func (p *inFlight) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.reqs)
}

// loadSet is the connections of one phase and the goroutines reading them.
type loadSet struct {
	fl      flow
	conns   []loadConn
	readers sync.WaitGroup
	closing atomic.Bool
	broken  atomic.Int64 // connections that failed while in use
	log     func(format string, args ...any)
}

// runLoad opens n connections with dial and loads them, closed loop with
// window requests in flight each when every is 0, else one request per
// every on each (open loop); it measures d after warmup, then waits for
// the requests under way and closes the connections. Errors go into r.
func runLoad(ctx context.Context, cfg Config, r *Report, n, window int, every, warmup, d time.Duration, procs []proc,
	dial func(*flow, *loadSet) (loadConn, error)) (loadResult, error) {
	s := &loadSet{log: cfg.logf}
	defer s.close()
	for range n {
		c, err := dial(&s.fl, s)
		if err != nil {
			return loadResult{}, fmt.Errorf("bench: connect: %w", err)
		}
		s.conns = append(s.conns, c)
	}
	stop := make(chan struct{})
	var senders sync.WaitGroup
	for i, c := range s.conns {
		offset := every * time.Duration(i) / time.Duration(n)
		senders.Go(func() { s.drive(c, stop, every, offset) })
	}
	res, err := s.measure(ctx, warmup, d, procs)
	close(stop)
	senders.Wait()
	if derr := s.drain(ctx, 10*time.Second); derr != nil {
		err = errors.Join(err, derr)
	}
	s.close()
	r.Errors += s.fl.failed.Load() + s.fl.stray.Load() + s.broken.Load()
	return res, err
}

// drive sends requests on c until stop is closed.
func (s *loadSet) drive(c loadConn, stop <-chan struct{}, every, offset time.Duration) {
	p := c.inFlight()
	next := time.Now().Add(offset)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for id := uint64(1); ; id++ {
		at := time.Now()
		if every > 0 {
			at, next = next, next.Add(every)
			if wait := time.Until(at); wait > 0 {
				timer.Reset(wait)
				select {
				case <-stop:
					return
				case <-timer.C:
				}
			}
		}
		select {
		case <-stop:
			return
		case p.slots <- struct{}{}:
		}
		p.add(id, at)
		if err := c.send(id); err != nil {
			s.fail(p, err)
			return
		}
	}
}

// fail counts a connection that broke while in use, unless it is being
// closed.
func (s *loadSet) fail(p *inFlight, err error) {
	if s.closing.Load() || p.broken.Swap(true) {
		return
	}
	s.broken.Add(1)
	s.log("throughput: a connection failed: %v", err)
}

// measure waits warmup, then measures d.
func (s *loadSet) measure(ctx context.Context, warmup, d time.Duration, procs []proc) (loadResult, error) {
	if err := sleepCtx(ctx, warmup); err != nil {
		return loadResult{}, err
	}
	lat := NewLatencies()
	cpu0, err := cpuTimes(procs)
	if err != nil {
		return loadResult{}, err
	}
	ev0, rq0 := s.fl.events.Load(), s.fl.requests.Load()
	start := time.Now()
	s.fl.measured.Store(lat)
	err = sleepCtx(ctx, d)
	s.fl.measured.Store(nil)
	res := loadResult{elapsed: time.Since(start), events: s.fl.events.Load() - ev0, requests: s.fl.requests.Load() - rq0}
	if err != nil {
		return res, err
	}
	cpu1, err := cpuTimes(procs)
	if err != nil {
		return res, err
	}
	res.cpu = make(map[string]time.Duration, len(procs))
	for _, p := range procs {
		res.cpu[p.name] = cpu1[p.name] - cpu0[p.name]
	}
	res.latency = lat.Summary()
	return res, nil
}

// drain waits up to timeout for the requests under way on the connections
// that still work.
func (s *loadSet) drain(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		left := 0
		for _, c := range s.conns {
			if p := c.inFlight(); !p.broken.Load() {
				left += p.len()
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			s.broken.Add(1)
			return fmt.Errorf("bench: %d requests unanswered %s after the load stopped", left, timeout)
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// close closes the connections and waits for their readers; it may be
// called twice.
func (s *loadSet) close() {
	if s.closing.Swap(true) {
		return
	}
	for _, c := range s.conns {
		c.close()
	}
	s.readers.Wait()
}

// fabricLoad is a fabric connection of the throughput scenario: requests
// of demo/count n=4 with ids 1, 2, …, read by a goroutine of its own.
type fabricLoad struct {
	c   *wsConn
	p   *inFlight
	wmu sync.Mutex // the sender's frames and the reader's pongs
	buf []byte
}

func dialFabricLoad(ctx context.Context, url string, window int, fl *flow, s *loadSet) (*fabricLoad, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := dialFabric(dctx, url, nil)
	if err != nil {
		return nil, err
	}
	l := &fabricLoad{c: c, p: newInFlight(window, countFrames)}
	s.readers.Go(func() { s.fail(l.p, l.read(fl)) }) // read returns only when the connection ends
	return l, nil
}

func (l *fabricLoad) inFlight() *inFlight { return l.p }

func (l *fabricLoad) send(id uint64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.buf = fmt.Appendf(l.buf[:0], countRequest, id)
	_ = l.c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return l.c.ws.WriteMessage(websocket.TextMessage, l.buf)
}

// close ends the session (1000): a durable gateway forgets it at once.
func (l *fabricLoad) close() {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.c.closeNormal()
}

// read counts the connection's event frames and ends each request at its
// :finish, answering pings, until the connection ends.
func (l *fabricLoad) read(fl *flow) error {
	for {
		_, msg, err := l.c.ws.ReadMessage()
		if err != nil {
			return err
		}
		t := frameType(msg)
		switch {
		case t == "sys/ping":
			l.wmu.Lock()
			err := l.c.ws.WriteMessage(websocket.TextMessage, pongFrame)
			l.wmu.Unlock()
			if err != nil {
				return err
			}
			continue
		case t == "sys/error":
			return fmt.Errorf("bench: %.300s", msg)
		case strings.HasPrefix(t, "sys/"):
			continue
		case !strings.HasPrefix(t, "demo/count:"):
			return fmt.Errorf("bench: a frame of another route: %.300s", msg)
		}
		fl.events.Add(1)
		id, err := strconv.ParseUint(frameID(msg, t), 10, 64)
		if err != nil {
			return fmt.Errorf("bench: a frame without a request id: %.300s", msg)
		}
		if l.p.frame(id, strings.HasSuffix(t, ":error")) == 0 {
			fl.stray.Add(1)
			continue
		}
		if strings.HasSuffix(t, ":finish") {
			l.p.end(id, fl)
		}
	}
}

// relayLoad is a ws-relay baseline connection of the throughput scenario:
// each request's payload starts with its id and a colon, which the
// responder's replies, the same payload, bring back.
type relayLoad struct {
	ws  *websocket.Conn
	wmu sync.Mutex
	buf []byte
	p   *inFlight
}

func dialRelayLoad(ctx context.Context, addr string, window int, fl *flow, s *loadSet) (*relayLoad, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, _, err := dialer(nil).DialContext(dctx, fmt.Sprintf("ws://%s/?n=%d", addr, countReplies), nil)
	if err != nil {
		return nil, err
	}
	l := &relayLoad{ws: ws, p: newInFlight(window, countReplies)}
	s.readers.Go(func() { s.fail(l.p, l.read(fl)) }) // read returns only when the connection ends
	return l, nil
}

func (l *relayLoad) inFlight() *inFlight { return l.p }

func (l *relayLoad) send(id uint64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.buf = append(append(strconv.AppendUint(l.buf[:0], id, 10), ':'), payload...)
	_ = l.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return l.ws.WriteMessage(websocket.TextMessage, l.buf)
}

func (l *relayLoad) close() {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_ = l.ws.Close()
}

func (l *relayLoad) read(fl *flow) error {
	for {
		_, msg, err := l.ws.ReadMessage()
		if err != nil {
			return err
		}
		fl.events.Add(1)
		head, _, _ := bytes.Cut(msg, []byte{':'})
		id, err := strconv.ParseUint(string(head), 10, 64)
		if err != nil {
			return fmt.Errorf("bench: a relay reply without a request id: %.300s", msg)
		}
		switch l.p.frame(id, false) {
		case 0:
			fl.stray.Add(1)
		case countReplies:
			l.p.end(id, fl)
		}
	}
}

// natsLoad is a NATS-WebSocket baseline connection of the throughput
// scenario: requests on baselineCount whose replies come to inbox.<id>.
type natsLoad struct {
	nc    *nats.Conn
	inbox string
	p     *inFlight
}

func dialNATSLoad(url string, window int, fl *flow) (*natsLoad, error) {
	nc, err := nats.Connect(url, nats.Name("fabric-bench"))
	if err != nil {
		return nil, err
	}
	l := &natsLoad{nc: nc, inbox: nats.NewInbox(), p: newInFlight(window, countReplies)}
	_, err = nc.Subscribe(l.inbox+".*", func(m *nats.Msg) {
		fl.events.Add(1)
		id, err := strconv.ParseUint(m.Subject[len(l.inbox)+1:], 10, 64)
		if err != nil {
			fl.stray.Add(1)
			return
		}
		switch l.p.frame(id, false) {
		case 0:
			fl.stray.Add(1)
		case countReplies:
			l.p.end(id, fl)
		}
	})
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return l, nil
}

func (l *natsLoad) inFlight() *inFlight { return l.p }

func (l *natsLoad) send(id uint64) error {
	return l.nc.PublishRequest(baselineCount, l.inbox+"."+strconv.FormatUint(id, 10), payload)
}

func (l *natsLoad) close() { l.nc.Close() }

// cpuTimes reads each process's CPU time.
func cpuTimes(procs []proc) (map[string]time.Duration, error) {
	out := make(map[string]time.Duration, len(procs))
	for _, p := range procs {
		d, err := ProcCPU(p.pid)
		if err != nil {
			return nil, fmt.Errorf("bench: CPU time of %s: %w", p.name, err)
		}
		out[p.name] = d
	}
	return out, nil
}

// sleepCtx sleeps for d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func joinFloats(xs []float64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.FormatFloat(x, 'f', -1, 64)
	}
	return strings.Join(s, ",")
}
