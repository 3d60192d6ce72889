package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/seed82ac63c1/fabric/internal/topology"
)

// Config is what a scenario runs and how long; each field says which
// scenarios read it.
type Config struct {
	// Fabric is the fabric binary run as every child; "" means this
	// executable.
	Fabric string
	// Duration is the measured phase (latency, storm); 0 means 10s.
	Duration time.Duration
	// Warmup runs the same load, unmeasured, before it; 0 means none.
	Warmup time.Duration
	// Durable runs the gateway with --durable (file storage).
	Durable bool
	// Conns is idle's number of connections; 0 means 10000.
	Conns int
	// Requests, when above 0, is latency's number of measured requests per
	// case and target, instead of Duration.
	Requests int
	// Rate is storm's target of new connections per second; 0 means 500.
	Rate float64
	// GCWait is how long idle waits for the gateway to collect garbage
	// after the connections are made (the runtime forces a collection
	// every 2 minutes); 0 means no wait.
	GCWait time.Duration
	// Profile, when not empty, is a directory where idle saves the
	// gateway's heap and goroutine profiles with the connections open.
	Profile string
	// ConnCounts are throughput's numbers of connections, one measured
	// phase each; nil means 16, 64 and 256.
	ConnCounts []int
	// Window is throughput's requests in flight per connection; 0 means 8.
	Window int
	// Rates are throughput's fixed offered rates, in events per second;
	// nil means a search, in steps of a tenth of the saturation rate.
	Rates []float64
	// RateConns is the connections of throughput's fixed rates; 0 means 64.
	RateConns int
	// RateDuration is the measured time of each fixed rate; 0 means 3s.
	RateDuration time.Duration
	// Clients is resume's number of streaming clients; 0 means 1000.
	Clients int
	// Backoff is resume's cap on a client's wait before it reconnects: each
	// waits a random time up to it; 0 means none, at once.
	Backoff time.Duration
	// Events is resume's events per stream (demo/count n); 0 means 40.
	Events int
	// Interval is resume's time between a stream's events; 0 means 100ms.
	Interval time.Duration
	// Log receives progress lines; nil means none.
	Log io.Writer
}

func (c *Config) logf(format string, args ...any) {
	if c.Log != nil {
		fmt.Fprintf(c.Log, "bench: "+format+"\n", args...)
	}
}

func (c *Config) duration() time.Duration {
	if c.Duration <= 0 {
		return 10 * time.Second
	}
	return c.Duration
}

func (c *Config) mode() string {
	if c.Durable {
		return "durable"
	}
	return "core"
}

// fabric is the processes a scenario measures: a NATS server (with a
// WebSocket listener for the NATS-WebSocket baseline), a gateway and a
// demo worker.
type fabric struct {
	bin string
	dir string // configuration and JetStream store, removed by stop

	nats, gateway, worker *child
	natsURL, natsWSURL    string
	gatewayAddr           string // host:port
	// peer is the second gateway, when fabricOptions.peer asks for one:
	// the same NATS and arguments (the same --resume-secret), so that
	// each resumes the other's sessions.
	peer            *child
	peerAddr        string // host:port
	debugAddr       string // the gateway's --debug-listen host:port
	workerDebugAddr string // the worker's --debug-listen host:port
	gatewayArgs     []string
	gc              gcTrace // the gateway's collections

	extra []*child // baselines' children, stopped first
}

// fabricOptions shape a fabric.
type fabricOptions struct {
	durable  bool
	maxConns int  // the gateway's --max-connections; 0 means its default
	peer     bool // start a second gateway (fabric.peer)
	// handlers is the worker's --max-concurrent; 0 means 1024.
	handlers int
	// env is added to the worker's and the gateways' environment.
	env []string
}

func (o fabricOptions) workerHandlers() int {
	if o.handlers <= 0 {
		return 1024
	}
	return o.handlers
}

// What nats-server logs of the ports it listens on.
var (
	natsClientListening  = regexp.MustCompile(`Listening for client connections on (\S+)`)
	natsMonitorListening = regexp.MustCompile(`Starting http monitor on (\S+)`)
	natsWSListening      = regexp.MustCompile(`Listening for websocket clients on ws://(\S+)`)
)

// portOf returns the port of a host:port.
func portOf(addr string) (int, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("bench: %q: %w", addr, err)
	}
	return strconv.Atoi(port)
}

var (
	debugListening    = regexp.MustCompile(`"msg":"debug listener on[^"]*","addr":"([^"]+)"`)
	gatewayListening  = topology.GatewayReady
	embeddedNATSReady = topology.EmbeddedNATSReady
	natsReady         = topology.NATSReady
	workerReady       = topology.WorkerReady
)

// startFabric starts NATS, then the worker, then the gateway, each waited
// for until it serves; then a request goes round trip. On an error, what
// started is stopped.
func startFabric(ctx context.Context, bin string, o fabricOptions) (_ *fabric, err error) {
	f := &fabric{bin: bin}
	defer func() {
		if err != nil {
			err = errors.Join(err, f.stop())
		}
	}()
	if f.dir, err = os.MkdirTemp("", "fabric-bench-"); err != nil {
		return nil, err
	}
	// Every port is the server's pick (-1), read back from its log: a
	// port found free and then bound by another process in between would
	// fail the run.
	node := topology.Node{Name: "bench", ClientPort: -1, HTTPPort: -1, StoreDir: filepath.Join(f.dir, "jetstream")}
	ws := "websocket {\n  host: \"127.0.0.1\"\n  port: -1\n  no_tls: true\n}\n"
	conf := filepath.Join(f.dir, "nats.conf")
	if err := os.WriteFile(conf, []byte(topology.Config(node, "", []topology.Node{node}, ws)), 0o600); err != nil {
		return nil, err
	}
	if f.nats, err = startChild("nats", bin, nil, nil, "nats-server", "-c", conf); err != nil {
		return nil, err
	}
	if _, err := f.nats.await(ctx, natsReady); err != nil {
		return nil, err
	}
	var wsPort int
	for _, p := range []struct {
		re   *regexp.Regexp
		port *int
	}{{natsClientListening, &node.ClientPort}, {natsMonitorListening, &node.HTTPPort}, {natsWSListening, &wsPort}} {
		addr, err := f.nats.await(ctx, p.re)
		if err != nil {
			return nil, err
		}
		if *p.port, err = portOf(addr); err != nil {
			return nil, err
		}
	}
	f.natsURL, f.natsWSURL = node.URL(), fmt.Sprintf("ws://127.0.0.1:%d", wsPort)
	if err := f.nats.poll(ctx, func() error { return node.Monitor("/healthz", nil) }); err != nil {
		return nil, err
	}
	f.worker, err = startChild("worker", bin, o.env, nil, "worker", "--nats", f.natsURL, "--demo", "--log-format", "json",
		"--max-concurrent", strconv.Itoa(o.workerHandlers()), "--shutdown-grace", "2s", "--debug-listen", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if _, err := f.worker.await(ctx, workerReady); err != nil {
		return nil, err
	}
	if f.workerDebugAddr, err = f.worker.await(ctx, debugListening); err != nil {
		return nil, err
	}
	f.gatewayArgs = []string{"gateway", "--listen", "127.0.0.1:0", "--nats", f.natsURL, "--log-format", "json",
		// The benchmark measures the fabric, not its limits against
		// hostile clients: no per-connection frame rate (100/s by
		// default), no connection rate, and room for every connection.
		"--message-rate", "-1", "--connection-rate", "-1",
		"--resume-secret", rand.Text(),
		// Teardown is not measured: no drain, no hand-over.
		"--drain-period", "-1s", "--handoff-timeout", "-1s", "--shutdown-grace", "5s",
		// pprof, on a listener of its own: heap?gc=1 forces a collection.
		"--debug-listen", "127.0.0.1:0"}
	if o.maxConns > 0 {
		f.gatewayArgs = append(f.gatewayArgs, "--max-connections", strconv.Itoa(o.maxConns))
	}
	if o.durable {
		f.gatewayArgs = append(f.gatewayArgs, "--durable", "--durable-storage", "file")
	}
	// gctrace=1 makes the runtime print a line per collection on stderr:
	// the live heap after each one, with no endpoint in the gateway.
	f.gateway, err = startChild("gateway", bin, append([]string{"GODEBUG=gctrace=1"}, o.env...), f.gc.line, f.gatewayArgs...)
	if err != nil {
		return nil, err
	}
	if f.gatewayAddr, err = f.gateway.await(ctx, gatewayListening); err != nil {
		return nil, err
	}
	if f.debugAddr, err = f.gateway.await(ctx, debugListening); err != nil {
		return nil, err
	}
	if err := f.gateway.poll(ctx, func() error { return topology.Get(f.httpURL()+"/readyz", nil) }); err != nil {
		return nil, err
	}
	if err := f.gateway.poll(ctx, func() error { return f.probe(f.wsURL()) }); err != nil {
		return nil, err
	}
	if !o.peer {
		return f, nil
	}
	if f.peer, err = startChild("peer gateway", bin, o.env, nil, f.gatewayArgs...); err != nil {
		return nil, err
	}
	if f.peerAddr, err = f.peer.await(ctx, gatewayListening); err != nil {
		return nil, err
	}
	return f, f.peer.poll(ctx, func() error { return f.probe(f.peerWSURL()) })
}

// probe sends one demo/echo through the gateway at url: nil once it is
// answered.
func (f *fabric) probe(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dialFabric(ctx, url, nil)
	if err != nil {
		return err
	}
	defer c.close()
	rt, err := c.roundTrip([]byte(`{"type":"demo/echo","id":"probe","payload":{}}`))
	if err == nil && rt.failed {
		err = errors.New("the probe request ended in :error")
	}
	return err
}

func (f *fabric) wsURL() string   { return "ws://" + f.gatewayAddr + "/ws" }
func (f *fabric) httpURL() string { return "http://" + f.gatewayAddr }

func (f *fabric) peerWSURL() string { return "ws://" + f.peerAddr + "/ws" }

// startExtra starts a baseline's child of this fabric's binary and waits
// until its output matches ready; it returns the last submatch.
func (f *fabric) startExtra(ctx context.Context, name string, ready *regexp.Regexp, args ...string) (string, error) {
	c, err := startChild(name, f.bin, nil, nil, args...)
	if err != nil {
		return "", err
	}
	f.extra = append(f.extra, c)
	return c.await(ctx, ready)
}

// alive returns an error if a child has exited.
func (f *fabric) alive() error {
	var errs []error
	for _, c := range append([]*child{f.nats, f.worker, f.gateway, f.peer}, f.extra...) {
		if c != nil {
			errs = append(errs, c.exited())
		}
	}
	return errors.Join(errs...)
}

// stop stops the baselines, the gateways, the worker and NATS, in that
// order, and removes the temporary directory.
func (f *fabric) stop() error {
	var errs []error
	for _, c := range append(f.extra, f.peer, f.gateway, f.worker, f.nats) {
		if c != nil {
			errs = append(errs, c.stop(10*time.Second))
		}
	}
	if f.dir != "" {
		errs = append(errs, os.RemoveAll(f.dir))
	}
	return errors.Join(errs...)
}

// gcTrace follows a Go process's GODEBUG=gctrace=1 lines.
type gcTrace struct {
	mu    sync.Mutex
	count int       // collections seen
	live  int64     // the live heap after the last one, in bytes
	at    time.Time // when its line arrived
}

// gctraceRE matches "gc 12 @3.4s 1%: … 4->5->2 MB, …": the collection's
// number and the heap's size at its start, end, and what it marked live.
var gctraceRE = regexp.MustCompile(`^gc (\d+) @\S+ .*?(\d+)->(\d+)->(\d+) MB`)

func (g *gcTrace) line(s string) {
	m := gctraceRE.FindStringSubmatch(s)
	if m == nil {
		return
	}
	live, _ := strconv.ParseInt(m[4], 10, 64)
	g.mu.Lock()
	g.count++
	g.live = live << 20
	g.at = time.Now()
	g.mu.Unlock()
}

// last returns how many collections it has seen, the live heap after the
// last one, and when it ended.
func (g *gcTrace) last() (count int, live int64, at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.count, g.live, g.at
}

// reserveFiles raises this process's open files limit to its hard limit
// (the children inherit it) and fails if that is below need, saying what
// needs them. It returns the limit.
func reserveFiles(need int, what string) (uint64, error) {
	limit, err := raiseFileLimit()
	if err != nil {
		return 0, fmt.Errorf("bench: raise the open files limit: %w", err)
	}
	if limit < uint64(need) {
		return 0, fmt.Errorf("bench: %s needs %d open files; the hard limit is %d (ulimit -Hn)", what, need, limit)
	}
	return limit, nil
}

// embeddedFabric is a second fabric in the same run, in the other
// topology: the gateway runs the NATS node (--embed-nats) and its worker
// connects to that node, so a request crosses two processes, as it does
// through NATS's WebSocket listener and a responder.
type embeddedFabric struct {
	gateway, worker *child
	gatewayAddr     string // host:port
}

func (e *embeddedFabric) wsURL() string { return "ws://" + e.gatewayAddr + "/ws" }

// startEmbedded starts an embeddedFabric with the arguments of f's gateway
// and worker (durable or not, the same handlers); its processes are among
// f's extras, stopped with the baselines.
func (f *fabric) startEmbedded(ctx context.Context, o fabricOptions) (*embeddedFabric, error) {
	// The node picks its port (-1); the gateway logs its URL.
	conf := filepath.Join(f.dir, "nats-embedded.conf")
	body := fmt.Sprintf("host: \"127.0.0.1\"\nport: -1\njetstream {\n  store_dir: %q\n}\n", filepath.Join(f.dir, "jetstream-embedded"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return nil, err
	}
	args := slices.Clone(f.gatewayArgs)
	i := slices.Index(args, "--nats")
	args[i], args[i+1] = "--embed-nats", conf
	e := &embeddedFabric{}
	var err error
	if e.gateway, err = startChild("embedded gateway", f.bin, o.env, nil, args...); err != nil {
		return nil, err
	}
	f.extra = append(f.extra, e.gateway)
	natsURL, err := e.gateway.await(ctx, embeddedNATSReady)
	if err != nil {
		return nil, err
	}
	if e.gatewayAddr, err = e.gateway.await(ctx, gatewayListening); err != nil {
		return nil, err
	}
	e.worker, err = startChild("embedded worker", f.bin, o.env, nil, "worker", "--nats", natsURL, "--demo", "--log-format", "json",
		"--max-concurrent", strconv.Itoa(o.workerHandlers()), "--shutdown-grace", "2s")
	if err != nil {
		return nil, err
	}
	// The worker stops before the gateway whose NATS it is connected to.
	f.extra = slices.Insert(f.extra, len(f.extra)-1, e.worker)
	if _, err := e.worker.await(ctx, workerReady); err != nil {
		return nil, err
	}
	return e, e.gateway.poll(ctx, func() error { return f.probe(e.wsURL()) })
}
