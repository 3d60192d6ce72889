package gateway

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
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
	// for two intervals is closed. 0 means 25s.
	PingInterval time.Duration
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
	// may connect from; "*" allows any. Empty means same-origin only.
	// Clients that send no Origin header are always allowed.
	AllowedOrigins []string
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
