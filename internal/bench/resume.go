package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed82ac63c1/fabric/protocol"
)

// resumeAttempts bounds a client's tries to reconnect after the kill, one
// every resumeRetry.
const (
	resumeAttempts = 100
	resumeRetry    = 50 * time.Millisecond
)

// Resume measures what a gateway's crash costs its clients: cfg.Clients
// clients, spread over two gateways that share a resume secret, each
// stream demo/count (cfg.Events events, cfg.Interval apart); once every
// stream has had its first event, the first gateway is killed (SIGKILL).
// Each of its clients sees its connection drop, waits a random time up to
// cfg.Backoff, reconnects to the other gateway with its session's resume
// token and, when the session is resumed, re-sends its request with
// "after", the last seq it received (docs/protocol.md, Resume). It reports
// the time from the kill to the new welcome (reconnect) and to the first
// event after the re-send (resume), and the events each client lost (never
// received) or received twice. A durable fabric should lose and duplicate
// nothing; a core one cannot resume a session whose gateway died, and its
// moved clients lose the rest of their streams.
func Resume(ctx context.Context, cfg Config) (_ *Report, err error) {
	n := cfg.Clients
	if n <= 0 {
		n = 1000
	}
	events := cfg.Events
	if events <= 0 {
		events = 40
	}
	interval := cfg.Interval
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	if _, err := reserveFiles(n+200, fmt.Sprintf("resume with %d clients", n)); err != nil {
		return nil, err
	}
	bin, err := fabricBinary(cfg)
	if err != nil {
		return nil, err
	}
	f, err := startFabric(ctx, bin, fabricOptions{durable: cfg.Durable, maxConns: n + 1000, peer: true, handlers: n + 100})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, f.stop()) }()
	r := newReport("resume", cfg, f, map[string]string{"clients": strconv.Itoa(n), "events": strconv.Itoa(events),
		"interval": interval.String(), "backoff": cfg.Backoff.String()})
	if err := warmUp(ctx, cfg, f); err != nil {
		return nil, err
	}

	s := &resumeRun{events: events, interval: interval, backoff: cfg.Backoff, params: fmt.Sprintf(`{"n":%d,"intervalMs":%d}`, events, interval.Milliseconds())}
	results := make([]resumeResult, n)
	var clients, started sync.WaitGroup
	started.Add(n)
	cfg.logf("resume: %d clients streaming %d events %s apart, over 2 gateways", n, events, interval)
	for i := range n {
		home, other := f.wsURL(), f.peerWSURL()
		if i%2 == 1 {
			home, other = other, home
		}
		clients.Go(func() {
			results[i] = s.stream(ctx, home, other, i%2 == 0, strconv.Itoa(i), sync.OnceFunc(started.Done))
		})
	}
	started.Wait()
	// Every stream is under way: events are in flight when the kill lands.
	if err := sleepCtx(ctx, interval); err != nil {
		clients.Wait()
		return nil, err
	}
	cfg.logf("resume: SIGKILL the first gateway")
	s.killed.Store(time.Now().UnixNano())
	f.gateway.kill()
	clients.Wait()
	if err := f.alive(); err != nil {
		return nil, err
	}

	reconnect, resume := NewLatencies(), NewLatencies()
	var moved, resumed, received, lost, dup, lostClients, dupClients, interrupted int
	var lostPer, dupPer []int
	for i, c := range results {
		if c.err != nil {
			r.Errors++
			if r.Errors <= 10 {
				cfg.logf("resume: client %d: %v", i, c.err)
			}
			continue
		}
		received += c.events
		lost += c.lost
		dup += c.dup
		if c.lost > 0 {
			lostClients++
		}
		if c.dup > 0 {
			dupClients++
		}
		if c.interrupted {
			interrupted++
		}
		if !c.moved {
			continue
		}
		moved++
		lostPer, dupPer = append(lostPer, c.lost), append(dupPer, c.dup)
		reconnect.Record(c.reconnect)
		if c.resumed {
			resumed++
			resume.Record(c.resume)
		}
	}
	r.AddLatency("reconnect", "welcome", TargetFabric, reconnect.Summary())
	if resumed > 0 {
		r.AddLatency("resume", "first event", TargetFabric, resume.Summary())
		if cfg.Backoff > 0 {
			r.AddValue("resume p99 beyond the backoff cap", math.Round(float64(resume.Summary().P99)/1e3-float64(cfg.Backoff.Milliseconds())), "ms")
		}
	}
	r.AddValue("clients", float64(n), "")
	r.AddValue("clients moved (their gateway killed)", float64(moved), "")
	r.AddValue("sessions resumed", float64(resumed), "")
	r.AddValue("sessions not resumed (a new session)", float64(moved-resumed), "")
	r.AddValue("events expected", float64(n*(events+2)), "")
	r.AddValue("events received", float64(received), "")
	r.AddValue("events lost", float64(lost), "")
	r.AddValue("events duplicated", float64(dup), "")
	r.AddValue("clients that lost events", float64(lostClients), "")
	r.AddValue("clients with duplicates", float64(dupClients), "")
	r.AddValue("requests ended interrupted", float64(interrupted), "")
	for _, q := range []struct {
		name string
		p    float64
	}{{"p50", 0.5}, {"p99", 0.99}, {"max", 1}} {
		r.AddValue("events lost per moved client "+q.name, float64(percentile(lostPer, q.p)), "")
		r.AddValue("events duplicated per moved client "+q.name, float64(percentile(dupPer, q.p)), "")
	}
	r.Notes = append(r.Notes,
		fmt.Sprintf("each client streams demo/count n=%d intervalMs=%d (%d events with :response and :finish); the clients alternate between two gateways sharing --resume-secret; once every stream has had an event, and %s more, the first gateway gets SIGKILL", events, interval.Milliseconds(), events+2, interval),
		fmt.Sprintf("a moved client waits a random time up to --backoff (%s), then reconnects to the other gateway with resume (a try every %s, %d at most); reconnect: kill → sys/welcome; resume: kill → the first event after the request is re-sent with after = the last seq received", cfg.Backoff, resumeRetry, resumeAttempts),
		"lost: events of seq 1…n+2 never received (a request ended :error interrupted, or a session not resumed, loses the rest of its stream); duplicated: a seq received again")
	return r, nil
}

// resumeRun is the settings and the kill time shared by the clients.
type resumeRun struct {
	events   int
	interval time.Duration
	backoff  time.Duration
	params   string
	killed   atomic.Int64 // when the gateway was killed, in UnixNano; 0 before
}

// resumeResult is what one client saw.
type resumeResult struct {
	moved       bool          // its gateway was killed while it streamed
	resumed     bool          // the other gateway resumed its session
	reconnect   time.Duration // kill → the new welcome
	resume      time.Duration // kill → the first event after the re-send
	events      int           // frames of its request received, :finish included
	lost, dup   int
	interrupted bool // its request ended :error
	err         error
}

// stream is one client: it streams demo/count on home and calls started
// once the first event came (or it failed); if home is killed (mayMove)
// it resumes on other and re-sends with after.
func (s *resumeRun) stream(ctx context.Context, home, other string, mayMove bool, id string, started func()) (r resumeResult) {
	defer started()
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	c, w, err := dialSession(dctx, home, nil)
	cancel()
	if err != nil {
		r.err = err
		return r
	}
	defer func() {
		if c != nil {
			c.closeNormal()
		}
	}()
	frame := fmt.Appendf(nil, `{"type":"demo/count","id":%q,"payload":%s}`, id, s.params)
	if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		r.err = err
		return r
	}
	total := uint64(s.events + 2)
	seen := make(map[uint64]bool, total)
	var last, errSeq uint64
	for {
		if err := ctx.Err(); err != nil {
			r.err = err
			return r
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(10*time.Second + s.interval))
		_, data, err := c.ws.ReadMessage()
		var m protocol.Message
		if err == nil {
			err = json.Unmarshal(data, &m)
		}
		if err != nil {
			if r.moved || !mayMove || s.killed.Load() == 0 {
				r.err = fmt.Errorf("read after %d events: %w", r.events, err)
				return r
			}
			// Its gateway is gone: resume on the other.
			r.moved = true
			killed := time.Unix(0, s.killed.Load())
			c.close()
			if c, w, err = s.reconnect(ctx, other, w); err != nil {
				r.err = err
				return r
			}
			r.reconnect = time.Since(killed)
			if !w.Resumed {
				// Nothing to resume: the rest of the stream is lost.
				r.lost = int(total) - len(seen)
				return r
			}
			r.resumed = true
			// The same request again, with after: a request frame with
			// "after" is a re-send (even after 0), so only this one has it.
			frame := fmt.Appendf(nil, `{"type":"demo/count","id":%q,"payload":%s,"after":%d}`, id, s.params, last)
			if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
				r.err = err
				return r
			}
			continue
		}
		switch {
		case m.Type == "sys/ping":
			if err := c.ws.WriteMessage(websocket.TextMessage, pongFrame); err != nil {
				r.err = err
				return r
			}
			continue
		case m.Type == "sys/error":
			r.err = fmt.Errorf("%.300s", data)
			return r
		case m.ID != id:
			continue
		}
		if r.resumed && r.resume == 0 {
			r.resume = time.Since(time.Unix(0, s.killed.Load()))
		}
		if r.events == 0 {
			started()
		}
		r.events++
		if seen[m.Seq] {
			r.dup++
			continue
		}
		seen[m.Seq] = true
		last = max(last, m.Seq)
		switch m.Suffix() {
		case "error":
			r.interrupted, errSeq = true, m.Seq
		case "finish":
			got := len(seen)
			if r.interrupted {
				got -= 2 // the :error and its :finish are not the stream's
			}
			r.lost = int(total) - got
			if !r.interrupted && (m.Seq != total || errSeq != 0) {
				r.err = fmt.Errorf(":finish at seq %d, want %d", m.Seq, total)
			}
			return r
		}
	}
}

// reconnect waits a random time up to the backoff, then connects to url
// with the session of w, trying again every resumeRetry.
func (s *resumeRun) reconnect(ctx context.Context, url string, w protocol.Welcome) (*wsConn, protocol.Welcome, error) {
	if s.backoff > 0 {
		if err := sleepCtx(ctx, rand.N(s.backoff)); err != nil {
			return nil, w, err
		}
	}
	resume := &protocol.Resume{SessionID: w.SessionID, ResumeToken: w.ResumeToken}
	var err error
	for range resumeAttempts {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, nw, derr := dialSession(dctx, url, resume)
		cancel()
		if derr == nil {
			return c, nw, nil
		}
		err = derr
		if err := sleepCtx(ctx, resumeRetry); err != nil {
			return nil, w, err
		}
	}
	return nil, w, fmt.Errorf("resume: %w", err)
}

// dialSession connects to a gateway, with resume if not nil, and returns
// its welcome.
func dialSession(ctx context.Context, url string, resume *protocol.Resume) (*wsConn, protocol.Welcome, error) {
	var w protocol.Welcome
	hello, err := json.Marshal(map[string]any{"type": protocol.TypeHello, "payload": protocol.Hello{Client: "fabric-bench", Resume: resume}})
	if err != nil {
		return nil, w, err
	}
	c, welcome, err := dialHello(ctx, url, nil, hello)
	if err != nil {
		return nil, w, err
	}
	var m protocol.Message
	if err = json.Unmarshal(welcome, &m); err == nil {
		err = json.Unmarshal(m.Payload, &w)
	}
	if err != nil {
		c.close()
		return nil, w, fmt.Errorf("bench: welcome %.200q: %w", welcome, err)
	}
	return c, w, nil
}

// percentile returns the p-th quantile (0…1) of xs, nearest rank.
func percentile(xs []int, p float64) int {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}
