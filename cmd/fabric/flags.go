package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/seed82ac63c1/fabric/gateway"
)

// newFlagSet returns a flag set whose usage names the command.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("fabric "+name, flag.ContinueOnError)
	return fs
}

// parse parses args, letting positional arguments and flags interleave,
// then fills every flag not given from its environment variable
// (FABRIC_<NAME>, with dashes as underscores). It returns the positional
// arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)
			}
		}
	})
	return positional, err
}

func envName(flagName string) string {
	return "FABRIC_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// logFlags are the logging flags every server command takes.
type logFlags struct {
	format string
	level  string
}

func (l *logFlags) register(fs *flag.FlagSet, defaultFormat string) {
	fs.StringVar(&l.format, "log-format", defaultFormat, "log format: json or text")
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn or error")
}

func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format: want json or text, got %q", l.format)
	}
}

// gatewayFlags are the gateway settings shared by `fabric gateway` and
// `fabric dev`.
type gatewayFlags struct {
	listen         string
	id             string
	prefix         string
	resumeSecret   string
	allowedOrigins string
	cfg            gateway.Config
	shutdownGrace  time.Duration
	durable        bool
	durableCfg     gateway.DurableConfig
	auth           authFlags
	debugListen    *string

	registryOnce sync.Once
	registry     *prometheus.Registry // see metricsRegistry
}

func (g *gatewayFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.listen, "listen", ":8080", "address of the WebSocket and HTTP listener")
	fs.StringVar(&g.id, "id", "", "gateway instance id (default: random)")
	fs.StringVar(&g.prefix, "prefix", "fabric", "NATS subject prefix and workers' queue group")
	fs.StringVar(&g.resumeSecret, "resume-secret", "", "secret signing resume tokens, shared by all gateways (default: random, resume on this gateway only)")
	fs.StringVar(&g.allowedOrigins, "allowed-origins", "", "comma-separated browser origins allowed to connect, or * (default: same origin)")
	fs.DurationVar(&g.cfg.RequestTimeout, "request-timeout", gateway.DefaultRequestTimeout, "a request's inactivity timeout")
	fs.DurationVar(&g.cfg.HelloTimeout, "hello-timeout", gateway.DefaultHelloTimeout, "time a client has to send sys/hello")
	fs.DurationVar(&g.cfg.PingInterval, "ping-interval", gateway.DefaultPingInterval, "interval of sys/ping; a client silent for two is closed")
	fs.DurationVar(&g.cfg.ParkAfter, "park-after", gateway.DefaultParkAfter, "silence after which a connection parks: no goroutine until its client sends (Linux; negative: never)")
	fs.DurationVar(&g.cfg.SessionRetention, "session-retention", gateway.DefaultSessionRetention, "how long a session awaits resume after its connection drops")
	fs.Int64Var(&g.cfg.MaxFrameBytes, "max-frame-bytes", gateway.DefaultMaxFrameBytes, "largest inbound frame")
	fs.IntVar(&g.cfg.MaxInFlight, "max-in-flight", gateway.DefaultMaxInFlight, "requests in flight per connection")
	fs.Float64Var(&g.cfg.MessageRate, "message-rate", gateway.DefaultMessageRate, "frames per second a client may send on one connection, sustained (negative: unlimited)")
	fs.IntVar(&g.cfg.MessageBurst, "message-burst", 0, "frames a client may send at once over --message-rate (default: twice --message-rate, at least --max-in-flight)")
	fs.IntVar(&g.cfg.MaxConnections, "max-connections", gateway.DefaultMaxConnections, "connections served at once; beyond it, upgrades get 503 (negative: unlimited)")
	fs.Float64Var(&g.cfg.ConnectionRate, "connection-rate", gateway.DefaultConnectionRate, "new connections accepted per second; beyond it, upgrades get 503 (negative: unlimited)")
	fs.IntVar(&g.cfg.MaxQueueBytes, "max-queue-bytes", gateway.DefaultMaxQueueBytes, "outbound queue per connection before a slow client is closed")
	fs.DurationVar(&g.cfg.WriteTimeout, "write-timeout", gateway.DefaultWriteTimeout, "deadline of one write to a client")
	fs.DurationVar(&g.cfg.HandoffTimeout, "handoff-timeout", gateway.DefaultHandoffTimeout, "on shutdown, how long sessions wait to be resumed on another gateway (negative: not at all)")
	fs.DurationVar(&g.cfg.MaxRequestDuration, "max-request-duration", gateway.DefaultMaxRequestDuration, "longest run of a request, however often its worker sends")
	fs.DurationVar(&g.cfg.DrainPeriod, "drain-period", gateway.DefaultDrainPeriod, "on shutdown, spread the clients' 1001 closes over this long (negative: all at once)")
	fs.DurationVar(&g.shutdownGrace, "shutdown-grace", 10*time.Second, "time to close clients, hand sessions over and drain on SIGTERM")
	fs.BoolVar(&g.durable, "durable", false, "keep request events in JetStream: resumed sessions lose nothing, on any gateway")
	fs.DurationVar(&g.durableCfg.Retention, "durable-retention", gateway.DefaultRetention, "with --durable: how long events, the request ledger and session records are kept")
	fs.StringVar(&g.durableCfg.Storage, "durable-storage", "file", "with --durable: JetStream storage, file or memory")
	fs.IntVar(&g.durableCfg.Replicas, "durable-replicas", 1, "with --durable: copies kept in a NATS cluster (1, 3 or 5)")
	g.auth.register(fs)
	g.debugListen = registerDebugListen(fs)
}

// devOrigins are the origins `fabric dev` allows by default: any page
// served from this machine, on any port.
const devOrigins = "http://localhost:*,https://localhost:*,http://127.0.0.1:*,https://127.0.0.1:*,http://[::1]:*,https://[::1]:*"

// metricsRegistry returns the registry the gateway serves on /metrics, made
// on first use. Register other metrics of the process on it (the workers of
// `fabric dev`) to serve them there too.
func (g *gatewayFlags) metricsRegistry() *prometheus.Registry {
	g.registryOnce.Do(func() { g.registry = newRegistry() })
	return g.registry
}

// newRegistry returns a Prometheus registry with the Go and process
// collectors, as a gateway's default one.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func (g *gatewayFlags) config() gateway.Config {
	cfg := g.cfg
	if g.durable {
		d := g.durableCfg
		cfg.Durable = &d
	}
	cfg.ID = g.id
	cfg.Prefix = g.prefix
	if g.resumeSecret != "" {
		cfg.ResumeSecret = []byte(g.resumeSecret)
	}
	for _, o := range strings.Split(g.allowedOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
		}
	}
	return cfg
}

// natsAuthFlags are the credentials a command presents to NATS, and the
// prefix of its reply inboxes (deploy/nats/permissions.conf).
type natsAuthFlags struct {
	user, password, token, creds, inboxPrefix string
}

// registerNATSAuth registers the NATS credential flags on fs.
func registerNATSAuth(fs *flag.FlagSet) *natsAuthFlags {
	a := &natsAuthFlags{}
	fs.StringVar(&a.user, "nats-user", "", "NATS user name")
	fs.StringVar(&a.password, "nats-password", "", "NATS password; prefer FABRIC_NATS_PASSWORD, which ps does not show")
	fs.StringVar(&a.token, "nats-token", "", "NATS token; prefer FABRIC_NATS_TOKEN")
	fs.StringVar(&a.creds, "nats-creds", "", "NATS credentials file (a user JWT and its NKey seed: decentralized auth)")
	fs.StringVar(&a.inboxPrefix, "nats-inbox-prefix", "", "prefix of the connection's reply subjects, such as _INBOX.<user>, so that permissions can keep each user's replies its own (default: _INBOX)")
	return a
}

// options returns the nats.Options of the credentials. Several kinds at
// once are an error, which nats.Connect returns.
func (a *natsAuthFlags) options() []nats.Option {
	var opts []nats.Option
	kinds := 0
	if a.user != "" || a.password != "" {
		kinds++
		opts = append(opts, nats.UserInfo(a.user, a.password))
	}
	if a.token != "" {
		kinds++
		opts = append(opts, nats.Token(a.token))
	}
	if a.creds != "" {
		kinds++
		opts = append(opts, nats.UserCredentials(a.creds))
	}
	if a.inboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(a.inboxPrefix))
	}
	switch {
	case kinds > 1:
		return []nats.Option{func(*nats.Options) error {
			return errors.New("--nats-user/--nats-password, --nats-token and --nats-creds exclude each other")
		}}
	case a.user == "" && a.password != "":
		return []nats.Option{func(*nats.Options) error { return errors.New("--nats-password without --nats-user") }}
	}
	return opts
}

// connectNATS connects to a comma-separated list of NATS URLs, reconnecting
// forever, and logs the connection's life. opts come last: credentials,
// say.
func connectNATS(urls, name string, log *slog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect(urls,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		// A frozen NATS server is noticed in 4–6s, and the connection
		// moves to another node.
		nats.PingInterval(2*time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("nats async error", "subject", subject, "err", err)
		}),
		allOptions(opts),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", urls, err)
	}
	return nc, nil
}

// allOptions applies opts in order, as one nats.Option.
func allOptions(opts []nats.Option) nats.Option {
	return func(o *nats.Options) error {
		for _, opt := range opts {
			if err := opt(o); err != nil {
				return err
			}
		}
		return nil
	}
}

// flagGiven reports whether the flag was set on the command line or from the
// environment.
func flagGiven(fs *flag.FlagSet, name string) bool {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}
