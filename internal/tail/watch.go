package tail

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/subjects"
)

// Defaults of [Config].
const (
	DefaultPayloadBytes = 120
	DefaultBuffer       = 1 << 16
	// DefaultRemember is how many requests a watcher remembers, to give a
	// cancel its route and an error its request.
	DefaultRemember = 4096
)

// subscribeTimeout bounds Start's wait for NATS to confirm the
// subscriptions when ctx has no deadline.
const subscribeTimeout = 10 * time.Second

// ErrConfig is returned (wrapped) by [Start] for an invalid [Config].
var ErrConfig = errors.New("tail: invalid config")

// Config configures a watcher.
type Config struct {
	// Prefix is the fabric's subject prefix. "" means "fabric".
	Prefix string
	// Filter selects what is reported. The zero Filter reports everything.
	Filter Filter
	// PayloadBytes caps a record's payload preview. 0 means
	// DefaultPayloadBytes (120); negative means no preview at all.
	PayloadBytes int
	// NoRequests leaves request subjects out: requests are then known only
	// from their events and cancels. Use it where a watcher must not change
	// what clients see: a subscription to a request subject turns a request
	// that no worker serves from no_responders into a timeout.
	NoRequests bool
	// RequestRoutes, when not empty, limits the request subjects subscribed
	// to to these routes' (the routes a fabric's workers serve, say), so
	// that a request for any other route still fails with no_responders.
	// Empty means every request subject, <prefix>.req.>.
	RequestRoutes []string
	// Buffer is how many messages wait for the callback before NATS drops
	// the next ones (see [Watcher.Dropped]). 0 means DefaultBuffer (65536).
	Buffer int
	// Remember is how many requests the watcher remembers, to give a cancel
	// its route and, with Filter.Errors, to report a request once it gets an
	// :error. 0 means DefaultRemember (4096).
	Remember int
}

// Filter selects records. Empty fields select everything.
type Filter struct {
	// Route keeps the records of this route's requests: requests, events,
	// the cancels of requests seen, and pushes whose type is of the route.
	Route string
	// Session keeps the records of one session: its requests, their
	// events and cancels, and the pushes to that session.
	Session string
	// ID keeps the requests with this message id, their events and
	// cancels.
	ID string
	// Errors keeps only :error events, each preceded by its request's
	// record when the watcher saw the request.
	Errors bool
}

// Watcher watches a fabric's subjects and reports each message as a
// [Record]. Stop it with [Watcher.Stop].
type Watcher struct {
	cfg    Config
	dec    decoder
	fn     func(Record)
	subs   []*nats.Subscription
	ch     chan *nats.Msg
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	routes *recent[string] // (session, id) → route, for cancels
	held   *recent[Record] // with Filter.Errors: requests not yet failed
}

// Start subscribes to the fabric's subjects on nc and calls fn with each
// record that passes cfg.Filter, from one goroutine, in the order nc
// received the messages. The subscriptions are in place on the server when
// Start returns; ctx bounds the wait for that (10s when it has no
// deadline). The watcher runs until Stop; nc stays the caller's.
func Start(ctx context.Context, nc *nats.Conn, cfg Config, fn func(Record)) (*Watcher, error) {
	space, err := subjects.NewSpace(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := cfg.Filter.validate(); err != nil {
		return nil, err
	}
	for _, r := range cfg.RequestRoutes {
		if err := subjects.ValidateTypeName(r); err != nil {
			return nil, fmt.Errorf("%w: request route %q: %w", ErrConfig, r, err)
		}
	}
	if cfg.PayloadBytes == 0 {
		cfg.PayloadBytes = DefaultPayloadBytes
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.Remember <= 0 {
		cfg.Remember = DefaultRemember
	}
	w := &Watcher{
		cfg:    cfg,
		dec:    decoder{space: space, payloadBytes: cfg.PayloadBytes},
		fn:     fn,
		ch:     make(chan *nats.Msg, cfg.Buffer),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		routes: newRecent[string](cfg.Remember),
		held:   newRecent[Record](cfg.Remember),
	}
	// One channel for every subscription keeps the order in which the
	// connection received the messages.
	for _, subject := range cfg.subjects(space) {
		sub, err := nc.ChanSubscribe(subject, w.ch)
		if err != nil {
			w.unsubscribe()
			return nil, fmt.Errorf("tail: subscribe to %s: %w", subject, err)
		}
		w.subs = append(w.subs, sub)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, subscribeTimeout)
		defer cancel()
	}
	if err := nc.FlushWithContext(ctx); err != nil {
		w.unsubscribe()
		return nil, fmt.Errorf("tail: subscribe: %w", err)
	}
	go w.loop()
	return w, nil
}

// Subjects returns the subjects the watcher subscribes to.
func (w *Watcher) Subjects() []string {
	out := make([]string, len(w.subs))
	for i, s := range w.subs {
		out[i] = s.Subject
	}
	return out
}

// Stop unsubscribes and waits for a callback in progress to return. Records
// not yet delivered are dropped. It is safe to call more than once.
func (w *Watcher) Stop() {
	w.once.Do(func() {
		w.unsubscribe()
		close(w.stop)
	})
	<-w.done
}

// Dropped returns how many messages NATS dropped because the callback fell
// more than Config.Buffer messages behind (a slow consumer).
func (w *Watcher) Dropped() int {
	n := 0
	for _, s := range w.subs {
		if d, err := s.Dropped(); err == nil {
			n += d
		}
	}
	return n
}

func (w *Watcher) unsubscribe() {
	for _, s := range w.subs {
		_ = s.Unsubscribe() // fails only when nc is closed: nothing to undo
	}
}

func (w *Watcher) loop() {
	defer close(w.done)
	for {
		select {
		case <-w.stop:
			return
		case m := <-w.ch:
			if rec, ok := w.dec.decode(m, time.Now()); ok {
				w.handle(rec)
			}
		}
	}
}

// handle remembers what rec tells of its request and reports it if the
// filter keeps it.
func (w *Watcher) handle(rec Record) {
	k := key{rec.Session, rec.ID}
	switch rec.Kind {
	case KindRequest, KindEvent:
		if rec.Session != "" && rec.ID != "" {
			w.routes.put(k, rec.Route)
		}
	case KindCancel:
		rec.Route, _ = w.routes.get(k)
	}
	f := &w.cfg.Filter
	if !f.match(&rec) {
		return
	}
	if !f.Errors {
		w.fn(rec)
		return
	}
	switch {
	case rec.Kind == KindRequest:
		w.held.put(k, rec)
	case rec.Failed():
		if req, ok := w.held.get(k); ok {
			w.held.delete(k)
			w.fn(req)
		}
		w.fn(rec)
	case rec.Finished():
		w.held.delete(k)
	}
}

// subjects returns what a watcher with cfg subscribes to: the narrowest
// subjects that hold everything its filter keeps.
func (cfg *Config) subjects(space subjects.Space) []string {
	f := &cfg.Filter
	var out []string
	if !cfg.NoRequests {
		routes := cfg.RequestRoutes
		if f.Route != "" {
			routes = nil
			if len(cfg.RequestRoutes) == 0 || contains(cfg.RequestRoutes, f.Route) {
				routes = []string{f.Route}
			}
		}
		switch {
		case f.Route == "" && len(routes) == 0:
			out = append(out, space.Requests())
		default:
			for _, r := range routes {
				out = append(out, space.Request(r))
			}
		}
	}
	out = append(out, space.EventWildcard(f.Session, f.ID, f.Route), space.CancelWildcard(f.Session, f.ID))
	switch {
	case f.ID != "" || f.Errors:
		// Pushes have no id and are never errors.
	case f.Session != "":
		out = append(out, space.PushSession(f.Session))
	default:
		out = append(out, space.Pushes())
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (f *Filter) validate() error {
	if f.Route != "" {
		if err := subjects.ValidateTypeName(f.Route); err != nil {
			return fmt.Errorf("%w: route: %w", ErrConfig, err)
		}
	}
	if f.Session != "" && subjects.ValidateID(f.Session) != nil {
		return fmt.Errorf("%w: session %q: not a session id", ErrConfig, f.Session)
	}
	if f.ID != "" {
		if err := subjects.ValidateID(f.ID); err != nil {
			return fmt.Errorf("%w: id: %w", ErrConfig, err)
		}
	}
	return nil
}

// match reports whether rec passes the filter's route, session and id (not
// Errors, which needs the request's history).
func (f *Filter) match(rec *Record) bool {
	return (f.Route == "" || rec.Route == f.Route) &&
		(f.Session == "" || rec.Session == f.Session) &&
		(f.ID == "" || rec.ID == f.ID)
}

// key names a request.
type key struct{ session, id string }

// recent is a map of at most max requests; adding one more forgets the one
// added longest ago.
type recent[V any] struct {
	max   int
	m     map[key]entry[V]
	queue []queued // oldest first
	gen   uint64
}

type entry[V any] struct {
	v   V
	gen uint64
}

type queued struct {
	k   key
	gen uint64
}

func newRecent[V any](max int) *recent[V] {
	return &recent[V]{max: max, m: make(map[key]entry[V])}
}

func (r *recent[V]) get(k key) (V, bool) {
	e, ok := r.m[k]
	return e.v, ok
}

func (r *recent[V]) put(k key, v V) {
	if e, ok := r.m[k]; ok {
		r.m[k] = entry[V]{v, e.gen}
		return
	}
	r.gen++
	r.m[k] = entry[V]{v, r.gen}
	r.queue = append(r.queue, queued{k, r.gen})
	for len(r.m) > r.max || len(r.queue) > 2*r.max {
		q := r.queue[0]
		r.queue = r.queue[1:]
		if e, ok := r.m[q.k]; ok && e.gen == q.gen {
			delete(r.m, q.k)
		}
	}
}

func (r *recent[V]) delete(k key) { delete(r.m, k) }
