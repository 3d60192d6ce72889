package gateway

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/seed82ac63c1/fabric/auth"
)

// Config configures a Gateway. The zero value of every field selects the
// documented default.
type Config struct {
	// ID names this gateway instance in sys/welcome and in logs.
	// "" means a random id.
	ID string
	// Prefix is the NATS subject prefix and the workers' queue group.
	// "" means "fabric".
	Prefix string
	// ResumeSecret signs resume tokens. Every gateway of a fabric must share
	// it for sessions to resume on any gateway. nil means a random secret:
	// sessions then resume only on this gateway.
	ResumeSecret []byte
	// HelloTimeout bounds the wait for the client's sys/hello. 0 means 10s.
	HelloTimeout time.Duration
	// PingInterval is the period of the gateway's sys/ping; a client silent
	// for two intervals is closed (a parked one, at the first ping after
	// two intervals). 0 means 25s.
	PingInterval time.Duration
	// ParkAfter is how long a connection's client may send nothing before
	// the connection parks: its reader goroutine ends, and the gateway's
	// poller (epoll, on Linux) starts another when the client sends again.
	// An idle connection then holds no goroutine and no stack. 0 means 1s;
	// negative never parks.
	ParkAfter time.Duration
	// RequestTimeout is a request's inactivity timeout: the longest wait for
	// the worker's next event. 0 means 30s.
	RequestTimeout time.Duration
	// MaxRequestDuration bounds a request's whole run, however often its
	// worker sends: after it, the request ends with :error{timeout} and the
	// worker is told to cancel. 0 means 1h.
	MaxRequestDuration time.Duration
	// DrainPeriod spreads a shutdown's 1001 closes over this long, so that
	// its clients do not all reconnect to the other gateways at once.
	// 0 means 2s; negative closes them all at once.
	DrainPeriod time.Duration
	// SessionRetention is how long a session outlives its connection, waiting
	// to be resumed. 0 means 2m.
	SessionRetention time.Duration
	// MaxFrameBytes bounds one inbound message. 0 means 1 MiB.
	MaxFrameBytes int64
	// MaxInFlight bounds the requests in flight on one connection. 0 means 128.
	MaxInFlight int
	// MessageRate bounds the frames a client sends on one connection, per
	// second, sustained; MessageBurst of them may come at once. A frame over
	// it is refused with rate_limited: a request gets :error and :finish and
	// is not published, any other frame gets sys/error. A client refused
	// more than MessageBurst frames within RateLimitWindow is closed with
	// 4002. 0 means 100; negative means unlimited.
	MessageRate float64
	// MessageBurst is the token bucket's depth of MessageRate. 0 means
	// twice MessageRate, and at least MaxInFlight: a resumed client re-sends
	// all its requests at once.
	MessageBurst int
	// MaxConnections bounds the connections this gateway serves at once;
	// beyond it, an upgrade is answered 503 with Retry-After before it
	// starts. 0 means 10000; negative means unlimited.
	MaxConnections int
	// ConnectionRate bounds the new connections this gateway accepts per
	// second, with a burst of one second's worth; beyond it, an upgrade is
	// answered 503 with Retry-After. 0 means 1000; negative means unlimited.
	ConnectionRate float64
	// MaxQueueBytes bounds a connection's outbound queue; a client that lets
	// it overflow is closed as a slow consumer. 0 means 4 MiB.
	MaxQueueBytes int
	// WriteTimeout bounds one write to a client. 0 means 10s.
	WriteTimeout time.Duration
	// TakeoverTimeout bounds the wait for another gateway to hand over a
	// session being resumed here. 0 means 2s.
	TakeoverTimeout time.Duration
	// HandoffTimeout is how long a shutting-down gateway keeps its sessions
	// after closing their connections with 1001, so that clients reconnecting
	// to another gateway can resume them there. Shutdown returns early once
	// every session has been taken over. 0 means 5s; negative disables it
	// (a lone gateway, as in fabric dev).
	HandoffTimeout time.Duration
	// Durable, if not nil, keeps request events in JetStream so that resumed
	// sessions lose nothing (see DurableConfig). nil is core mode: a request
	// in flight when its connection drops is interrupted.
	Durable *DurableConfig
	// AllowedOrigins lists the Origin values (scheme://host[:port]) browsers
	// may connect from, each compared whole: scheme, host and port;
	// "scheme://host:*" allows any port of the host, and "*" any origin.
	// Empty means same-origin only (the Origin's host is the request's
	// Host). Clients that send no Origin header (not browsers) are always
	// allowed: the check protects users' browsers from cross-site
	// WebSocket hijacking, not the gateway from other clients.
	AllowedOrigins []string
	// Auth, if not nil, requires every client to authenticate (see
	// AuthConfig). nil accepts anonymous sessions.
	Auth *AuthConfig
}

// AuthConfig configures authentication and per-route authorization.
//
// A client presents a token in sys/hello (browsers) or in the upgrade
// request's "Authorization: Bearer" header; never in the query string. A
// client without valid credentials is closed with 4502. The identity's user
// id goes to workers as Fabric-User, its forwarded claims as Fabric-Claims,
// and every request is checked against Policy.
type AuthConfig struct {
	// Authenticator checks a client's credentials: auth.JWT, auth.NATS (a
	// connect hook served by the application), or one of your own.
	// Required.
	Authenticator auth.Authenticator
	// Policy maps roles to the route patterns they allow; a request for a
	// route its identity may not call ends with :error{forbidden} and
	// :finish, and nothing is published. nil leaves the decision to the
	// identity's own route restriction (auth.Identity.Routes); with neither,
	// every route is allowed.
	Policy *auth.Policy
	// Timeout bounds one authentication (hello, resume or refresh). 0 means
	// 5s.
	Timeout time.Duration
	// RefreshGrace is how long after its token expires a connection may
	// still send sys/refresh before it is closed with 4504. 0 means 30s;
	// negative means none.
	RefreshGrace time.Duration
	// MaxConnectionsPerUser bounds one user's connections to this gateway;
	// a connection beyond it is closed with 4003. 0 means 100; negative
	// means unlimited.
	MaxConnectionsPerUser int
}

// Defaults of AuthConfig.
const (
	DefaultAuthTimeout           = 5 * time.Second
	DefaultRefreshGrace          = 30 * time.Second
	DefaultMaxConnectionsPerUser = 100
)

func (c AuthConfig) withDefaults() AuthConfig {
	setDuration(&c.Timeout, DefaultAuthTimeout)
	if c.RefreshGrace == 0 {
		c.RefreshGrace = DefaultRefreshGrace
	}
	c.RefreshGrace = max(c.RefreshGrace, 0)
	if c.MaxConnectionsPerUser == 0 {
		c.MaxConnectionsPerUser = DefaultMaxConnectionsPerUser
	}
	return c
}

// Option sets an optional dependency of a Gateway.
type Option func(*options)

type options struct {
	logger   *slog.Logger
	registry *prometheus.Registry
	tracer   trace.TracerProvider
}

// WithLogger sets the gateway's structured logger. The default is
// slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRegistry registers the gateway's Prometheus metrics on r and serves r on
// /metrics. The default is a private registry.
func WithRegistry(r *prometheus.Registry) Option { return func(o *options) { o.registry = r } }

// WithTracerProvider sets where the gateway's spans go. The default is
// OpenTelemetry's global provider, which traces nothing until an SDK is
// installed (cmd/fabric installs one when OTEL_* variables ask for it).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracer = tp }
}

// Defaults of Config.
const (
	DefaultHelloTimeout       = 10 * time.Second
	DefaultPingInterval       = 25 * time.Second
	DefaultParkAfter          = time.Second
	DefaultRequestTimeout     = 30 * time.Second
	DefaultMaxRequestDuration = time.Hour
	DefaultDrainPeriod        = 2 * time.Second
	DefaultSessionRetention   = 2 * time.Minute
	DefaultMaxFrameBytes      = 1 << 20
	DefaultMaxInFlight        = 128
	DefaultMessageRate        = 100
	DefaultMaxConnections     = 10000
	DefaultConnectionRate     = 1000
	DefaultMaxQueueBytes      = 4 << 20
	DefaultWriteTimeout       = 10 * time.Second
	DefaultTakeoverTimeout    = 2 * time.Second
	DefaultHandoffTimeout     = 5 * time.Second
)

func (c Config) withDefaults() Config {
	setDuration(&c.HelloTimeout, DefaultHelloTimeout)
	setDuration(&c.PingInterval, DefaultPingInterval)
	if c.ParkAfter == 0 {
		c.ParkAfter = DefaultParkAfter
	}
	setDuration(&c.RequestTimeout, DefaultRequestTimeout)
	setDuration(&c.MaxRequestDuration, DefaultMaxRequestDuration)
	if c.DrainPeriod == 0 {
		c.DrainPeriod = DefaultDrainPeriod
	}
	setDuration(&c.SessionRetention, DefaultSessionRetention)
	setDuration(&c.WriteTimeout, DefaultWriteTimeout)
	setDuration(&c.TakeoverTimeout, DefaultTakeoverTimeout)
	if c.HandoffTimeout == 0 {
		c.HandoffTimeout = DefaultHandoffTimeout
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = DefaultMaxQueueBytes
	}
	if c.MessageRate == 0 {
		c.MessageRate = DefaultMessageRate
	}
	if c.MessageBurst <= 0 {
		c.MessageBurst = max(int(2*c.MessageRate), c.MaxInFlight)
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.ConnectionRate == 0 {
		c.ConnectionRate = DefaultConnectionRate
	}
	if c.Auth != nil {
		a := c.Auth.withDefaults()
		c.Auth = &a
	}
	return c
}

// RateLimitWindow is the window of Config.MessageRate's close: a client
// refused more than MessageBurst frames within it is closed with 4002.
const RateLimitWindow = 10 * time.Second

func setDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}
