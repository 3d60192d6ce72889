package cluster

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/internal/topology"
)

// Options shapes a cluster. The zero value of every field selects the
// documented default.
type Options struct {
	// NATS is the number of NATS nodes. 0 means 3.
	NATS int
	// Gateways is the number of gateway processes. 0 means 2.
	Gateways int
	// Workers is the number of demo worker processes. 0 means none.
	Workers int
	// RequestTimeout is the gateways' --request-timeout, the inactivity
	// timeout after which a silent request ends with :error{timeout}.
	// 0 means 2s.
	RequestTimeout time.Duration
	// SessionRetention is the gateways' --session-retention. 0 means 5s,
	// so that sessions left by dropped clients end within a test.
	SessionRetention time.Duration
	// GatewayArgs are appended to every gateway's arguments (--durable…);
	// a flag given here overrides the harness's own.
	GatewayArgs []string
	// WorkerArgs are appended to every worker's arguments.
	WorkerArgs []string
	// NATSConfig is appended to every node's configuration file: users and
	// permissions, say. With users, the gateways and workers need
	// credentials in GatewayArgs and WorkerArgs, and [Node.Connect], which
	// presents none, fails.
	NATSConfig string
}

func (o Options) withDefaults() Options {
	if o.NATS <= 0 {
		o.NATS = 3
	}
	if o.Gateways <= 0 {
		o.Gateways = 2
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 2 * time.Second
	}
	if o.SessionRetention <= 0 {
		o.SessionRetention = 5 * time.Second
	}
	return o
}

// Cluster is a running fabric of real processes on loopback: NATS nodes,
// gateways and demo workers. Start it with [Start]; t.Cleanup ends every
// process it started.
type Cluster struct {
	NATS     []*Node
	Gateways []*Gateway
	Workers  []*Process

	t      testing.TB
	opts   Options
	secret string
	fabric string // the fabric binary

	mu      sync.Mutex
	procs   []*Process
	pids    []int
	clients int // clients made, to name the next
}

// Start starts a cluster: the NATS nodes first (and waits until they form a
// cluster), then the workers, then the gateways, each waited for until it
// serves.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	bins, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, opts: opts.withDefaults(), secret: rand.Text(), fabric: bins.fabric}
	// Directories first: t.TempDir's removal then runs after the processes
	// end (cleanups run last-registered first).
	dirs := make([]string, c.opts.NATS)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	t.Cleanup(c.end)
	c.startNATS(bins.nats, dirs)
	for range c.opts.Workers {
		c.AddWorker()
	}
	if c.opts.Workers > 0 {
		c.waitWorkers()
	}
	for range c.opts.Gateways {
		c.AddGateway()
	}
	return c
}

// AddWorker starts one more demo worker and waits until it serves.
func (c *Cluster) AddWorker() *Process {
	c.t.Helper()
	args := append([]string{"worker", "--demo", "--nats", c.NATSURLs(), "--shutdown-grace", "10s"}, c.opts.WorkerArgs...)
	w := c.newProcess(fmt.Sprintf("w%d", len(c.Workers)), c.fabric, args)
	w.ready = func() error {
		_, err := w.waitOutput(workerReadyRE)
		return err
	}
	if err := w.start(); err != nil {
		c.t.Fatal(err)
	}
	c.Workers = append(c.Workers, w)
	return w
}

// AddGateway starts one more gateway, on a random port, and waits until it
// serves.
func (c *Cluster) AddGateway() *Gateway {
	c.t.Helper()
	i := len(c.Gateways)
	args := append([]string{"gateway",
		"--listen", "127.0.0.1:0",
		"--nats", c.NATSURLs(),
		"--resume-secret", c.secret,
		"--id", fmt.Sprintf("gw%d", i),
		"--request-timeout", c.opts.RequestTimeout.String(),
		"--session-retention", c.opts.SessionRetention.String(),
	}, c.opts.GatewayArgs...)
	g := &Gateway{Process: c.newProcess(fmt.Sprintf("gw%d", i), c.fabric, args), Index: i}
	g.ready = g.awaitReady
	if err := g.start(); err != nil {
		c.t.Fatal(err)
	}
	c.Gateways = append(c.Gateways, g)
	return g
}

// waitWorkers waits until every running node knows of a worker serving the
// demo routes, so that no request made after Start meets no_responders
// while their interest spreads over the routes.
func (c *Cluster) waitWorkers() {
	c.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for _, n := range c.NATS {
		for {
			ok, err := n.knowsWorker()
			if ok {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s knows no worker after %s (%v)", n.Name, readyTimeout, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// NATSURLs returns every node's client URL, comma-separated, as --nats takes
// them.
func (c *Cluster) NATSURLs() string {
	urls := make([]string, len(c.NATS))
	for i, n := range c.NATS {
		urls[i] = n.URL()
	}
	return strings.Join(urls, ",")
}

// PIDs returns the id of every process the cluster started, restarts
// included.
func (c *Cluster) PIDs() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.pids...)
}

// end ends every process, gateways first so that they do not log the others'
// deaths, and checks that none crashed.
func (c *Cluster) end() {
	c.mu.Lock()
	procs := append([]*Process(nil), c.procs...)
	c.mu.Unlock()
	var order []*Process
	for _, g := range c.Gateways {
		order = append(order, g.Process)
	}
	order = append(order, c.Workers...)
	for _, n := range c.NATS {
		order = append(order, n.Process)
	}
	for _, p := range procs {
		if !containsProc(order, p) {
			order = append(order, p)
		}
	}
	for _, p := range order {
		p.end()
	}
}

func containsProc(ps []*Process, p *Process) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// nodeOf returns the index of the NATS node whose client URL is url, or -1.
func (c *Cluster) nodeOf(url string) int {
	for i, n := range c.NATS {
		if n.URL() == url {
			return i
		}
	}
	return -1
}

// What the fabric binary logs (JSON) when it serves, and when its NATS
// connection (re)connects.
var (
	gatewayReadyRE = topology.GatewayReady
	workerReadyRE  = topology.WorkerReady
	natsURLRE      = regexp.MustCompile(`"msg":"(?:gateway listening|worker serving|nats reconnected)"[^\n]*?"(?:nats|url)":"([^"]+)"`)
)

// NATSNode returns the index of the NATS node a gateway or worker was last
// connected to, as it logged it, or -1 if it logged none.
func (p *Process) NATSNode() int {
	ms := natsURLRE.FindAllStringSubmatch(p.Output(), -1)
	if len(ms) == 0 {
		return -1
	}
	return p.c.nodeOf(ms[len(ms)-1][1])
}

// Reconnects returns how many times a gateway or worker logged that its NATS
// connection was re-established, in its current run.
func (p *Process) Reconnects() int {
	return strings.Count(p.Output(), `"msg":"nats reconnected"`)
}

// The binaries every cluster of a test binary runs, built once.
var build struct {
	once sync.Once
	dir  string
	bins bins
	err  error
}

// bins are the fabric binary, and the one that runs the NATS nodes as
// `fabric nats-server`: the same one, except with the race detector, which
// would only slow the nodes down.
type bins struct{ fabric, nats string }

// binaries builds the fabric binary (with the race detector when
// FABRIC_CLUSTER_RACE=1, and then a plain one too for the NATS nodes),
// once per test binary, into a temporary directory that [Main] removes.
func binaries() (bins, error) {
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "fabric-cluster-")
		if build.err != nil {
			return
		}
		build.bins.nats, build.err = fabrictest.BuildFabric(build.dir)
		build.bins.fabric = build.bins.nats
		if race, _ := strconv.ParseBool(os.Getenv("FABRIC_CLUSTER_RACE")); race && build.err == nil {
			build.bins.fabric = filepath.Join(build.dir, "fabric-race")
			build.err = goBuild("-race", "-o", build.bins.fabric, "github.com/seed82ac63c1/fabric/cmd/fabric")
		}
	})
	return build.bins, build.err
}

func goBuild(args ...string) error {
	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Main runs a package's tests and removes the binaries the clusters used:
//
//	func TestMain(m *testing.M) { cluster.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}
