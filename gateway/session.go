package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"sync"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
)

// session is a client's session. It outlives its connection for
// SessionRetention, so that the client can resume it, here or on another
// gateway. Its NATS subscriptions receive its requests' events (and the
// no-responders status on each reply subject), pushes to it, and other
// gateways' takeover requests.
type session struct {
	id   string
	user string
	gw   *Gateway

	mu   sync.Mutex
	conn *conn // nil while detached
	// ident is the identity of the session's connection: the user's
	// claims and route rights as of its last hello or refresh.
	ident     *identity
	requests  map[string]*request
	finishing map[string]time.Time // ids the client saw finish while a worker may still send: until when
	expiry    *time.Timer          // runs while detached
	ended     bool
	subs      []*nats.Subscription
}

// userSubscription is the one subscription to a user's pushes that a gateway
// shares among that user's sessions.
type userSubscription struct {
	sub      *nats.Subscription
	sessions map[*session]struct{}
}

// takeoverReply is what the gateway holding a session answers the gateway
// that resumes it.
type takeoverReply struct {
	User string `json:"user"`
}

// openSession resumes the session named in hello if its token is valid and a
// gateway holds it, else creates a new one. It attaches c and queues
// sys/welcome before any other frame of the session.
func (g *Gateway) openSession(c *conn, h *protocol.Hello) (*session, error) {
	user := c.ident.User // "" when authentication is not configured
	if r := h.Resume; r != nil {
		if subjects.ValidateSessionID(r.SessionID) == nil && g.tokens.verify(r.SessionID, user, r.ResumeToken) {
			if s := g.resume(r.SessionID, user, c); s != nil {
				return s, nil
			}
		} else {
			c.logger().Info("resume rejected: bad session id or token")
		}
	}
	for {
		s, err := g.newSession(newSessionID(), user)
		if err != nil {
			return nil, err
		}
		if g.store != nil {
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			if err := g.store.saveSession(ctx, s.id, user); err != nil {
				c.logger().Warn("session record not saved: only a live gateway can resume it", "session", s.id, "err", err)
			}
			cancel()
		}
		if s.attach(c, false) {
			return s, nil
		}
	}
}

// resume attaches c to session id, taking it over from another gateway if
// needed. It returns nil when no gateway holds the session.
func (g *Gateway) resume(id, user string, c *conn) *session {
	g.mu.Lock()
	s := g.sessions[id]
	g.mu.Unlock()
	if s != nil && s.user == user && s.attach(c, true) {
		g.metrics.sessionsResumed.Inc()
		return s
	}
	ctx, cancel := defaultTimeout(context.Background(), g.cfg.TakeoverTimeout)
	defer cancel()
	msg, err := g.requestTakeover(ctx, id)
	if err != nil {
		if !errors.Is(err, nats.ErrNoResponders) {
			c.logger().Warn("session takeover failed", "resumed_session", id, "err", err)
		}
		return g.adopt(id, user, c)
	}
	var reply takeoverReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil || reply.User != user {
		return nil
	}
	s, err = g.newSession(id, user)
	if err != nil || !s.attach(c, true) {
		return nil
	}
	g.metrics.sessionsResumed.Inc()
	c.logger().Info("session taken over from another gateway", "session", id)
	return s
}

// takeoverRetry is how long a takeover request waits for an answer, in
// durable mode, before it is sent again. NATS routes a request to a gateway
// that has just died until it notices the closed connection: the request is
// lost, and the next one gets no responders, so the session is adopted from
// the store instead of after TakeoverTimeout.
const takeoverRetry = 250 * time.Millisecond

// requestTakeover asks the gateway holding session id to hand it over,
// until ctx ends; it returns nats.ErrNoResponders when no gateway holds the
// session. In durable mode it asks again every takeoverRetry: a gateway
// that answers an earlier request late has released the session by then,
// so the next one finds no responders and the store's record, which is
// what the answer would have said. In core mode there is no record to fall
// back on: it asks once.
func (g *Gateway) requestTakeover(ctx context.Context, id string) (*nats.Msg, error) {
	body, _ := json.Marshal(map[string]string{"gateway": g.cfg.ID})
	for {
		try, cancel := ctx, context.CancelFunc(func() {})
		if g.store != nil {
			try, cancel = context.WithTimeout(ctx, takeoverRetry)
		}
		msg, err := g.nc.RequestWithContext(try, g.space.Takeover(id), body)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return msg, err // an answer, no responders, or no time left
		}
	}
}

// adopt resumes, in durable mode, a session no gateway holds (its gateway
// died) from its record in the store. It returns nil in core mode or when
// there is no record.
func (g *Gateway) adopt(id, user string, c *conn) *session {
	if g.store == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	recorded, ok, err := g.store.lookupSession(ctx, id)
	if err != nil {
		c.logger().Warn("session record lookup failed", "resumed_session", id, "err", err)
		return nil
	}
	if !ok || recorded != user {
		return nil
	}
	s, err := g.newSession(id, user)
	if err != nil || !s.attach(c, true) {
		return nil
	}
	g.metrics.sessionsResumed.Inc()
	c.logger().Info("session adopted from the store: its gateway is gone", "session", id)
	return s
}

// newSession registers a session and subscribes to its subjects. If the id
// is already registered (a concurrent resume), it returns that session.
func (g *Gateway) newSession(id, user string) (*session, error) {
	s := &session{
		id:        id,
		user:      user,
		gw:        g,
		ident:     anonymous, // until attach
		finishing: make(map[string]time.Time),
	}
	g.mu.Lock()
	if old := g.sessions[id]; old != nil {
		g.mu.Unlock()
		return old, nil
	}
	g.sessions[id] = s
	g.mu.Unlock()
	g.metrics.sessions.Inc() // end() decrements, whatever happens below
	for _, sub := range []struct {
		subject string
		handler nats.MsgHandler
	}{
		{g.space.SessionEvents(id), s.onEvent},
		{g.space.PushSession(id), s.onPush},
		{g.space.Takeover(id), s.onTakeover},
	} {
		ns, err := g.subs.subscribe(g.nc, sub.subject, id, sub.handler)
		if err != nil {
			s.end()
			return nil, fmt.Errorf("gateway: subscribe %s: %w", sub.subject, err)
		}
		s.mu.Lock()
		s.subs = append(s.subs, ns)
		s.mu.Unlock()
	}
	if user != "" {
		if err := g.addUserSession(s); err != nil {
			s.end()
			return nil, err
		}
	}
	return s, nil
}

// attach makes c the session's connection and queues sys/welcome. A previous
// connection is closed with 4503. It fails on an ended session.
func (s *session) attach(c *conn, resumed bool) bool {
	welcome := protocol.Welcome{
		SessionID:      s.id,
		ResumeToken:    s.gw.tokens.sign(s.id, s.user),
		Resumed:        resumed,
		Gateway:        s.gw.cfg.ID,
		PingIntervalMs: s.gw.cfg.PingInterval.Milliseconds(),
		Limits:         protocol.Limits{MaxFrameBytes: s.gw.cfg.MaxFrameBytes, MaxInFlight: s.gw.cfg.MaxInFlight},
		User:           s.user,
	}
	if ms := expiresInMs(c.ident.Expires); ms > 0 {
		welcome.ExpiresInMs = ms
		welcome.RefreshGraceMs = s.gw.cfg.Auth.RefreshGrace.Milliseconds()
	}
	payload, _ := json.Marshal(welcome)
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return false
	}
	old := s.conn
	s.conn = c
	s.ident = c.ident
	if old != nil {
		// The old connection's requests cannot be finished on it; the client
		// re-sends them with "after".
		s.loseRequestsLocked()
	}
	if s.expiry != nil {
		s.expiry.Stop()
		s.expiry = nil
	}
	c.enqueue(protocol.AppendServerFrame(nil, protocol.TypeWelcome, "", 0, payload, ""))
	s.mu.Unlock()
	if old != nil {
		old.close(protocol.CloseSessionResumed, "session resumed on another connection")
	}
	c.logger().Info("session opened", "session", s.id, "resumed", resumed)
	return true
}

// detach is called when c ends. A normal close (1000) ends the session;
// otherwise it is kept for SessionRetention, awaiting a resume.
func (s *session) detach(c *conn, normal bool) {
	s.mu.Lock()
	if s.conn != c {
		s.mu.Unlock()
		return
	}
	s.conn = nil
	if !normal {
		s.loseRequestsLocked()
	}
	if !normal && !s.ended {
		s.expiry = time.AfterFunc(s.gw.cfg.SessionRetention, s.end)
	}
	s.mu.Unlock()
	if normal {
		s.end()
	}
}

// loseRequestsLocked deals with the requests of a connection that is gone:
// core mode interrupts them; durable mode holds them, running, until the
// client re-sends them.
func (s *session) loseRequestsLocked() {
	if s.gw.store != nil {
		s.holdLocked()
	} else {
		s.interruptLocked()
	}
}

// end ends the session: its requests are cancelled, its subscriptions
// dropped, its record deleted. Safe to call more than once.
func (s *session) end() { s.drop(true) }

// release lets go of a session that lives on elsewhere (durable mode, or a
// takeover): its subscriptions are dropped but its requests keep running on
// the workers, their events stored for whichever gateway resumes it.
func (s *session) release() { s.drop(false) }

func (s *session) drop(end bool) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	if end || s.gw.store == nil {
		s.interruptLocked()
	} else {
		for _, r := range s.requests {
			r.handedOver = true
			s.endLocked(r, outcomeHandedOver)
		}
	}
	if s.expiry != nil {
		s.expiry.Stop()
	}
	subs := s.subs
	s.subs = nil
	s.mu.Unlock()
	for _, sub := range subs {
		s.gw.subs.unsubscribe(sub)
	}
	g := s.gw
	g.mu.Lock()
	if g.sessions[s.id] == s {
		delete(g.sessions, s.id)
	}
	g.mu.Unlock()
	if s.user != "" {
		g.removeUserSession(s)
	}
	g.metrics.sessions.Dec()
	if end && g.store != nil {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		if err := g.store.forgetSession(ctx, s.id); err != nil {
			g.log.Warn("session record not deleted: it expires with the retention", "session", s.id, "err", err)
		}
	}
}

// onTakeover hands the session over to another gateway that is resuming it:
// the local connection, if any, is closed with 4503 and the session ended
// here.
func (s *session) onTakeover(m *nats.Msg) {
	s.mu.Lock()
	c := s.conn
	ended := s.ended
	s.mu.Unlock()
	if ended {
		return // let the requester see no answer rather than a stale one
	}
	if c != nil {
		c.close(protocol.CloseSessionResumed, "session resumed on another gateway")
	}
	s.release()
	reply, _ := json.Marshal(takeoverReply{User: s.user})
	if err := m.Respond(reply); err != nil {
		s.gw.log.Warn("takeover reply failed", "session", s.id, "err", err)
	}
}

// deliver queues a frame for the session's connection, if it has one.
func (s *session) deliver(frame []byte) {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c != nil {
		c.enqueue(frame)
	}
}

// onPush delivers a push to this session.
func (s *session) onPush(m *nats.Msg) {
	if frame, ok := s.gw.pushFrame(m); ok {
		s.deliver(frame)
	}
}

// onPushAll delivers a push to every session of this gateway.
func (g *Gateway) onPushAll(m *nats.Msg) {
	frame, ok := g.pushFrame(m)
	if !ok {
		return
	}
	for _, s := range g.sessionList() {
		s.deliver(frame)
	}
}

// pushFrame turns a push message into a frame, or rejects it.
func (g *Gateway) pushFrame(m *nats.Msg) ([]byte, bool) {
	typ := m.Header.Get(subjects.HeaderType)
	if err := subjects.ValidatePushType(typ); err != nil {
		g.log.Warn("push dropped: bad "+subjects.HeaderType, "subject", m.Subject, "err", err)
		return nil, false
	}
	payload := m.Data
	if len(payload) > 0 && !json.Valid(payload) {
		g.log.Warn("push dropped: payload is not JSON", "subject", m.Subject, "type", typ)
		return nil, false
	}
	g.metrics.pushes.Inc()
	return protocol.AppendServerFrame(nil, typ, "", 0, payload, ""), true
}

func (g *Gateway) addUserSession(s *session) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	us := g.users[s.user]
	if us == nil {
		us = &userSubscription{sessions: make(map[*session]struct{})}
		sub, err := g.subs.subscribe(g.nc, g.space.PushUser(s.user), "user "+s.user, func(m *nats.Msg) { g.onPushUser(us, m) })
		if err != nil {
			return fmt.Errorf("gateway: subscribe user pushes: %w", err)
		}
		us.sub = sub
		g.users[s.user] = us
	}
	us.sessions[s] = struct{}{}
	return nil
}

func (g *Gateway) removeUserSession(s *session) {
	g.mu.Lock()
	defer g.mu.Unlock()
	us := g.users[s.user]
	if us == nil {
		return
	}
	delete(us.sessions, s)
	if len(us.sessions) == 0 {
		g.subs.unsubscribe(us.sub)
		delete(g.users, s.user)
	}
}

func (g *Gateway) onPushUser(us *userSubscription, m *nats.Msg) {
	frame, ok := g.pushFrame(m)
	if !ok {
		return
	}
	g.mu.Lock()
	sessions := make([]*session, 0, len(us.sessions))
	for s := range us.sessions {
		sessions = append(sessions, s)
	}
	g.mu.Unlock()
	for _, s := range sessions {
		s.deliver(frame)
	}
}
