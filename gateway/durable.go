package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
)

// DurableConfig turns on durable mode (Config.Durable): every request's
// events are kept in a JetStream stream for Retention, so a client that
// resumes on any gateway, even after its gateway died, receives every
// remaining event exactly once; a request ledger runs each (session, id) at
// most once; and a session record lets any gateway resume a session whose
// gateway is gone. The zero value selects the defaults.
type DurableConfig struct {
	// Retention is how long events, ledger entries and session records are
	// kept. 0 means 10m.
	Retention time.Duration
	// Storage is "file" or "memory". "" means "file".
	Storage string
	// Replicas is the number of copies in a NATS cluster (1, 3 or 5).
	// 0 means 1.
	Replicas int
}

// DefaultRetention is DurableConfig.Retention's default.
const DefaultRetention = 10 * time.Minute

// store is durable mode's JetStream state: the events stream, the request
// ledger and the session records.
type store struct {
	js       jetstream.JetStream
	stream   string
	requests jetstream.KeyValue
	sessions jetstream.KeyValue
	cfg      DurableConfig
	space    subjects.Space
}

// storeNames returns the stream and bucket names for a prefix: "FABRIC_EVENTS",
// "FABRIC_REQUESTS", "FABRIC_SESSIONS" for "fabric".
func storeNames(prefix string) (stream, requests, sessions string) {
	base := strings.ToUpper(strings.ReplaceAll(prefix, ".", "_"))
	return base + "_EVENTS", base + "_REQUESTS", base + "_SESSIONS"
}

// openStore creates or updates the stream and buckets. Every gateway of a
// fabric does so at start with the same config; the last one wins.
func openStore(ctx context.Context, nc *nats.Conn, space subjects.Space, cfg DurableConfig) (*store, error) {
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	storage := jetstream.FileStorage
	switch cfg.Storage {
	case "", "file":
		cfg.Storage = "file"
	case "memory":
		storage = jetstream.MemoryStorage
	default:
		return nil, fmt.Errorf("%w: durable storage %q: want file or memory", ErrConfig, cfg.Storage)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("gateway: jetstream: %w", err)
	}
	streamName, requestsName, sessionsName := storeNames(space.Prefix())
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        streamName,
		Description: "Fabric request events, kept for resume",
		Subjects:    []string{space.SessionEvents("*")},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      cfg.Retention,
		Storage:     storage,
		Replicas:    cfg.Replicas,
		AllowDirect: true,
	}); err != nil {
		return nil, fmt.Errorf("gateway: durable: stream %s: %w", streamName, err)
	}
	st := &store{js: js, stream: streamName, cfg: cfg, space: space}
	for _, b := range []struct {
		kv   *jetstream.KeyValue
		name string
		desc string
	}{
		{&st.requests, requestsName, "Fabric request ledger: each (session, id) runs once"},
		{&st.sessions, sessionsName, "Fabric sessions, resumable on any gateway"},
	} {
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: b.name, Description: b.desc, TTL: cfg.Retention, Storage: storage, Replicas: cfg.Replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("gateway: durable: bucket %s: %w", b.name, err)
		}
		*b.kv = kv
	}
	return st, nil
}

func requestKey(session, id string) string { return session + "." + id }

// ledgerEntry is a request ledger's value.
type ledgerEntry struct {
	Type    string `json:"type"`
	Gateway string `json:"gateway"`
}

// claim records that request (session, id) runs. It returns false if it was
// already recorded: it ran, or runs, elsewhere or before.
func (st *store) claim(ctx context.Context, session, id, typeName, gateway string) (bool, error) {
	v, _ := json.Marshal(ledgerEntry{Type: typeName, Gateway: gateway})
	_, err := st.requests.Create(ctx, requestKey(session, id), v)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		return false, nil
	default:
		return false, err
	}
}

// known reports whether request (session, id) is in the ledger.
func (st *store) known(ctx context.Context, session, id string) (bool, error) {
	_, err := st.requests.Get(ctx, requestKey(session, id))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	default:
		return false, err
	}
}

// sessionRecord is a session record's value.
type sessionRecord struct {
	User string `json:"user"`
}

// saveSession records (or refreshes) a session, so any gateway can resume it.
func (st *store) saveSession(ctx context.Context, id, user string) error {
	v, _ := json.Marshal(sessionRecord{User: user})
	_, err := st.sessions.Put(ctx, id, v)
	return err
}

// lookupSession returns the user of a recorded session.
func (st *store) lookupSession(ctx context.Context, id string) (user string, ok bool, err error) {
	e, err := st.sessions.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	var rec sessionRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return "", false, fmt.Errorf("session record %s: %w", id, err)
	}
	return rec.User, true, nil
}

// forgetSession deletes an ended session's record.
func (st *store) forgetSession(ctx context.Context, id string) error {
	return st.sessions.Purge(ctx, id)
}

// replay delivers the stored events of request (session, id) to deliver, in
// the order they were stored, and then those stored later, until stop is
// called. Before each event it waits for pace, so that a replay goes at its
// client's speed. deliver runs on one goroutine.
func (st *store) replay(ctx context.Context, session, id string, pace func(context.Context) error, deliver func(jetstream.Msg)) (stop func(), err error) {
	cons, err := st.js.OrderedConsumer(ctx, st.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{st.space.Reply(session, id) + ".>"},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			m, err := it.Next()
			if err != nil {
				return // stopped
			}
			if pace(runCtx) != nil {
				return
			}
			deliver(m)
		}
	}()
	return func() { cancel(); it.Stop() }, nil
}

// storeTimeout bounds one call to the store on a client's behalf.
const storeTimeout = 5 * time.Second

// replayAttempts bounds the tries to start a replay.
const replayAttempts = 6

// watchReconnects replays, after the gateway's NATS connection comes back,
// every request it was delivering live: events published while it was
// away reached the store but not this gateway.
func (g *Gateway) watchReconnects(ctx context.Context) {
	changes := g.nc.StatusChanged(nats.CONNECTED)
	defer g.nc.RemoveStatusListener(changes)
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				return
			}
		}
		for _, s := range g.sessionList() {
			s.mu.Lock()
			for _, r := range s.requests {
				if r.durable && !r.held && !r.replaying {
					s.replayLocked(r)
				}
			}
			s.mu.Unlock()
		}
	}
}

// errExpired: a re-sent request the ledger no longer knows.
var errExpired = errors.New("expired")

// claim decides, in durable mode, what a request frame does: run it (a new
// (session, id), claimed in the ledger), or replay it (one the ledger
// knows: re-sent after a resume, or sent again). A re-sent request the
// ledger does not know ran too long ago: errExpired.
func (s *session) claim(f *protocol.ClientFrame) (run bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	st := s.gw.store
	if f.HasAfter {
		known, err := st.known(ctx, s.id, f.ID)
		if err != nil || known {
			return false, err
		}
		if f.After > 0 {
			return false, errExpired
		}
		// Never seen: it was sent before the drop but never reached a gateway.
	}
	return st.claim(ctx, s.id, f.ID, f.Type, s.gw.cfg.ID)
}

// resendLocked handles a request the client re-sent after resuming while it
// still runs on this gateway: after is what the client has; the rest comes
// from the store, then live.
func (s *session) resendLocked(r *request, after uint64) {
	r.held = false
	r.sent = after
	s.replayLocked(r)
}

// replayLocked starts replaying r's stored events after r.sent, merged in
// seq order with its live events, until its :finish is sent. A replay
// already running is replaced.
func (s *session) replayLocked(r *request) {
	if r.stopReplay != nil {
		go r.stopReplay()
		r.stopReplay = nil
	}
	r.replaying = true
	r.replayGen++
	gen := r.replayGen
	g := s.gw
	go func() {
		// The store may be electing a leader (a NATS node just died): retry
		// for a while before giving up on the request.
		var stop func()
		var err error
		for attempt := 0; attempt < replayAttempts; attempt++ {
			if attempt > 0 {
				time.Sleep(500 * time.Millisecond)
			}
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			stop, err = g.store.replay(ctx, s.id, r.id, s.awaitRoom, func(m jetstream.Msg) { s.onStored(r, gen, m) })
			cancel()
			s.mu.Lock()
			current := s.requests[r.id] == r && r.replayGen == gen
			s.mu.Unlock()
			if err == nil || !current {
				break
			}
			g.log.Warn("replay not started: retrying", "session", s.id, "id", r.id, "route", r.typeName, "attempt", attempt+1, "err", err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		current := s.requests[r.id] == r && r.replayGen == gen
		if err != nil {
			g.log.Error("replay failed", "session", s.id, "id", r.id, "route", r.typeName, "err", err)
			if current {
				s.interruptReplayLocked(r)
			}
			return
		}
		if !current {
			go stop()
			return
		}
		r.stopReplay = stop
	}()
}

// awaitRoom waits until the session's connection has room in its queue
// (half of MaxQueueBytes), so a replay does not close a slow client.
func (s *session) awaitRoom(ctx context.Context) error {
	for {
		s.mu.Lock()
		c := s.conn
		s.mu.Unlock()
		if c == nil || c.roomy() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// onStored receives one stored event of r from its replay.
func (s *session) onStored(r *request, gen int, m jetstream.Msg) {
	id, tail, ok := s.gw.space.ParseEvent(s.id, m.Subject())
	if !ok || id != r.id || tail == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.requests[r.id] != r || r.replayGen != gen || r.held {
		return
	}
	s.eventLocked(r, tail, m.Headers(), m.Data(), m.Subject())
}

// interruptReplayLocked ends r when some of its events are lost (core mode,
// or a store that lost them or is unreachable): the client gets
// :error{interrupted} and :finish after the last event it has, never a
// silent gap.
func (s *session) interruptReplayLocked(r *request) {
	if r.closedAt == 0 {
		s.stopWorkerLocked(r)
	}
	e := protocol.Errorf(protocol.CodeInterrupted, "some of the request's events were lost")
	s.sendLocked(eventFrame(r.typeName, protocol.SuffixError, r.id, r.sent+1, e.Payload()))
	s.sendLocked(eventFrame(r.typeName, protocol.SuffixFinish, r.id, r.sent+2, nil))
	s.endLocked(r, outcomeInterrupted)
}

// storeLocked publishes an event the gateway made for r to r's event
// subject, where the store keeps it beside the worker's.
func (s *session) storeLocked(r *request, suffix string, seq uint64, payload []byte) {
	g := s.gw
	msg := &nats.Msg{
		Subject: g.space.Reply(s.id, r.id) + "." + r.typeTokens + "." + suffix,
		Header: nats.Header{
			subjects.HeaderID:     {r.id},
			subjects.HeaderSeq:    {strconv.FormatUint(seq, 10)},
			subjects.HeaderOrigin: {subjects.OriginGateway},
		},
		Data: payload,
	}
	if err := g.nc.PublishMsg(msg); err != nil {
		g.log.Warn("store gateway event failed", "session", s.id, "id", r.id, "route", r.typeName, "err", err)
	}
}

// holdLocked stops delivering r's events when its client goes: they are in
// the store, and the client gets them when it re-sends r after resuming.
func (s *session) holdLocked() {
	for _, r := range s.requests {
		r.held = true
		r.replaying = false
		r.replayGen++ // a replay still starting stops itself
		if r.stopReplay != nil {
			go r.stopReplay()
			r.stopReplay = nil
		}
	}
}
