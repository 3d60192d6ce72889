package gateway

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
)

// request is one request in flight on a session. Its lifecycle ends in
// exactly one ":finish" to the client, by one of: the worker's finish
// (onEvent), a cancel from the client (cancel), the inactivity timeout
// (onTimeout), NATS's no-responders status (onEvent), or the loss of the
// connection (interruptLocked; in durable mode the request runs on, and
// the client gets the rest when it re-sends it after resuming). All of it
// happens in this file and durable.go, under the session's mutex.
type request struct {
	id         string
	typeName   string
	typeTokens string // typeName as subject tokens, to parse event subjects
	route      string // metrics label
	failed     bool   // an :error was seen: the outcome, unless the gateway's own
	lastSeq    uint64 // the highest seq of the request's events, the worker's or the gateway's
	sent       uint64 // the highest seq queued to the client
	started    time.Time
	timer      *time.Timer // the inactivity timeout
	deadline   *time.Timer // MaxRequestDuration

	// Durable mode.
	durable bool // in the ledger: its events are stored
	// claiming: the ledger has not yet said whether it runs; its events are
	// ignored, its timeouts wait.
	claiming bool
	// cancelled: the client cancelled it while it was claiming.
	cancelled bool
	// handedOver: its session was released to another gateway while it
	// was claiming; it runs if claimed.
	handedOver bool
	// workerDone: the worker's :finish was seen; what is left to send
	// comes from the store.
	workerDone bool
	// progressed is when an event was last sent to the client.
	progressed time.Time
	// held: the client has not re-sent the request since its session
	// resumed, so nothing is delivered; the events are in the store.
	held bool
	// closedAt: a gateway ended the request with its own :error of this
	// seq (timeout, cancel…); the worker's events from it on are dropped.
	// 0 while open.
	closedAt uint64
	// stopWorker: the gateway closed it; the worker is told to stop once
	// the store has the gateway's :error and :finish.
	stopWorker bool
	replaying  bool   // stored events are being replayed: deliver in seq order
	replayGen  int    // numbers replays, so a stale one's events are dropped
	stopReplay func() // stops the replay's consumer, once it runs
	// ahead: live events that came while a replay was behind them, in seq
	// order, within bounds (keepAhead); sent once the replay reaches them,
	// which ends the replay.
	ahead      []event
	aheadBytes int    // their frames' size, about
	outcome    string // the gateway's outcome, when it ended the request

	// Tracing (trace.go).
	span     trace.Span // the gateway's span of the request, ended with it
	sendSpan trace.Span // the span of its NATS message, until published
	traceID  string     // the `trace` field of its frames; "" when untraced
}

// event is one event of a request on its way to the client.
type event struct {
	seq      uint64
	suffix   string
	payload  []byte      // nil for :finish
	header   nats.Header // the NATS message's (its traceparent is the link); nil for one made here
	origin   bool        // made by a gateway (timeout, cancel…)
	replayed bool        // read from the store
}

// start accepts a request from the client. It returns an error for a frame
// to reject with sys/error; every request it accepts ends with one :finish.
func (s *session) start(f *protocol.ClientFrame) error {
	g := s.gw
	s.mu.Lock()
	if r := s.requests[f.ID]; r != nil {
		defer s.mu.Unlock()
		if f.HasAfter && r.durable {
			// Re-sent after a resume, while it still runs here.
			s.resendLocked(r, f.After)
			return nil
		}
		return protocol.Errorf(protocol.CodeBadRequest, "id %q is already in flight on this session", f.ID)
	}
	r := s.newRequest(f)
	switch {
	case !s.allowedLocked(f.Type):
		defer s.mu.Unlock()
		s.failLocked(r, outcomeForbidden, protocol.Errorf(protocol.CodeForbidden, "%s is not allowed for this user", f.Type))
		return nil
	case f.HasAfter && g.store == nil:
		// A request re-sent during resume. Without durable storage its
		// remaining events are lost: say so, continuing the client's seq.
		// Nothing reaches NATS, so a worker still finishing the old run
		// cannot be confused with it.
		defer s.mu.Unlock()
		s.failLocked(r, outcomeInterrupted, protocol.Errorf(protocol.CodeInterrupted,
			"the request's events were lost when the connection dropped"))
		return nil
	case !f.HasAfter && s.stillFinishingLocked(f.ID):
		s.mu.Unlock()
		err := protocol.Errorf(protocol.CodeBadRequest, "id %q is still finishing on this session", f.ID)
		rejectSpan(r, err)
		return err
	case len(s.requests) >= g.cfg.MaxInFlight:
		defer s.mu.Unlock()
		s.failLocked(r, outcomeOverloaded, protocol.Errorf(protocol.CodeOverloaded,
			"more than %d requests in flight on this connection", g.cfg.MaxInFlight))
		return nil
	}
	if !g.nc.IsConnected() {
		// nats.go would buffer the request until it reconnects; the client
		// is better told at once.
		defer s.mu.Unlock()
		s.failLocked(r, outcomeInternal, protocol.Errorf(protocol.CodeInternal,
			"the message bus is unreachable: try again shortly"))
		return nil
	}
	msg := s.requestMsg(r, f)
	if max := g.nc.MaxPayload(); int64(len(msg.Data)+headerSize(msg)) > max {
		defer s.mu.Unlock()
		s.failLocked(r, outcomeTooLarge, protocol.Errorf(protocol.CodeTooLarge,
			"the payload is larger than the message bus allows (%d bytes)", max))
		return nil
	}
	if s.ended {
		s.mu.Unlock()
		err := protocol.Errorf(protocol.CodeBadRequest, "the session has ended")
		rejectSpan(r, err)
		return err
	}
	defer s.mu.Unlock()
	r.started = time.Now()
	if s.requests == nil {
		s.requests = make(map[string]*request)
	}
	s.requests[r.id] = r
	r.timer = time.AfterFunc(g.cfg.RequestTimeout, func() { s.onTimeout(r) })
	r.deadline = time.AfterFunc(g.cfg.MaxRequestDuration, func() { s.onDeadline(r) })
	if g.store != nil {
		// The ledger decides whether it runs: off this goroutine, which
		// reads the client's next frames meanwhile.
		r.durable, r.claiming = true, true
		g.bg.Add(1)
		go s.claimAndRun(r, f.HasAfter, f.After, msg)
		return nil
	}
	s.publishLocked(r, msg)
	return nil
}

// newRequest returns the request of frame f, its span started.
func (s *session) newRequest(f *protocol.ClientFrame) *request {
	route := s.gw.metrics.routeLabel(f.Type)
	r := &request{id: f.ID, typeName: f.Type, typeTokens: subjects.TypeTokens(f.Type), route: route, lastSeq: f.After, sent: f.After}
	s.startSpan(r, f)
	return r
}

// refuse ends request f before it starts, with e and :finish (numbered on
// from f's after), and publishes nothing. It returns false, doing nothing,
// when f's id is in flight: that request's client would take them for its
// end, so the caller answers sys/error instead.
func (s *session) refuse(f *protocol.ClientFrame, outcome string, e *protocol.Error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.requests[f.ID] != nil {
		return false
	}
	s.failLocked(s.newRequest(f), outcome, e)
	return true
}

// publishLocked publishes r's request message. A request that cannot be
// published ends with :error{internal}.
func (s *session) publishLocked(r *request, msg *nats.Msg) {
	err := s.gw.nc.PublishMsg(msg)
	s.endSendSpan(r, err)
	if err != nil {
		s.rlog(r).Error("publish request failed", "err", err)
		if s.requests[r.id] == r {
			s.failLocked(r, outcomeInternal, protocol.Errorf(protocol.CodeInternal, "the message bus is unavailable"))
		}
	}
}

// requestMsg is the NATS message of the client's request f, in r's trace.
func (s *session) requestMsg(r *request, f *protocol.ClientFrame) *nats.Msg {
	g := s.gw
	msg := &nats.Msg{
		Subject: g.space.Request(f.Type),
		Reply:   g.space.Reply(s.id, f.ID),
		Header:  nats.Header{subjects.HeaderID: {f.ID}, subjects.HeaderSession: {s.id}},
		Data:    f.PayloadOrNull(),
	}
	if g.store != nil {
		// Published once the ledger has answered: the reader's buffer
		// holds the next frame by then.
		msg.Data = bytes.Clone(msg.Data)
		// The worker publishes the events to the store and awaits its acks.
		msg.Header[subjects.HeaderDurable] = []string{"1"}
	}
	if s.user != "" {
		msg.Header[subjects.HeaderUser] = []string{s.user}
	}
	if s.ident.claims != "" {
		msg.Header[subjects.HeaderClaims] = []string{s.ident.claims}
	}
	s.startSendSpan(r, msg)
	return msg
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
		if m.Header.Get(subjects.HeaderStatus) == subjects.StatusNoResponders && r.closedAt == 0 {
			s.failLocked(r, outcomeNoResponders, protocol.Errorf(protocol.CodeNoResponders,
				"no worker serves %s", r.typeName))
		}
		return
	}
	s.eventLocked(r, tail, m.Header, m.Data, m.Subject, false)
}

// eventLocked handles one event of r, live or replayed: it checks it,
// numbers it, and delivers it in order.
func (s *session) eventLocked(r *request, tail string, h nats.Header, data []byte, subject string, replayed bool) {
	g := s.gw
	if r.claiming {
		return // a run before this one's: a replay brings its events
	}
	suffix, ok := subjects.EventSuffix(tail, r.typeTokens)
	if !ok {
		s.rlog(r).Warn("event dropped: subject does not match the request", "subject", subject)
		return
	}
	fromGateway := h.Get(subjects.HeaderOrigin) == subjects.OriginGateway
	seq := r.lastSeq + 1
	if v := h.Get(subjects.HeaderSeq); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			s.rlog(r).Warn("event dropped: bad "+subjects.HeaderSeq, "seq", v)
			return
		}
		seq = n
	}
	if r.closedAt != 0 && seq >= r.closedAt && !fromGateway {
		return // a gateway ended the request: the worker's late events are dropped
	}
	finish := suffix == protocol.SuffixFinish
	payload := data
	if finish {
		payload = nil
	} else if len(payload) > 0 && !json.Valid(payload) {
		s.rlog(r).Warn("event dropped: payload is not JSON", "event", suffix)
		return
	}
	if finish && !fromGateway {
		r.workerDone = true
	}
	if fromGateway && suffix == protocol.SuffixError && (r.closedAt == 0 || seq < r.closedAt) {
		r.closedAt = seq // a gateway ended it (maybe another, before a takeover)
	}
	if seq > r.lastSeq {
		r.lastSeq = seq
		if suffix == protocol.SuffixError {
			r.failed = true
		}
		if !finish && r.closedAt == 0 {
			r.timer.Reset(g.cfg.RequestTimeout)
		}
	}
	s.deliverLocked(r, event{seq: seq, suffix: suffix, payload: payload, header: h, origin: fromGateway, replayed: replayed})
}

// deliverLocked queues event seq of r for the client, in order: an event
// already sent is dropped, and so is one ahead of a gap: a replay brings it
// in turn (durable mode), or the request ends interrupted (core mode). The request ends when its :finish is
// sent, or, while it is held, when its :finish is seen (the client gets it
// from the store).
func (s *session) deliverLocked(r *request, ev event) {
	seq, finish := ev.seq, ev.suffix == protocol.SuffixFinish
	if r.held {
		if finish {
			s.endLocked(r, "")
		}
		return
	}
	if seq <= r.sent {
		return // a duplicate: sent live and replayed, or replayed twice
	}
	if seq > r.sent+1 {
		switch {
		case r.replaying:
			// Ahead of a gap: the replay, which reads every stored event in
			// order, brings the missing ones; this one is kept to follow
			// them, or, with too many kept, the replay brings it too.
			if !ev.replayed {
				s.keepAhead(r, ev)
			}
		case r.durable:
			// Events were lost on the way (NATS failed over while the worker
			// sent): the store has them; replay from what the client has.
			s.rlog(r).Warn("event gap: replaying from the store", "sent", r.sent, "seq", seq)
			s.replayLocked(r)
		default:
			// Core mode cannot get them back: say so, never skip silently.
			s.rlog(r).Warn("event gap: interrupting", "sent", r.sent, "seq", seq)
			s.interruptReplayLocked(r)
		}
		return
	}
	r.sent = seq
	if r.durable {
		r.progressed = time.Now()
	}
	if r.replaying && !ev.replayed && !finish {
		// A live event in turn: the client has every earlier one, and the
		// live ones that follow come in order.
		s.endReplayLocked(r)
	}
	if !finish && len(r.ahead) > 0 {
		defer s.sendAheadLocked(r) // after this event's frame
	}
	s.traceDeliveryLocked(r, &ev)
	frame := eventFrame(r.typeName, ev.suffix, r.id, seq, ev.payload, r.traceID)
	s.gw.metrics.events.Inc()
	if finish {
		// Ended (span, metrics) before the client can see the :finish.
		s.endLocked(r, "")
	}
	s.sendLocked(frame)
}

// cancel cancels request id at the client's word: the client gets
// :error{cancelled} + :finish at once; the worker is told to stop and its
// later events are dropped. An unknown or finished id is ignored.
func (s *session) cancel(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.requests[id]; r != nil && r.closedAt == 0 {
		if r.claiming {
			r.cancelled = true // the claim ends it
			return
		}
		s.closeLocked(r, outcomeCancelled, protocol.Errorf(protocol.CodeCancelled, "cancelled by the client"))
	}
}

// gapTimeout bounds the wait, in durable mode, for the store to fill a gap
// in a request's events: a worker sends an event again until the store
// acknowledges it, which can take a JetStream leader election (seconds)
// plus the worker's ack timeout.
const gapTimeout = 30 * time.Second

// onTimeout ends a request whose worker sent nothing for RequestTimeout.
func (s *session) onTimeout(r *request) {
	if s.gw.store != nil && s.gw.nc.FlushTimeout(time.Second) != nil {
		// The gateway's own NATS node may be frozen: the worker's events
		// are stored, and replayed once the connection moves on.
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.requests[r.id] == r {
			r.timer.Reset(s.gw.cfg.RequestTimeout)
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.requests[r.id] != r {
		return // it ended meanwhile
	}
	if r.claiming || (r.replaying && r.stopReplay == nil) || (r.durable && !s.gw.nc.IsConnected()) {
		// Waiting for the store (which bounds its own tries), or unable to
		// hear the worker, whose events the store keeps: wait for the
		// reconnect and its replay.
		r.timer.Reset(s.gw.cfg.RequestTimeout)
		return
	}
	if r.closedAt != 0 || r.workerDone {
		// The worker, or a gateway, ended it, but a gap keeps its :finish
		// from the client. In durable mode the worker sends the missing
		// events again until the store has them, which may outlast the
		// store's leader election: wait gapTimeout from the last event
		// sent. Then the store has lost them.
		if wait := gapTimeout - time.Since(r.progressed); r.durable && wait > 0 {
			r.timer.Reset(wait)
			return
		}
		s.interruptReplayLocked(r)
		return
	}
	s.rlog(r).Info("request timed out", "timeout", s.gw.cfg.RequestTimeout.String())
	s.closeLocked(r, outcomeTimeout, protocol.Errorf(protocol.CodeTimeout,
		"the worker sent nothing for %s", s.gw.cfg.RequestTimeout))
}

// onDeadline ends a request that ran for MaxRequestDuration.
func (s *session) onDeadline(r *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.requests[r.id] != r || r.closedAt != 0 {
		return
	}
	if r.claiming {
		r.deadline.Reset(time.Second)
		return
	}
	s.rlog(r).Info("request ran too long", "max", s.gw.cfg.MaxRequestDuration.String())
	s.closeLocked(r, outcomeTimeout, protocol.Errorf(protocol.CodeTimeout,
		"the request ran longer than %s", s.gw.cfg.MaxRequestDuration))
}

// interruptLocked ends every request in flight when the connection is lost
// (core mode) or the session ends: their events cannot reach the client, so
// the workers are told to stop. A client that resumes a core-mode session
// re-sends them and is answered :error{interrupted}.
func (s *session) interruptLocked() {
	for _, r := range s.requests {
		s.stopWorkerLocked(r)
		s.endLocked(r, outcomeInterrupted)
	}
}

// closeLocked ends r at the gateway's word (cancel, timeout): the client
// gets the gateway's :error and :finish, and the worker is told to stop.
func (s *session) closeLocked(r *request, outcome string, e *protocol.Error) {
	if r.durable {
		r.stopWorker = true // once the store has the gateway's events: storeLocked
		s.markFinishingLocked(r)
	} else {
		s.stopWorkerLocked(r)
	}
	s.failLocked(r, outcome, e)
}

// failLocked ends r with the gateway's own :error and :finish, numbered on
// from its last event. In durable mode they are stored too, so that the
// client gets them wherever it resumes.
func (s *session) failLocked(r *request, outcome string, e *protocol.Error) {
	errSeq, finSeq := r.lastSeq+1, r.lastSeq+2
	r.lastSeq, r.closedAt = finSeq, errSeq
	if r.timer != nil {
		r.timer.Reset(s.gw.cfg.RequestTimeout) // now only bounds a replay gap
	}
	if r.durable {
		s.storeLocked(r, errSeq, r.stopWorker, storedEvent{protocol.SuffixError, errSeq, e.Payload()}, storedEvent{protocol.SuffixFinish, finSeq, nil})
	}
	errEv := event{seq: errSeq, suffix: protocol.SuffixError, payload: e.Payload(), origin: true}
	finEv := event{seq: finSeq, suffix: protocol.SuffixFinish, origin: true}
	if s.requests[r.id] != r { // never started (overloaded, too large…)
		s.sendMadeLocked(r, errEv)
		s.sendMadeLocked(r, finEv)
		s.recordLocked(r, outcome)
		return
	}
	r.outcome = outcome
	s.deliverLocked(r, errEv)
	s.deliverLocked(r, finEv)
}

// stopWorkerLocked tells the worker running r to cancel it, and marks r's id
// as finishing, so that the worker's late events are dropped rather than
// taken for a new request reusing the id.
func (s *session) stopWorkerLocked(r *request) {
	if err := s.gw.nc.Publish(s.gw.space.Cancel(s.id, r.id), nil); err != nil {
		s.rlog(r).Warn("publish cancel failed", "err", err)
	}
	s.markFinishingLocked(r)
}

// markFinishingLocked marks r's id as finishing: a new request reusing it is
// refused while the worker may still send.
func (s *session) markFinishingLocked(r *request) {
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

// endLocked removes r and records its outcome: outcome, else the one
// failLocked set, else the worker's (ok, or error if it sent :error).
func (s *session) endLocked(r *request, outcome string) {
	if r.timer != nil {
		r.timer.Stop()
		r.deadline.Stop()
	}
	if r.stopReplay != nil {
		go r.stopReplay()
		r.stopReplay = nil
	}
	if s.requests[r.id] == r {
		delete(s.requests, r.id)
		if len(s.requests) == 0 {
			s.requests = nil // a map keeps its memory when emptied; an idle session holds none
		}
	}
	if outcome == "" {
		outcome = r.outcome
	}
	s.recordLocked(r, outcome)
}

// recordLocked counts r's outcome in the metrics.
func (s *session) recordLocked(r *request, outcome string) {
	if outcome == "" {
		outcome = outcomeOK
		if r.failed {
			outcome = outcomeError
		}
	}
	s.endSpanLocked(r, outcome)
	m := s.gw.metrics
	m.requests.WithLabelValues(r.route, outcome).Inc()
	if !r.started.IsZero() {
		m.duration.WithLabelValues(r.route).Observe(time.Since(r.started).Seconds())
	}
}

func (s *session) sendLocked(frame []byte) {
	if s.conn != nil {
		s.conn.enqueue(frame)
	}
}

// eventFrame encodes an event frame into a buffer of the right size: one
// allocation per event.
func eventFrame(typeName, suffix, id string, seq uint64, payload []byte, trace string) []byte {
	const overhead = len(`{"type":":","id":"","seq":18446744073709551615,"payload":,"trace":""}`)
	buf := make([]byte, 0, overhead+len(typeName)+len(suffix)+len(id)+len(payload)+len(trace))
	return protocol.AppendEventFrame(buf, typeName, suffix, id, seq, payload, trace)
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
