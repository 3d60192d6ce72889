package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
	"github.com/seed82ac63c1/fabric/tracing"
)

// Errors returned by the gateway.
var (
	ErrClosed = errors.New("gateway: closed")
	ErrConfig = errors.New("gateway: invalid config")
)

// Gateway serves Fabric's WebSocket endpoint. Create one with [New], mount
// [Gateway.Handler] on an HTTP server, and call [Gateway.Shutdown] to stop.
type Gateway struct {
	cfg         Config
	nc          *nats.Conn
	space       subjects.Space
	log         *slog.Logger
	tokens      tokenSigner
	upgrader    websocket.Upgrader
	metrics     *metrics
	tracer      trace.Tracer
	handler     http.Handler
	pushAll     *nats.Subscription
	subs        *dispatcher // delivers the sessions', users' and push.all subscriptions
	store       *store      // durable mode's; nil in core mode
	stopRefresh context.CancelFunc
	newConns    *rate.Limiter // ConnectionRate's; nil when unlimited

	mu       sync.Mutex
	sessions map[string]*session
	users    map[string]*userSubscription
	conns    map[*conn]struct{}
	// userConns counts each authenticated user's connections, for
	// AuthConfig.MaxConnectionsPerUser.
	userConns map[string]int
	admitted  int // connections upgrading or open: MaxConnections counts them
	draining  bool
	connWG    sync.WaitGroup // one per live connection's reader goroutine
	bg        sync.WaitGroup // durable mode's claims, replay starts and stores in flight

	shutdownOnce sync.Once

	// pollerOnce starts poller, which parked connections wait on, at the
	// first park; nil if it could not start.
	pollerOnce sync.Once
	poller     *poller
}

// New returns a gateway that publishes requests on nc. The caller owns nc and
// drains it after [Gateway.Shutdown].
func New(nc *nats.Conn, cfg Config, opts ...Option) (*Gateway, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg = cfg.withDefaults()
	space, err := subjects.NewSpace(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.ID == "" {
		cfg.ID = "gw-" + newSessionID()[:12]
	}
	if len(cfg.ResumeSecret) == 0 {
		cfg.ResumeSecret = randomSecret()
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.tracer == nil {
		o.tracer = otel.GetTracerProvider()
	}
	if o.registry == nil {
		o.registry = prometheus.NewRegistry()
		o.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	g := &Gateway{
		cfg:      cfg,
		nc:       nc,
		space:    space,
		log:      o.logger.With("gateway", cfg.ID),
		tokens:   tokenSigner{secret: cfg.ResumeSecret},
		metrics:  newMetrics(o.registry),
		tracer:   o.tracer.Tracer(tracing.TracerName),
		sessions: make(map[string]*session),
		users:    make(map[string]*userSubscription),
		conns:    make(map[*conn]struct{}),

		userConns: make(map[string]int),
	}
	g.upgrader = websocket.Upgrader{
		Subprotocols:      []string{protocol.Subprotocol},
		CheckOrigin:       g.checkOrigin,
		EnableCompression: false, // a read limit would not bound decompressed bytes
		// gorilla does the handshake only: the connection reads and
		// writes its frames itself (conn.go), so gorilla's buffers are
		// made as small as it allows and never used.
		ReadBufferSize:  128,
		WriteBufferSize: 128,
		WriteBufferPool: &sync.Pool{},
	}
	if cfg.Auth != nil {
		if cfg.Auth.Authenticator == nil {
			return nil, fmt.Errorf("%w: Auth needs an Authenticator", ErrConfig)
		}
		for _, kind := range []string{"hello", "refresh"} {
			for _, result := range []string{authOK, authMissing, authExpired, authRejected, authUnavailable} {
				g.metrics.authentications.WithLabelValues(kind, result) // exported at 0, for dashboards
			}
		}
	}
	if cfg.ConnectionRate > 0 {
		g.newConns = rate.NewLimiter(rate.Limit(cfg.ConnectionRate), max(1, int(cfg.ConnectionRate)))
	}
	if cfg.Durable != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		g.store, err = openStore(ctx, nc, space, *cfg.Durable)
		cancel()
		if err != nil {
			return nil, err
		}
		ctx, g.stopRefresh = context.WithCancel(context.Background())
		go g.refreshSessions(ctx)
		go g.watchReconnects(ctx)
	}
	g.subs = newDispatcher()
	g.pushAll, err = g.subs.subscribe(nc, space.PushAll(), "", g.onPushAll)
	if err != nil {
		g.subs.stop()
		if g.stopRefresh != nil {
			g.stopRefresh()
		}
		return nil, fmt.Errorf("gateway: subscribe %s: %w", space.PushAll(), err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", g.serveWS)
	mux.HandleFunc("GET /healthz", g.serveHealthz)
	mux.HandleFunc("GET /readyz", g.serveReadyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.registry, promhttp.HandlerOpts{}))
	g.handler = mux
	return g, nil
}

// ID returns the gateway's instance id.
func (g *Gateway) ID() string { return g.cfg.ID }

// Handler returns the gateway's HTTP handler: GET /ws, /healthz, /readyz and
// /metrics.
func (g *Gateway) Handler() http.Handler { return g.handler }

func (g *Gateway) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if len(g.cfg.AllowedOrigins) == 0 {
		u, err := url.Parse(origin)
		return err == nil && strings.EqualFold(u.Host, r.Host)
	}
	for _, allowed := range g.cfg.AllowedOrigins {
		if originMatches(strings.TrimSuffix(allowed, "/"), origin) {
			return true
		}
	}
	return false
}

// originMatches reports whether origin (scheme://host[:port]) is allowed by
// pattern: "*", an origin compared whole (scheme, host and port), or
// "scheme://host:*", any port of that scheme and host.
func originMatches(pattern, origin string) bool {
	if pattern == "*" || strings.EqualFold(pattern, origin) {
		return true
	}
	base, anyPort := strings.CutSuffix(pattern, ":*")
	switch {
	case !anyPort:
		return false
	case strings.EqualFold(base, origin):
		return true // the scheme's default port
	case len(origin) <= len(base)+1 || !strings.EqualFold(origin[:len(base)+1], base+":"):
		return false
	}
	for _, c := range origin[len(base)+1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (g *Gateway) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	if !g.nc.IsConnected() {
		http.Error(w, "nats: "+g.nc.Status().String(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (g *Gateway) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	g.mu.Lock()
	draining := g.draining
	g.mu.Unlock()
	switch {
	case draining:
		http.Error(w, "draining", http.StatusServiceUnavailable)
	case !g.nc.IsConnected():
		http.Error(w, "nats: "+g.nc.Status().String(), http.StatusServiceUnavailable)
	default:
		fmt.Fprintln(w, "ready")
	}
}

// refuseConn answers an upgrade request 503, before the upgrade, with
// Retry-After in seconds.
func (g *Gateway) refuseConn(w http.ResponseWriter, reason, message, retryAfter string) {
	g.metrics.refusedConns.WithLabelValues(reason).Inc()
	w.Header().Set("Retry-After", retryAfter)
	http.Error(w, message, http.StatusServiceUnavailable)
}

func (g *Gateway) serveWS(w http.ResponseWriter, r *http.Request) {
	if tokenInQuery(r) {
		g.metrics.refusedConns.WithLabelValues("token_in_query").Inc()
		http.Error(w, "a token in the URL is refused: it leaks into logs. Send it in sys/hello or an Authorization: Bearer header", http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	switch {
	case g.draining:
		g.mu.Unlock()
		g.refuseConn(w, "draining", "gateway is shutting down", "1")
		return
	case g.cfg.MaxConnections > 0 && g.admitted >= g.cfg.MaxConnections:
		g.mu.Unlock()
		g.refuseConn(w, "max_connections", "gateway is at its connection limit", "5")
		return
	case g.newConns != nil && !g.newConns.Allow():
		g.mu.Unlock()
		g.refuseConn(w, "connection_rate", "too many new connections: retry shortly", "1")
		return
	}
	g.admitted++
	g.connWG.Add(1)
	g.mu.Unlock()
	ws, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil { // the upgrader has answered the client
		g.mu.Lock()
		g.admitted--
		g.mu.Unlock()
		g.connWG.Done()
		g.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c := newConn(g, ws.NetConn(), bearerToken(r)) // gorilla's conn is done with: frames are read and written on the socket
	g.mu.Lock()
	g.conns[c] = struct{}{}
	g.mu.Unlock()
	g.metrics.connections.Inc()
	go c.serve() // its end calls connWG.Done
}

// parkingPoller returns the poller that parked connections wait on,
// starting it at the first call; nil when connections cannot park.
func (g *Gateway) parkingPoller() *poller {
	g.pollerOnce.Do(func() {
		p, err := newPoller()
		if err != nil {
			g.log.Warn("idle connections will keep their goroutines", "err", err)
			return
		}
		g.mu.Lock()
		g.poller = p
		g.mu.Unlock()
	})
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.poller
}

func (g *Gateway) removeConn(c *conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.admitted--
	g.mu.Unlock()
	g.metrics.connections.Dec()
}

// Shutdown stops the gateway in order: it refuses new connections, closes
// every client with 1001 (going away: reconnect at once, elsewhere), spread
// over DrainPeriod, waits for
// the connections to end, keeps the sessions for HandoffTimeout so that other
// gateways can take them over as their clients resume, then ends the rest and
// drops their subscriptions. ctx bounds the whole. It is safe to call more
// than once. The caller then drains the NATS connection.
func (g *Gateway) Shutdown(ctx context.Context) error {
	var err error
	g.shutdownOnce.Do(func() {
		g.mu.Lock()
		g.draining = true
		conns := make([]*conn, 0, len(g.conns))
		for c := range g.conns {
			conns = append(conns, c)
		}
		g.mu.Unlock()
		g.log.Info("gateway shutting down", "connections", len(conns))
		g.closeSpread(ctx, conns)
		done := make(chan struct{})
		go func() { g.connWG.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			g.mu.Lock()
			for c := range g.conns {
				c.abort()
			}
			g.mu.Unlock()
			<-done
			err = ctx.Err()
		}
		g.mu.Lock()
		p := g.poller
		g.mu.Unlock()
		if p != nil {
			p.close() // every connection has ended
		}
		g.awaitHandoff(ctx)
		for _, s := range g.sessionList() {
			if g.store != nil {
				s.release() // its requests run on; any gateway resumes it from the store
			} else {
				s.end()
			}
		}
		if g.stopRefresh != nil {
			g.stopRefresh()
		}
		g.subs.unsubscribe(g.pushAll)
		// Claims and stores in flight finish before the caller drains NATS:
		// a claimed request of a released session is still published.
		bgDone := make(chan struct{})
		go func() { g.bg.Wait(); close(bgDone) }()
		select {
		case <-bgDone:
		case <-ctx.Done():
			err = ctx.Err()
		}
		g.subs.stop()
	})
	return err
}

// closeSpread closes conns with 1001, evenly over DrainPeriod (or at once
// when ctx ends), so that their clients reconnect elsewhere a few at a time.
func (g *Gateway) closeSpread(ctx context.Context, conns []*conn) {
	var gap time.Duration
	if g.cfg.DrainPeriod > 0 && len(conns) > 1 {
		gap = g.cfg.DrainPeriod / time.Duration(len(conns))
	}
	tick := time.NewTicker(max(gap, time.Millisecond))
	defer tick.Stop()
	for i, c := range conns {
		if i > 0 && gap > 0 && ctx.Err() == nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
			}
		}
		c.close(protocol.CloseGoingAway, "gateway shutting down")
	}
}

// sessionList returns a snapshot of the sessions held.
func (g *Gateway) sessionList() []*session {
	g.mu.Lock()
	defer g.mu.Unlock()
	sessions := make([]*session, 0, len(g.sessions))
	for _, s := range g.sessions {
		sessions = append(sessions, s)
	}
	return sessions
}

// awaitHandoff waits until every session has been taken over by another
// gateway, HandoffTimeout passes, or ctx is done.
func (g *Gateway) awaitHandoff(ctx context.Context) {
	if g.cfg.HandoffTimeout < 0 {
		return
	}
	deadline := time.NewTimer(g.cfg.HandoffTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		g.mu.Lock()
		left := len(g.sessions)
		g.mu.Unlock()
		if left == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			g.log.Info("sessions not resumed elsewhere before shutdown", "sessions", left)
			return
		case <-tick.C:
		}
	}
}

// refreshSessions re-records this gateway's sessions well within the
// store's retention, so that a session living longer than the retention can
// still be resumed anywhere if this gateway dies.
func (g *Gateway) refreshSessions(ctx context.Context) {
	tick := time.NewTicker(g.store.cfg.Retention / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, s := range g.sessionList() {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if err := g.store.saveSession(sctx, s.id, s.user); err != nil && ctx.Err() == nil {
				g.log.Warn("refresh session record failed", "session", s.id, "err", err)
			}
			cancel()
		}
	}
}

// defaultTimeout bounds an I/O call whose ctx has no deadline.
func defaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}
