package gateway

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
)

// request is one request in flight on a session. Its lifecycle ends in
// exactly one ":finish" to the client, by one of: the worker's finish
// (onEvent), a cancel from the client (cancel), the inactivity timeout
// (onTimeout), NATS's no-responders status (onEvent), or the loss of the
// connection (interruptLocked). All of it happens in this file, under the
// session's mutex.
type request struct {
	id         string
	typeName   string
	typeTokens string // typeName as subject tokens, to parse event subjects
	route      string // metrics label
	lastSeq    uint64 // the highest seq sent to the client
	started    time.Time
	timer      *time.Timer // the inactivity timeout
}

// start accepts a request from the client. It returns an error for a frame
// to reject with sys/error; every request it accepts ends with one :finish.
func (s *session) start(f *protocol.ClientFrame) error {
	g := s.gw
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, busy := s.requests[f.ID]; busy {
		return protocol.Errorf(protocol.CodeBadRequest, "id %q is already in flight on this session", f.ID)
	}
	route := g.metrics.routeLabel(f.Type)
	r := &request{id: f.ID, typeName: f.Type, route: route, lastSeq: f.After}
	switch {
	case f.HasAfter:
		// A request re-sent during resume. Without durable storage its
		// remaining events are lost: say so, continuing the client's seq.
		// Nothing reaches NATS, so a worker still finishing the old run
		// cannot be confused with it.
		s.failLocked(r, outcomeInterrupted, protocol.Errorf(protocol.CodeInterrupted,
			"the request's events were lost when the connection dropped"))
		return nil
	case s.stillFinishingLocked(f.ID):
		return protocol.Errorf(protocol.CodeBadRequest, "id %q is still finishing on this session", f.ID)
	case len(s.requests) >= g.cfg.MaxInFlight:
		s.failLocked(r, outcomeOverloaded, protocol.Errorf(protocol.CodeOverloaded,
			"more than %d requests in flight on this connection", g.cfg.MaxInFlight))
		return nil
	}
	payload := f.PayloadOrNull()
	msg := &nats.Msg{
		Subject: g.space.Request(f.Type),
		Reply:   g.space.Reply(s.id, f.ID),
		Header:  nats.Header{subjects.HeaderID: {f.ID}, subjects.HeaderSession: {s.id}},
		Data:    payload,
	}
	if s.user != "" {
		msg.Header[subjects.HeaderUser] = []string{s.user}
	}
	if validTraceparent(f.Traceparent) {
		msg.Header[subjects.HeaderTraceparent] = []string{f.Traceparent}
		if validTracestate(f.Tracestate) {
			msg.Header[subjects.HeaderTracestate] = []string{f.Tracestate}
		}
	}
	if max := g.nc.MaxPayload(); int64(len(payload)+headerSize(msg)) > max {
		s.failLocked(r, outcomeTooLarge, protocol.Errorf(protocol.CodeTooLarge,
			"the payload is larger than the message bus allows (%d bytes)", max))
		return nil
	}
	r.typeTokens = subjects.TypeTokens(f.Type)
	r.started = time.Now()
	s.requests[r.id] = r
	if err := g.nc.PublishMsg(msg); err != nil {
		delete(s.requests, r.id)
		g.log.Error("publish request failed", "session", s.id, "id", r.id, "route", r.typeName, "err", err)
		s.failLocked(r, outcomeInternal, protocol.Errorf(protocol.CodeInternal, "the message bus is unavailable"))
		return nil
	}
	r.timer = time.AfterFunc(g.cfg.RequestTimeout, func() { s.onTimeout(r) })
	return nil
}

// onEvent handles a message on the session's events wildcard: a worker's
// event, or a NATS status on a request's reply subject.
func (s *session) onEvent(m *nats.Msg) {
	g := s.gw
	id, tail, ok := g.space.ParseEvent(s.id, m.Subject)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.requests[id]
	if r == nil {
		if _, ok := s.finishing[id]; ok && isFinish(tail) {
			delete(s.finishing, id)
		}
		return // a late event of a cancelled, timed-out or interrupted request
	}
	if tail == "" {
		if m.Header.Get(subjects.HeaderStatus) == subjects.StatusNoResponders {
			s.failLocked(r, outcomeNoResponders, protocol.Errorf(protocol.CodeNoResponders,
				"no worker serves %s", r.typeName))
		}
		return
	}
	suffix, ok := subjects.EventSuffix(tail, r.typeTokens)
	if !ok {
		g.log.Warn("event dropped: subject does not match the request", "session", s.id, "id", id, "route", r.typeName, "subject", m.Subject)
		return
	}
	seq := r.lastSeq + 1
	if h := m.Header.Get(subjects.HeaderSeq); h != "" {
		n, err := strconv.ParseUint(h, 10, 64)
		if err != nil || n == 0 {
			g.log.Warn("event dropped: bad "+subjects.HeaderSeq, "session", s.id, "id", id, "route", r.typeName, "seq", h)
			return
		}
		if n <= r.lastSeq {
			return // a duplicate
		}
		seq = n
	}
	finish := suffix == protocol.SuffixFinish
	payload := m.Data
	if finish {
		payload = nil
	} else if len(payload) > 0 && !json.Valid(payload) {
		g.log.Warn("event dropped: payload is not JSON", "session", s.id, "id", id, "route", r.typeName, "event", suffix)
		return
	}
	r.lastSeq = seq
	s.sendLocked(eventFrame(r.typeName, suffix, r.id, seq, payload))
	g.metrics.events.Inc()
	if suffix == protocol.SuffixError {
		r.route = "!" + r.route // remember the outcome; see endLocked
	}
	if finish {
		s.endLocked(r, "")
		return
	}
	r.timer.Reset(g.cfg.RequestTimeout)
}

// cancel cancels request id at the client's word: the client gets
// :error{cancelled} + :finish at once; the worker is told to stop and its
// later events are dropped. An unknown or finished id is ignored.
func (s *session) cancel(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.requests[id]; r != nil {
		s.stopWorkerLocked(r)
		s.failLocked(r, outcomeCancelled, protocol.Errorf(protocol.CodeCancelled, "cancelled by the client"))
	}
}

// onTimeout ends a request whose worker sent nothing for RequestTimeout.
func (s *session) onTimeout(r *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.requests[r.id] != r {
		return // it ended meanwhile
	}
	s.gw.log.Info("request timed out", "session", s.id, "id", r.id, "route", r.typeName, "timeout", s.gw.cfg.RequestTimeout.String())
	s.stopWorkerLocked(r)
	s.failLocked(r, outcomeTimeout, protocol.Errorf(protocol.CodeTimeout,
		"the worker sent nothing for %s", s.gw.cfg.RequestTimeout))
}

// interruptLocked ends every request in flight when the connection is lost
// or the session ends: without durable storage their events could not be
// replayed, so the workers are told to stop. A client that resumes re-sends
// them and is answered :error{interrupted}.
func (s *session) interruptLocked() {
	for _, r := range s.requests {
		s.stopWorkerLocked(r)
		s.endLocked(r, outcomeInterrupted)
	}
}

// failLocked sends the gateway's own :error and :finish for r, continuing
// its seq, and ends it.
func (s *session) failLocked(r *request, outcome string, e *protocol.Error) {
	s.sendLocked(eventFrame(r.typeName, protocol.SuffixError, r.id, r.lastSeq+1, e.Payload()))
	s.sendLocked(eventFrame(r.typeName, protocol.SuffixFinish, r.id, r.lastSeq+2, nil))
	r.lastSeq += 2
	s.endLocked(r, outcome)
}

// stopWorkerLocked tells the worker running r to cancel it, and marks r's id
// as finishing, so that the worker's late events are dropped rather than
// taken for a new request reusing the id.
func (s *session) stopWorkerLocked(r *request) {
	if err := s.gw.nc.Publish(s.gw.space.Cancel(s.id, r.id), nil); err != nil {
		s.gw.log.Warn("publish cancel failed", "session", s.id, "id", r.id, "route", r.typeName, "err", err)
	}
	if len(s.finishing) > 64 {
		now := time.Now()
		for id, until := range s.finishing {
			if now.After(until) {
				delete(s.finishing, id)
			}
		}
	}
	s.finishing[r.id] = time.Now().Add(s.gw.cfg.RequestTimeout)
}

func (s *session) stillFinishingLocked(id string) bool {
	until, ok := s.finishing[id]
	if ok && time.Now().After(until) {
		delete(s.finishing, id)
		return false
	}
	return ok
}

// endLocked removes r and records its outcome ("" means the worker finished
// it: ok, or error if it sent :error).
func (s *session) endLocked(r *request, outcome string) {
	if r.timer != nil {
		r.timer.Stop()
	}
	delete(s.requests, r.id)
	route := r.route
	if outcome == "" {
		outcome = outcomeOK
		if len(route) > 0 && route[0] == '!' {
			outcome, route = outcomeError, route[1:]
		}
	}
	m := s.gw.metrics
	m.requests.WithLabelValues(route, outcome).Inc()
	if !r.started.IsZero() {
		m.duration.WithLabelValues(route).Observe(time.Since(r.started).Seconds())
	}
}

func (s *session) sendLocked(frame []byte) {
	if s.conn != nil {
		s.conn.enqueue(frame)
	}
}

// eventFrame encodes an event frame into a buffer of the right size: one
// allocation per event.
func eventFrame(typeName, suffix, id string, seq uint64, payload []byte) []byte {
	const overhead = len(`{"type":":","id":"","seq":18446744073709551615,"payload":}`)
	buf := make([]byte, 0, overhead+len(typeName)+len(suffix)+len(id)+len(payload))
	return protocol.AppendEventFrame(buf, typeName, suffix, id, seq, payload, "")
}

func isFinish(tail string) bool {
	return len(tail) > len(protocol.SuffixFinish) && tail[len(tail)-len(protocol.SuffixFinish)-1:] == "."+protocol.SuffixFinish
}

// headerSize estimates the encoded size of msg's headers.
func headerSize(msg *nats.Msg) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range msg.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n + len(msg.Subject) + len(msg.Reply)
}

// validTraceparent checks the W3C traceparent shape
// "vv-<32 hex>-<16 hex>-ff"; anything else is ignored, never forwarded.
func validTraceparent(s string) bool {
	if len(s) != 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i == 2 || i == 35 || i == 52 {
			continue
		}
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s[:2] != "ff"
}

// validTracestate accepts a W3C tracestate of printable ASCII, bounded in
// size.
func validTracestate(s string) bool {
	if s == "" || len(s) > 512 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}
