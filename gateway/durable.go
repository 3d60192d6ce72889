package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

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
	groups   replayGroups
	// consumerIdle is how long the server keeps a replay's consumer once
	// nobody pulls from it; 0 means replayConsumerIdle.
	consumerIdle time.Duration
}

// replayConsumerIdle is how long a replay's stopped consumer stays on the
// server. nats.go's default for an ordered consumer is five minutes: after
// a gateway's death, hundreds of stopped consumers stayed that long, each
// checked against every new message. A running replay always has a pull
// waiting, so it is never idle.
const replayConsumerIdle = 5 * time.Second

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
	// Claim tells this claim from another's, so that a claim whose first
	// try's answer was lost is known as its own when tried again.
	Claim string `json:"claim"`
	// ClosedAt is the seq of the :error with which a gateway ended the
	// request (timeout, cancel…), recorded before that :error is stored
	// and before the worker is told to stop; 0 while open. A replay drops
	// the worker's events from it on, whatever their order in the store,
	// as the live delivery did.
	ClosedAt uint64 `json:"closedAt,omitempty"`
}

// claim records that request (session, id) runs. It returns false if it was
// already recorded: it ran, or runs, elsewhere or before; closedAt is then
// the record's. token is unique to this claim; a claim tried again after an
// unanswered try passes the same token, and finds the record its first try
// made its own.
func (st *store) claim(ctx context.Context, session, id, typeName, gateway, token string) (run bool, closedAt uint64, err error) {
	v, _ := json.Marshal(ledgerEntry{Type: typeName, Gateway: gateway, Claim: token})
	key := requestKey(session, id)
	_, err = st.requests.Create(ctx, key, v)
	switch {
	case err == nil:
		return true, 0, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		entry, _, err := st.entry(ctx, key)
		if err != nil {
			return false, 0, err
		}
		if entry.Claim == token {
			return true, 0, nil
		}
		return false, entry.ClosedAt, nil
	default:
		return false, 0, err
	}
}

// known reports whether request (session, id) is in the ledger, and where a
// gateway closed it.
func (st *store) known(ctx context.Context, session, id string) (known bool, closedAt uint64, err error) {
	entry, _, err := st.entry(ctx, requestKey(session, id))
	switch {
	case err == nil:
		return true, entry.ClosedAt, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, 0, nil
	default:
		return false, 0, err
	}
}

// entry reads a ledger record and its revision.
func (st *store) entry(ctx context.Context, key string) (ledgerEntry, uint64, error) {
	var entry ledgerEntry
	e, err := st.requests.Get(ctx, key)
	if err != nil {
		return entry, 0, err
	}
	_ = json.Unmarshal(e.Value(), &entry) // written by gateways only
	return entry, e.Revision(), nil
}

// markClosed records in the ledger that a gateway ended request (session,
// id) with its :error of seq closedAt. The lowest closedAt wins.
func (st *store) markClosed(ctx context.Context, session, id string, closedAt uint64) error {
	key := requestKey(session, id)
	for {
		entry, rev, err := st.entry(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil // expired: no replay will ask
		}
		if err != nil {
			return err
		}
		if entry.ClosedAt != 0 && entry.ClosedAt <= closedAt {
			return nil
		}
		entry.ClosedAt = closedAt
		v, _ := json.Marshal(entry)
		_, err = st.requests.Update(ctx, key, v, rev)
		if !errors.Is(err, jetstream.ErrKeyExists) { // else changed meanwhile: read it again
			return err
		}
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
// called. deliver runs on one goroutine. If the replay ends before stop (its
// consumer's reset after a NATS failure failed for good, or it left its
// group: errReplaySlow), ended is called with the error.
//
// Replays that start together share a consumer (replaygroup.go). A replay
// that left its group for a slow client runs alone, and waits for pace
// before each event, so that it goes at its client's speed.
func (st *store) replay(ctx context.Context, session, id string, pace func(context.Context) error, deliver func(jetstream.Msg), ended func(error)) (stop func(), err error) {
	key := replayKey{session, id}
	if !st.groups.takeSolo(key) {
		return st.replayGrouped(ctx, key, pace, deliver, ended)
	}
	return st.consume(ctx, []string{st.space.Reply(session, id) + ".>"}, pace, deliver, ended)
}

// consume reads the stored messages on filters, from the first, through an
// ordered consumer, and hands each to deliver, on one goroutine, until stop
// is called; with pace, it waits for pace before each. If the consumer fails
// before stop, ended is called with the error.
func (st *store) consume(ctx context.Context, filters []string, pace func(context.Context) error, deliver func(jetstream.Msg), ended func(error)) (stop func(), err error) {
	idle := st.consumerIdle
	if idle == 0 {
		idle = replayConsumerIdle
	}
	cons, err := st.js.OrderedConsumer(ctx, st.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    filters,
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: idle,
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
				if runCtx.Err() == nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					ended(err)
				}
				return
			}
			if pace != nil && pace(runCtx) != nil {
				return
			}
			deliver(m)
		}
	}()
	return func() { cancel(); it.Stop() }, nil
}

// The store is a set of JetStream streams replicated over the NATS
// cluster. When a NATS node dies, the streams it led answer nothing until
// their replicas elect a new leader, a matter of seconds: a call to the
// store that goes unanswered is tried again, until storeBudget.
const (
	storeTimeout    = 2 * time.Second  // one try
	storeBudget     = 20 * time.Second // every try, from the first
	storeMaxBackoff = time.Second      // the longest pause between tries
)

// retry calls try until it succeeds, fails for good (errExpired), or
// storeBudget is spent; each try gets storeTimeout. give, if not nil, stops
// the tries when it returns true, with errGivenUp.
func retry(what string, log func() *slog.Logger, give func() bool, try func(ctx context.Context) error) error {
	deadline := time.Now().Add(storeBudget)
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		err := try(ctx)
		cancel()
		if err == nil || errors.Is(err, errExpired) {
			return err
		}
		if time.Now().Add(backoff).After(deadline) {
			return err
		}
		log().Warn(what+": trying again", "attempt", attempt, "err", err)
		time.Sleep(backoff)
		if give != nil && give() {
			return errGivenUp
		}
		backoff = min(2*backoff, storeMaxBackoff)
	}
}

// errGivenUp: a retry whose caller no longer needs it.
var errGivenUp = errors.New("given up")

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

// claimAndRun decides, in durable mode and off the connection's reader,
// what request r does, then does it: run (a new (session, id), claimed in
// the ledger: msg is published), replay (one the ledger knows: re-sent after
// a resume, or sent again), or end with :error{interrupted} (re-sent with
// after > 0 but no longer known: it ran too long ago). A store that does not
// answer is tried again for storeBudget; then the request ends with
// :error{internal}.
func (s *session) claimAndRun(r *request, resent bool, after uint64, msg *nats.Msg) {
	defer s.gw.bg.Done()
	g := s.gw
	st := g.store
	token := nuid.Next()
	log := func() *slog.Logger { return s.rlog(r) } // built only if a line is written
	var run bool
	var closedAt uint64
	err := retry("request ledger", log, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.requests[r.id] != r && !r.handedOver
	}, func(ctx context.Context) error {
		if resent {
			known, at, err := st.known(ctx, s.id, r.id)
			closedAt = at
			if err != nil || known {
				run = false
				return err
			}
			if after > 0 {
				return errExpired
			}
			// Never seen: sent before the drop, it never reached a gateway.
		}
		var err error
		run, closedAt, err = st.claim(ctx, s.id, r.id, r.typeName, g.cfg.ID, token)
		return err
	})

	s.mu.Lock()
	defer s.mu.Unlock()
	r.claiming = false
	current := s.requests[r.id] == r
	switch {
	case errors.Is(err, errGivenUp):
	case err == nil && run && r.cancelled:
		s.endSendSpan(r, nil)
		if current {
			s.failLocked(r, outcomeCancelled, protocol.Errorf(protocol.CodeCancelled, "cancelled by the client"))
		}
	case err == nil && run && (current || r.handedOver):
		// Handed over: the client resumes elsewhere and gets the events
		// from the store.
		s.publishLocked(r, msg)
	case !current:
	case errors.Is(err, errExpired):
		r.durable = false // nothing of it is kept: the error is the client's alone
		s.failLocked(r, outcomeInterrupted, protocol.Errorf(protocol.CodeInterrupted,
			"the request's events are no longer kept (retention %s)", st.cfg.Retention))
	case err != nil:
		log().Error("request ledger unavailable", "err", err)
		r.durable = false
		s.failLocked(r, outcomeInternal, protocol.Errorf(protocol.CodeInternal, "the event store is unavailable"))
	default: // known: it ran, or runs, elsewhere or before
		s.endSendSpan(r, nil)
		if closedAt != 0 && (r.closedAt == 0 || closedAt < r.closedAt) {
			r.closedAt = closedAt // a gateway ended it: the worker's later events are not the client's
		}
		if !r.held {
			s.replayLocked(r)
		}
		if r.cancelled {
			s.closeLocked(r, outcomeCancelled, protocol.Errorf(protocol.CodeCancelled, "cancelled by the client"))
		}
	}
}

// resendLocked handles a request the client re-sent after resuming while it
// still runs on this gateway: after is what the client has; the rest comes
// from the store, then live.
func (s *session) resendLocked(r *request, after uint64) {
	r.held = false
	r.sent = after
	if !r.claiming { // else the claim starts the replay
		s.replayLocked(r)
	}
}

// replayLocked starts replaying r's stored events after r.sent, merged in
// seq order with its live events, until a live event comes in turn or its
// :finish is sent. A replay already running is replaced.
func (s *session) replayLocked(r *request) {
	if r.stopReplay != nil {
		go r.stopReplay()
		r.stopReplay = nil
	}
	r.replaying = true
	r.replayGen++
	gen := r.replayGen
	s.rlog(r).Debug("replaying from the store", "after", r.sent)
	g := s.gw
	g.bg.Add(1)
	go func() {
		defer g.bg.Done()
		current := func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.requests[r.id] == r && r.replayGen == gen
		}
		var stop func()
		err := retry("replay not started", func() *slog.Logger { return s.rlog(r) },
			func() bool { return !current() },
			func(ctx context.Context) (err error) {
				stop, err = g.store.replay(ctx, s.id, r.id, s.awaitRoom,
					func(m jetstream.Msg) { s.onStored(r, gen, m) },
					func(err error) { s.replayEnded(r, gen, err) })
				return err
			})
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case s.requests[r.id] != r || r.replayGen != gen:
			if err == nil {
				go stop()
			}
		case err != nil:
			s.rlog(r).Error("replay failed", "err", err)
			s.interruptReplayLocked(r)
		default:
			r.stopReplay = stop
		}
	}()
}

// maxAhead bounds the live events of a request kept while its replay is
// behind them (request.ahead): enough for the seconds a replay can take to
// start under load. Their frames are bounded too, to a quarter of the
// connection's queue (keepAhead), so that sending them at once, when the
// replay, paced to leave half the queue free, reaches them, cannot close
// the client as too slow. Past either bound, the replay brings the rest.
const maxAhead = 1024

// frameOverhead is about what an event's frame adds to its payload: type,
// id, seq and trace fields.
const frameOverhead = 128

// keepAhead keeps live event ev, ahead of what the replay has sent, in seq
// order; it drops it when the bounds are reached or it is kept already.
func (s *session) keepAhead(r *request, ev event) {
	i, found := slices.BinarySearchFunc(r.ahead, ev.seq, func(e event, seq uint64) int { return cmp.Compare(e.seq, seq) })
	size := len(ev.payload) + frameOverhead
	if found || len(r.ahead) >= maxAhead || r.aheadBytes+size > s.gw.cfg.MaxQueueBytes/4 {
		return
	}
	r.ahead = slices.Insert(r.ahead, i, ev)
	r.aheadBytes += size
}

// sendAheadLocked sends the live events kept ahead of r's replay once it has
// reached them: the first one, in turn, ends the replay. One still ahead of
// a gap starts a replay again (deliverLocked).
func (s *session) sendAheadLocked(r *request) {
	if len(r.ahead) == 0 || r.ahead[0].seq > r.sent+1 {
		return
	}
	ahead := r.ahead
	r.ahead, r.aheadBytes = nil, 0
	for _, ev := range ahead {
		if s.requests[r.id] != r || r.held {
			return
		}
		s.deliverLocked(r, ev)
	}
}

// replayEnded starts r's replay again, from what its client has, when the
// replay's consumer failed while still needed.
func (s *session) replayEnded(r *request, gen int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.requests[r.id] != r || r.replayGen != gen || r.held {
		return
	}
	if errors.Is(err, errReplaySlow) {
		s.rlog(r).Debug("replay goes on alone, at its client's speed", "sent", r.sent)
	} else {
		s.rlog(r).Warn("replay consumer failed: starting it again", "sent", r.sent, "err", err)
	}
	s.replayLocked(r)
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
	s.eventLocked(r, tail, m.Headers(), m.Data(), m.Subject(), true)
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
	s.sendMadeLocked(r, event{seq: r.sent + 1, suffix: protocol.SuffixError, payload: e.Payload(), origin: true})
	s.sendMadeLocked(r, event{seq: r.sent + 2, suffix: protocol.SuffixFinish, origin: true})
	s.endLocked(r, outcomeInterrupted)
}

// storeLocked stores the :error (of seq closedAt) and :finish with which
// the gateway ends r, beside the worker's events, so the client gets them
// wherever it resumes. In order, each step tried again until the store
// acknowledges it: the ledger records closedAt, the events are published to
// r's event subject, and then, if stopWorker, the worker is told to stop.
// So the worker's answer to the stop (a :error{cancelled} of its own, say)
// reaches the store only after the ledger says to drop it.
func (s *session) storeLocked(r *request, closedAt uint64, stopWorker bool, events ...storedEvent) {
	g := s.gw
	msgs := make([]*nats.Msg, len(events))
	for i, e := range events {
		msgs[i] = &nats.Msg{
			Subject: g.space.Reply(s.id, r.id) + "." + r.typeTokens + "." + e.suffix,
			Header: nats.Header{
				subjects.HeaderID:     {r.id},
				subjects.HeaderSeq:    {strconv.FormatUint(e.seq, 10)},
				subjects.HeaderOrigin: {subjects.OriginGateway},
			},
			Data: e.payload,
		}
	}
	log := func() *slog.Logger { return s.rlog(r) }
	cancel := g.space.Cancel(s.id, r.id)
	g.bg.Add(1)
	go func() {
		defer g.bg.Done()
		if stopWorker {
			defer func() {
				if err := g.nc.Publish(cancel, nil); err != nil {
					log().Warn("publish cancel failed", "err", err)
				}
			}()
		}
		err := retry("record the close in the ledger", log, nil, func(ctx context.Context) error {
			return g.store.markClosed(ctx, s.id, r.id, closedAt)
		})
		if err != nil {
			log().Error("close not recorded: a replay may show the worker's events after the gateway's :error", "err", err)
		}
		for _, m := range msgs {
			err := retry("store gateway event", log, nil, func(ctx context.Context) error {
				_, err := g.store.js.PublishMsg(ctx, m)
				return err
			})
			if err != nil {
				log().Error("gateway event not stored: a client resuming elsewhere misses it", "err", err)
				return
			}
		}
	}()
}

// storedEvent is an event the gateway made, to store.
type storedEvent struct {
	suffix  string
	seq     uint64
	payload []byte
}

// holdLocked stops delivering r's events when its client goes: they are in
// the store, and the client gets them when it re-sends r after resuming.
func (s *session) holdLocked() {
	for _, r := range s.requests {
		r.held = true
		r.ahead, r.aheadBytes = nil, 0 // the client re-sends it with what it has
		s.endReplayLocked(r)
	}
}

// endReplayLocked stops r's replay, if one runs or is starting: the client
// has every stored event up to the live ones (or gets them when it re-sends
// r). A replay's consumer reads every event stored after its position to
// find r's own, so it is kept only while the live events are ahead of what
// the client has; a later gap starts a new one (deliverLocked).
func (s *session) endReplayLocked(r *request) {
	r.replaying = false
	r.replayGen++ // a replay still starting stops itself
	if r.stopReplay != nil {
		go r.stopReplay()
		r.stopReplay = nil
	}
}
