package gateway

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// maxRouteLabels caps the distinct route label values: routes come from
// clients, and an unbounded label set would let one client exhaust memory.
const maxRouteLabels = 256

// Request outcomes, the "outcome" label of fabric_gateway_requests_total.
const (
	outcomeOK           = "ok"
	outcomeError        = "error" // the worker sent :error
	outcomeCancelled    = "cancelled"
	outcomeTimeout      = "timeout"
	outcomeNoResponders = "no_responders"
	outcomeInterrupted  = "interrupted"
	outcomeOverloaded   = "overloaded"
	outcomeTooLarge     = "too_large"
	outcomeRateLimited  = "rate_limited"
	outcomeInternal     = "internal"
	outcomeHandedOver   = "handed_over" // durable mode: the session went to another gateway, the request runs on
	outcomeForbidden    = "forbidden"   // the identity may not call the route: nothing was published
)

// Authentication results, the "result" label of
// fabric_gateway_authentications_total.
const (
	authOK          = "ok"
	authMissing     = "missing"     // no token
	authExpired     = "expired"     // a valid token, expired
	authRejected    = "rejected"    // any other bad credentials
	authWrongUser   = "wrong_user"  // a refresh token for another user
	authUnavailable = "unavailable" // the authenticator could not decide
	authUserLimit   = "user_limit"  // valid, but the user has MaxConnectionsPerUser connections
)

type metrics struct {
	connections     prometheus.Gauge
	parked          prometheus.Gauge
	sessions        prometheus.Gauge
	sessionsResumed prometheus.Counter
	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	events          prometheus.Counter
	pushes          prometheus.Counter
	bytesIn         prometheus.Counter
	bytesOut        prometheus.Counter
	closes          *prometheus.CounterVec
	badFrames       prometheus.Counter
	slowConsumers   prometheus.Counter
	rateLimited     prometheus.Counter
	refusedConns    *prometheus.CounterVec
	authentications *prometheus.CounterVec

	mu     sync.Mutex
	routes map[string]struct{}
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fabric_gateway_connections", Help: "Open WebSocket connections."}),
		parked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fabric_gateway_parked_connections", Help: "Open connections parked: their client idle for ParkAfter, they hold no goroutine."}),
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fabric_gateway_sessions", Help: "Sessions held, connected or awaiting resume."}),
		sessionsResumed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabric_gateway_sessions_resumed_total", Help: "Sessions resumed by a reconnecting client."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabric_gateway_requests_total", Help: "Requests ended, by route and outcome."},
			[]string{"route", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fabric_gateway_request_duration_seconds", Help: "Time from a request to its finish, by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"route"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabric_gateway_events_total", Help: "Request events queued for clients."}),
		pushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabric_gateway_pushes_total", Help: "Push frames queued for clients."}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabric_gateway_received_bytes_total", Help: "Bytes of frames read from clients."}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabric_gateway_sent_bytes_total", Help: "Bytes of frames written to clients."}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabric_gateway_closes_total", Help: "Connections closed, by close code."}, []string{"code"}),
		badFrames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabric_gateway_bad_frames_total", Help: "Client frames answered with sys/error."}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabric_gateway_slow_consumers_total", Help: "Connections closed because their outbound queue overflowed."}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fabric_gateway_rate_limited_frames_total", Help: "Client frames refused with rate_limited: over the connection's message rate."}),
		refusedConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabric_gateway_refused_connections_total", Help: "Upgrade requests refused before the upgrade, by reason: max_connections, connection_rate or draining (503), token_in_query (400)."},
			[]string{"reason"}),
		authentications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fabric_gateway_authentications_total", Help: "Authentications, by kind (hello, refresh) and result: ok, missing, expired, rejected, wrong_user, unavailable, user_limit."},
			[]string{"kind", "result"}),
		routes: make(map[string]struct{}),
	}
	reg.MustRegister(m.connections, m.parked, m.sessions, m.sessionsResumed, m.requests, m.duration,
		m.events, m.pushes, m.bytesIn, m.bytesOut, m.closes, m.badFrames, m.slowConsumers, m.rateLimited, m.refusedConns, m.authentications)
	for _, reason := range []string{"max_connections", "connection_rate", "draining", "token_in_query"} {
		m.refusedConns.WithLabelValues(reason) // exported at 0 from the start, for dashboards
	}
	return m
}

// routeLabel returns route, or "other" once maxRouteLabels distinct routes
// have been seen.
func (m *metrics) routeLabel(route string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.routes[route]; ok {
		return route
	}
	if len(m.routes) >= maxRouteLabels {
		return "other"
	}
	m.routes[route] = struct{}{}
	return route
}

func (m *metrics) closed(code int) { m.closes.WithLabelValues(strconv.Itoa(code)).Inc() }
