package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
)

// Errors returned by the SDK.
var (
	ErrStarted       = errors.New("workers: already started")
	ErrClosed        = errors.New("workers: shut down")
	ErrDuplicate     = errors.New("workers: route already registered")
	ErrFinished      = errors.New("workers: the request has finished")
	ErrReservedEvent = errors.New("workers: the finish event is sent by the SDK")
)

// Config configures a Worker. The zero value of every field selects the
// documented default.
type Config struct {
	// Prefix is the NATS subject prefix. "" means "fabric".
	Prefix string
	// Queue is the NATS queue group. "" means the prefix, the group every
	// Fabric worker of every language joins.
	Queue string
	// MaxConcurrent bounds the handlers running at once; a worker at the
	// bound stops taking requests until one finishes. 0 means 1024.
	MaxConcurrent int
	// MaxDuration bounds one handler's run; its ctx is cancelled after it.
	// 0 means no bound (the gateway's inactivity timeout still applies).
	MaxDuration time.Duration
	// CallTimeout is the inactivity timeout of the requests handlers make
	// with Stream.Call: the longest wait for the callee's next event.
	// 0 means 30s.
	CallTimeout time.Duration
}

// DefaultMaxConcurrent is Config.MaxConcurrent's default.
const DefaultMaxConcurrent = 1024

// Option sets an optional dependency of a Worker.
type Option func(*Worker)

// WithLogger sets the worker's structured logger. The default is
// slog.Default().
func WithLogger(l *slog.Logger) Option { return func(w *Worker) { w.log = l } }

// Handler serves one route's requests. Most code uses [Handle] instead, which
// decodes params into a typed value.
type Handler interface {
	ServeFabric(ctx context.Context, req *Request, s *Stream) error
}

// HandlerFunc adapts a function to a [Handler].
type HandlerFunc func(ctx context.Context, req *Request, s *Stream) error

// ServeFabric calls f.
func (f HandlerFunc) ServeFabric(ctx context.Context, req *Request, s *Stream) error {
	return f(ctx, req, s)
}

var _ Handler = HandlerFunc(nil)

// Request is one request as a worker receives it.
type Request struct {
	Type    string // the route's typeName
	ID      string // the client's message id
	Session string // the client's session id
	User    string // the authenticated user id, "" when anonymous
	// Claims are the claims of the user's token that the gateway forwards
	// (its --jwt-forward-claims, or the connect hook's claims); nil when
	// none.
	Claims  map[string]string
	Payload []byte // the params as raw JSON ("null" when none)
	Header  nats.Header

	spanCtx trace.SpanContext // the process span's, for log lines
}

// Worker serves routes over NATS. Create it with [New], register routes with
// [Handle] or [Worker.HandleRaw], then [Worker.Start].
type Worker struct {
	nc    *nats.Conn
	cfg   Config
	space subjects.Space
	log   *slog.Logger

	metrics *metrics // nil without WithMetrics
	tracer  trace.Tracer

	baseCtx    context.Context
	cancelBase context.CancelFunc
	sem        chan struct{}
	handlers   sync.WaitGroup
	runners    *runners  // the goroutines handlers run on
	children   *children // requests made by handlers

	jsOnce sync.Once // the JetStream context of durable requests
	js     jetstream.JetStream
	jsErr  error

	mu        sync.Mutex
	routes    map[string]Handler
	subs      []*nats.Subscription
	cancelSub *nats.Subscription
	running   map[string]context.CancelFunc // by session + "." + id
	cancelled map[string]time.Time          // cancels that came before their request
	started   bool
	closed    bool

	shutdownOnce sync.Once
}

// New returns a worker that serves over nc. The caller owns nc and drains it
// after [Worker.Shutdown].
func New(nc *nats.Conn, cfg Config, opts ...Option) (*Worker, error) {
	space, err := subjects.NewSpace(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("workers: %w", err)
	}
	if cfg.Queue == "" {
		cfg.Queue = space.QueueGroup()
	}
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Worker{
		nc:         nc,
		cfg:        cfg,
		space:      space,
		log:        slog.Default(),
		baseCtx:    ctx,
		cancelBase: cancel,
		sem:        make(chan struct{}, cfg.MaxConcurrent),
		runners:    newRunners(),
		routes:     make(map[string]Handler),
		running:    make(map[string]context.CancelFunc),
		cancelled:  make(map[string]time.Time),
	}
	w.children = newChildren(w)
	for _, o := range opts {
		o(w)
	}
	w.tracerOrGlobal()
	return w, nil
}

// Handle registers a typed handler for route: the request's params are
// decoded into P (a decoding failure answers :error{bad_request}), and the R
// it returns without error is sent as the ":response" event. Call it before
// [Worker.Start].
func Handle[P, R any](w *Worker, route protocol.Route[P, R], h func(ctx context.Context, params P, s *Stream) (R, error)) error {
	return w.HandleRaw(route.Type(), HandlerFunc(func(ctx context.Context, req *Request, s *Stream) error {
		var params P
		if err := json.Unmarshal(req.Payload, &params); err != nil {
			return protocol.Errorf(protocol.CodeBadRequest, "invalid params for %s: %v", req.Type, err)
		}
		result, err := h(ctx, params, s)
		if err != nil {
			return err
		}
		return s.Respond(result)
	}))
}

// HandleRaw registers h for the route typeName. Call it before
// [Worker.Start].
func (w *Worker) HandleRaw(typeName string, h Handler) error {
	if err := subjects.ValidateRoute(typeName); err != nil {
		return fmt.Errorf("workers: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return ErrStarted
	}
	if _, dup := w.routes[typeName]; dup {
		return fmt.Errorf("%w: %s", ErrDuplicate, typeName)
	}
	w.routes[typeName] = h
	w.metrics.addRoute(typeName)
	return nil
}

// Start subscribes to the registered routes and to cancels.
func (w *Worker) Start() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.started {
		return ErrStarted
	}
	w.started = true
	var err error
	if w.cancelSub, err = w.nc.Subscribe(w.space.Cancels(), w.onCancel); err != nil {
		return fmt.Errorf("workers: subscribe cancels: %w", err)
	}
	for typeName, h := range w.routes {
		sub, err := w.nc.QueueSubscribe(w.space.Request(typeName), w.cfg.Queue, func(m *nats.Msg) { w.dispatch(typeName, h, m) })
		if err != nil {
			return fmt.Errorf("workers: subscribe %s: %w", typeName, err)
		}
		w.subs = append(w.subs, sub)
	}
	// Make sure the server has the subscriptions before the caller goes on.
	if err := w.nc.Flush(); err != nil {
		return fmt.Errorf("workers: flush subscriptions: %w", err)
	}
	w.log.Info("worker started", "routes", len(w.routes), "queue", w.cfg.Queue, "max_concurrent", w.cfg.MaxConcurrent)
	return nil
}

// dispatch runs on the route subscription's goroutine: it waits for a free
// handler slot (holding back further deliveries) and starts the handler.
func (w *Worker) dispatch(typeName string, h Handler, m *nats.Msg) {
	req := &Request{
		Type:    typeName,
		ID:      m.Header.Get(subjects.HeaderID),
		Session: m.Header.Get(subjects.HeaderSession),
		User:    m.Header.Get(subjects.HeaderUser),
		Claims:  decodeClaims(m.Header.Get(subjects.HeaderClaims)),
		Payload: m.Data,
		Header:  m.Header,
	}
	if len(req.Payload) == 0 {
		req.Payload = []byte("null")
	}
	if m.Reply == "" || subjects.ValidateID(req.ID) != nil {
		w.reqLog(req).Warn("request dropped: no reply subject or bad " + subjects.HeaderID)
		return
	}
	select {
	case w.sem <- struct{}{}:
	case <-w.baseCtx.Done():
		return // shutting down: the gateway times the request out
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if w.cfg.MaxDuration > 0 {
		ctx, cancel = context.WithTimeout(w.baseCtx, w.cfg.MaxDuration)
	} else {
		ctx, cancel = context.WithCancel(w.baseCtx)
	}
	key := req.Session + "." + req.ID
	w.mu.Lock()
	if _, early := w.cancelled[key]; early {
		delete(w.cancelled, key)
		cancel()
	}
	w.running[key] = cancel
	w.handlers.Add(1)
	w.mu.Unlock()
	ctx, span := w.startProcessSpan(ctx, req, m.Subject)
	s := w.newStream(m.Reply, req)
	s.span = span
	w.runners.run(func() {
		defer func() {
			w.mu.Lock()
			delete(w.running, key)
			w.mu.Unlock()
			cancel()
			<-w.sem
			w.handlers.Done()
		}()
		w.run(ctx, h, req, s)
	})
}

// run calls the handler and ends the request: an error becomes :error, and
// :finish always follows.
func (w *Worker) run(ctx context.Context, h Handler, req *Request, s *Stream) {
	start := time.Now()
	panicked := false
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				panicked = true
				w.reqLog(req).Error("handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				err = protocol.Errorf(protocol.CodeInternal, "internal error")
			}
		}()
		return h.ServeFabric(ctx, req, s)
	}()
	var e *protocol.Error
	if err != nil {
		e = w.wireError(ctx, err, req)
		if sendErr := s.Send(protocol.SuffixError, e); sendErr != nil && !errors.Is(sendErr, ErrFinished) {
			w.reqLog(req).Warn("send error event failed", "err", sendErr)
		}
	}
	if err := s.finish(); err != nil {
		w.reqLog(req).Warn("send finish failed", "err", err)
	}
	s.metrics.end(ctx, err, panicked)
	endProcessSpan(s.span, err, e)
	if s.out != nil && !s.out.wait(w.baseCtx.Done()) {
		w.reqLog(req).Warn("the event store does not have every event of the request")
	}
	if w.log.Enabled(ctx, slog.LevelDebug) {
		w.reqLog(req).Debug("request handled", "duration", time.Since(start).String(), "error", err)
	}
}

// reqLog returns the logger for one request's lines. It is built only when a
// line is written: most requests log nothing.
func (w *Worker) reqLog(req *Request) *slog.Logger {
	l := w.log.With("session", req.Session, "id", req.ID, "route", req.Type)
	if sc := req.spanCtx; sc.IsValid() {
		l = l.With("trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String())
	}
	return l
}

// wireError maps a handler's error to what the client sees: a
// *protocol.Error as it is, a cancelled or expired ctx as cancelled or
// timeout, and anything else as internal, with a generic message (the real
// error is logged, never sent).
func (w *Worker) wireError(ctx context.Context, err error, req *Request) *protocol.Error {
	if e, ok := protocol.AsError(err); ok {
		return e
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		if errors.Is(err, context.DeadlineExceeded) {
			return protocol.Errorf(protocol.CodeTimeout, "the handler ran out of time")
		}
		return protocol.Errorf(protocol.CodeCancelled, "cancelled")
	}
	w.reqLog(req).Error("handler failed", "err", err)
	return protocol.Errorf(protocol.CodeInternal, "internal error")
}

// onCancel cancels the ctx of a running handler.
func (w *Worker) onCancel(m *nats.Msg) {
	session, id, ok := w.space.ParseCancel(m.Subject)
	if !ok {
		return
	}
	key := session + "." + id
	w.mu.Lock()
	defer w.mu.Unlock()
	if cancel := w.running[key]; cancel != nil {
		cancel()
		return
	}
	// The cancel may overtake its request, which arrives on another
	// subscription: remember it briefly. Every worker sees every cancel,
	// so this map is pruned as it grows.
	now := time.Now()
	if len(w.cancelled) >= 1024 {
		for k, t := range w.cancelled {
			if now.Sub(t) > 5*time.Second {
				delete(w.cancelled, k)
			}
		}
		if len(w.cancelled) >= 4096 {
			clear(w.cancelled)
		}
	}
	w.cancelled[key] = now
}

// Shutdown stops taking requests, lets the handlers in flight finish until
// ctx is done, then cancels their ctx and waits for them to return. It is
// safe to call more than once. The caller then drains the NATS connection.
func (w *Worker) Shutdown(ctx context.Context) error {
	var err error
	w.shutdownOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		subs := w.subs
		w.mu.Unlock()
		for _, sub := range subs {
			_ = sub.Drain() // requests already delivered here still run
		}
		done := make(chan struct{})
		go func() {
			for _, sub := range subs {
				for sub.IsValid() && ctx.Err() == nil {
					time.Sleep(5 * time.Millisecond)
				}
			}
			w.handlers.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			err = ctx.Err()
			w.log.Warn("shutdown grace expired: cancelling handlers in flight")
		}
		w.cancelBase()
		<-done
		w.runners.stop()
		if w.cancelSub != nil {
			_ = w.cancelSub.Unsubscribe()
		}
		w.children.close()
		w.log.Info("worker stopped")
	})
	return err
}

// Target names the recipients of a push.
type Target struct {
	kind  targetKind
	value string
}

type targetKind int

const (
	targetSession targetKind = iota + 1
	targetUser
	targetAll
)

// ToSession targets one session.
func ToSession(sessionID string) Target { return Target{targetSession, sessionID} }

// ToUser targets every session of a user, on every gateway.
func ToUser(user string) Target { return Target{targetUser, user} }

// ToAll targets every session on every gateway.
func ToAll() Target { return Target{kind: targetAll} }

// Push sends a frame {"type": typ, "payload": payload} to target, at most
// once: sessions that are not connected miss it. typ is a route typeName or
// an event type "<typeName>:<suffix>" outside "sys".
func (w *Worker) Push(ctx context.Context, to Target, typ string, payload any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := subjects.ValidatePushType(typ); err != nil {
		return fmt.Errorf("workers: push: %w", err)
	}
	var subject string
	switch to.kind {
	case targetSession:
		if err := subjects.ValidateSessionID(to.value); err != nil {
			return fmt.Errorf("workers: push: %w", err)
		}
		subject = w.space.PushSession(to.value)
	case targetUser:
		if to.value == "" {
			return errors.New("workers: push: empty user id")
		}
		subject = w.space.PushUser(to.value)
	case targetAll:
		subject = w.space.PushAll()
	default:
		return errors.New("workers: push: no target")
	}
	data, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("workers: push: %w", err)
	}
	return w.nc.PublishMsg(&nats.Msg{Subject: subject, Header: nats.Header{subjects.HeaderType: {typ}}, Data: data})
}

// decodeClaims decodes a Fabric-Claims header: a JSON object of strings. A
// header that is not one yields nil: only a gateway sets it.
func decodeClaims(v string) map[string]string {
	if v == "" {
		return nil
	}
	var claims map[string]string
	if json.Unmarshal([]byte(v), &claims) != nil {
		return nil
	}
	return claims
}
