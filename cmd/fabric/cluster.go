package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/seed82ac63c1/fabric/internal/topology"
	"github.com/seed82ac63c1/fabric/subjects"
	"github.com/seed82ac63c1/fabric/web"
	"github.com/seed82ac63c1/fabric/workers/demo"
)

// clusterReadyTimeout bounds each wait of `fabric cluster`'s start: a
// process until it serves, the NATS cluster until it has formed.
const clusterReadyTimeout = 30 * time.Second

// clusterFlags shape `fabric cluster`.
type clusterFlags struct {
	nodes, gateways, workers int
	host                     string
	basePort                 int
	durable                  bool
	dir                      string
	prefix                   string
	stopTimeout              time.Duration
}

// runCluster is `fabric cluster`: the topology of docker-compose.yml as
// processes on one machine, with no Docker. It runs this executable as every
// child: NATS nodes (`fabric nats-server`) clustered with JetStream, then
// workers serving the demo and the agents' routes, then gateways sharing a
// resume secret, each waited for until it serves. It serves the demo page
// itself and passes the page's /ws to the gateways in turn, as the compose
// file's nginx does. It prints what listens where, and each child's log
// lines on stderr, prefixed with the child's name.
//
// On SIGINT or SIGTERM it stops the gateways, then the workers, then the
// NATS nodes, each with SIGTERM and SIGKILL after --stop-timeout, and exits
// 0 if every one exited cleanly. A child that dies while the cluster runs is
// reported and not restarted; the others keep running, so that killing a
// node or a gateway by hand shows the fabric survive it. Children die with
// it (on Linux) if it is killed outright.
func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cluster")
	var cf clusterFlags
	fs.IntVar(&cf.nodes, "nats-nodes", 3, "NATS nodes, clustered, with JetStream")
	fs.IntVar(&cf.gateways, "gateways", 2, "gateway processes")
	fs.IntVar(&cf.workers, "workers", 2, "worker processes, each serving the demo and the agents' routes")
	fs.StringVar(&cf.host, "listen-host", "127.0.0.1", "address every process listens on")
	fs.IntVar(&cf.basePort, "base-port", 0, "first of consecutive ports, in order: the demo page, the gateways, the NATS nodes' client, route and monitoring ports, the workers' metrics (default: random free ports)")
	fs.BoolVar(&cf.durable, "durable", false, "run the gateways with --durable, their streams replicated on 3 nodes (1 with fewer nodes)")
	fs.StringVar(&cf.dir, "dir", "", "directory of the NATS nodes' configurations and JetStream stores, kept at exit (default: a temporary one, removed at exit)")
	fs.StringVar(&cf.prefix, "prefix", "fabric", "NATS subject prefix of the gateways and workers")
	fs.DurationVar(&cf.stopTimeout, "stop-timeout", 15*time.Second, "on stop, how long each process has after SIGTERM before SIGKILL")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	dir := cf.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "fabric-cluster-data-"); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		defer os.RemoveAll(dir) // after every child has stopped
	}
	c := &localCluster{cf: cf, exe: exe, dir: dir, out: &syncWriter{w: stderr}}
	err = c.start(ctx)
	if err != nil && ctx.Err() != nil {
		err = nil // stopped while starting, as asked
	}
	if err == nil && ctx.Err() == nil {
		c.printTable(stdout)
		<-ctx.Done()
		fmt.Fprintln(stdout, "fabric cluster: stopping: gateways, workers, then NATS")
	}
	return errors.Join(err, c.stop())
}

func (cf *clusterFlags) validate() error {
	switch {
	case cf.nodes < 1 || cf.gateways < 1 || cf.workers < 0:
		return errors.New("cluster: want --nats-nodes and --gateways of 1 or more, --workers of 0 or more")
	case cf.basePort < 0 || cf.basePort > 0 && cf.basePort+cf.ports() > 65536:
		return fmt.Errorf("cluster: --base-port %d: the cluster needs %d ports from it", cf.basePort, cf.ports())
	case cf.stopTimeout <= 0:
		return errors.New("cluster: --stop-timeout must be positive")
	}
	_, err := subjects.NewSpace(cf.prefix)
	return err
}

// ports is how many ports the cluster listens on.
func (cf *clusterFlags) ports() int { return 1 + cf.gateways + 3*cf.nodes + cf.workers }

// port returns the i-th port from --base-port, or 0 (any free port).
func (cf *clusterFlags) port(i int) int {
	if cf.basePort == 0 {
		return 0
	}
	return cf.basePort + i
}

// localCluster is the children of `fabric cluster` and its page.
type localCluster struct {
	cf  clusterFlags
	exe string
	dir string
	out *syncWriter // stderr, shared by the children's prefixed lines

	nodes    []topology.Node
	nats     []*child
	workers  []*child
	gateways []*child
	page     *http.Server
	pageAddr string
}

// start starts the NATS nodes and waits until they form a cluster, then the
// workers, until every node knows of one, then the gateways, until each is
// ready, then the page. On an error, what started keeps running: stop ends it.
func (c *localCluster) start(ctx context.Context) error {
	if err := c.startNATS(ctx); err != nil {
		return err
	}
	urls := topology.URLs(c.nodes)
	for i := range c.cf.workers {
		w, err := c.startChild(ctx, &c.workers, fmt.Sprintf("w%d", i+1), topology.WorkerReady, "worker", "--demo", "--agents",
			"--nats", urls, "--prefix", c.cf.prefix, "--metrics-listen", c.listen(1+c.cf.gateways+3*c.cf.nodes+i),
			"--shutdown-grace", "10s", "--log-format", "json")
		if err != nil {
			return err
		}
		if w.metrics, err = w.await(ctx, topology.MetricsListening); err != nil {
			return err
		}
	}
	if c.cf.workers > 0 {
		if err := c.awaitNodes(ctx, c.knowsWorker); err != nil {
			return err
		}
	}
	secret := rand.Text()
	for i := range c.cf.gateways {
		args := []string{"gateway", "--listen", c.listen(1 + i), "--nats", urls, "--prefix", c.cf.prefix,
			"--id", fmt.Sprintf("gw%d", i+1), "--resume-secret", secret, "--log-format", "json"}
		if c.cf.durable {
			replicas := "1"
			if c.cf.nodes >= 3 {
				replicas = "3"
			}
			args = append(args, "--durable", "--durable-replicas", replicas)
		}
		g, err := c.startChild(ctx, &c.gateways, fmt.Sprintf("gw%d", i+1), topology.GatewayReady, args...)
		if err != nil {
			return err
		}
		if err := poll(ctx, g, func() error { return topology.Get(httpURL(g.addr)+"/readyz", nil) }); err != nil {
			return fmt.Errorf("%s not ready: %w", g.name, err)
		}
	}
	return c.servePage()
}

// listen returns the listen address of the i-th port from --base-port.
func (c *localCluster) listen(i int) string {
	return net.JoinHostPort(c.cf.host, strconv.Itoa(c.cf.port(i)))
}

// startNATS writes each node's configuration, starts the nodes and waits
// until they have formed a cluster.
func (c *localCluster) startNATS(ctx context.Context) error {
	n := c.cf.nodes
	ports := make([]int, 3*n)
	if c.cf.basePort == 0 {
		var err error
		if ports, err = topology.FreePorts(c.cf.host, 3*n); err != nil {
			return err
		}
	} else {
		for i := range ports {
			ports[i] = c.cf.port(1 + c.cf.gateways + i)
		}
	}
	for i := range n {
		c.nodes = append(c.nodes, topology.Node{
			Name: fmt.Sprintf("n%d", i+1), Host: c.cf.host,
			ClientPort: ports[i], ClusterPort: ports[n+i], HTTPPort: ports[2*n+i],
			StoreDir: filepath.Join(c.dir, fmt.Sprintf("n%d", i+1), "jetstream"),
		})
	}
	ready := topology.NATSReady
	if len(c.nodes) > 1 {
		ready = topology.NATSRoutesReady // a route port taken meanwhile shows as an exit
	}
	for _, node := range c.nodes {
		conf := filepath.Join(c.dir, node.Name, "nats.conf")
		if err := os.MkdirAll(filepath.Dir(conf), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(conf, []byte(topology.Config(node, "fabric", c.nodes, "")), 0o600); err != nil {
			return err
		}
		if _, err := c.startChild(ctx, &c.nats, node.Name, ready, "nats-server", "-c", conf); err != nil {
			return err
		}
	}
	names := make([]string, n)
	for i, node := range c.nodes {
		names[i] = node.Name
	}
	return c.awaitNodes(ctx, func(node topology.Node) error { return topology.Formed(node, names) })
}

// knowsWorker returns nil once node knows of a worker serving the demo.
func (c *localCluster) knowsWorker(node topology.Node) error {
	subject := subjects.MustSpace(c.cf.prefix).Request(demo.Echo.Type())
	ok, err := topology.KnowsWorker(node, subject)
	if err == nil && !ok {
		err = fmt.Errorf("%s knows no worker", node.Name)
	}
	return err
}

// awaitNodes waits until ok holds for every node.
func (c *localCluster) awaitNodes(ctx context.Context, ok func(topology.Node) error) error {
	for i, node := range c.nodes {
		if err := poll(ctx, c.nats[i], func() error { return ok(node) }); err != nil {
			return fmt.Errorf("NATS: %w", err)
		}
	}
	return nil
}

// startChild starts this executable with args as the child name, adds it to
// group, and waits until its output matches ready, whose submatch, if any,
// is its address.
func (c *localCluster) startChild(ctx context.Context, group *[]*child, name string, ready *regexp.Regexp, args ...string) (*child, error) {
	p := &child{name: name, log: prefixLog(c.out, name), done: make(chan struct{})}
	p.cmd = topology.Command(c.exe, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.WaitDelay = time.Second // a grandchild holding the pipes does not hold Wait
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	*group = append(*group, p) // stop ends it from now on
	go p.wait(c.out)
	addr, err := p.await(ctx, ready)
	if ready.NumSubexp() > 0 {
		p.addr = addr
	}
	return p, err
}

// servePage serves the demo page, and passes its /ws to the gateways in
// turn.
func (c *localCluster) servePage() error {
	ln, err := net.Listen("tcp", c.listen(0))
	if err != nil {
		return fmt.Errorf("page: %w", err)
	}
	c.pageAddr = ln.Addr().String()
	var next atomic.Uint64
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			// The next gateway still running; the browser's Host goes on,
			// so that the gateway's same-origin check passes.
			g := c.gateways[next.Add(1)%uint64(len(c.gateways))]
			for range c.gateways {
				if g.running() {
					break
				}
				g = c.gateways[next.Add(1)%uint64(len(c.gateways))]
			}
			r.SetURL(&url.URL{Scheme: "http", Host: dialAddr(g.addr)})
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		ErrorLog: log.New(prefixLog(c.out, "page"), "", 0),
	}
	mux := http.NewServeMux()
	mux.Handle("/", web.Handler())
	mux.Handle("/ws", proxy)
	c.page = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = c.page.Serve(ln) }()
	return nil
}

// printTable prints what listens where, and the children's ids.
func (c *localCluster) printTable(w io.Writer) {
	fmt.Fprintf(w, "fabric cluster: %d NATS nodes, %d gateways, %d workers; their logs on stderr, by name\n\n",
		len(c.nats), len(c.gateways), len(c.workers))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPID\tURL\tMETRICS, MONITORING")
	fmt.Fprintf(tw, "page\t%d\t%s\t(the demo page; its /ws goes to the gateways in turn)\n", os.Getpid(), httpURL(c.pageAddr)+"/")
	for _, g := range c.gateways {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", g.name, g.pid(), "ws"+strings.TrimPrefix(httpURL(g.addr), "http")+"/ws", httpURL(g.addr)+"/metrics")
	}
	for _, p := range c.workers {
		fmt.Fprintf(tw, "%s\t%d\t-\t%s\n", p.name, p.pid(), httpURL(p.metrics)+"/metrics")
	}
	for i, p := range c.nats {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", p.name, p.pid(), c.nodes[i].URL(), c.nodes[i].MonitorURL()+"/")
	}
	tw.Flush()
	gw := "ws" + strings.TrimPrefix(httpURL(c.gateways[0].addr), "http") + "/ws"
	fmt.Fprintf(w, "\ntry:  fabric call demo/count '{\"n\":3}' --url %s\n", gw)
	fmt.Fprintf(w, "      fabric tail --nats %s\n", topology.URLs(c.nodes))
	fmt.Fprintf(w, "fabric cluster: ready; Ctrl-C (or kill -TERM %d) stops it\n", os.Getpid())
}

// httpURL is the http:// URL of a listener's host:port.
func httpURL(hostPort string) string { return "http://" + dialAddr(hostPort) }

// dialAddr is the host:port a local client dials for a listener's: an
// unspecified host (0.0.0.0, ::) becomes localhost.
func dialAddr(hostPort string) string {
	host, port, _ := net.SplitHostPort(hostPort)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// stop ends the page, then the gateways, the workers and the NATS nodes,
// each group at once, and returns what went wrong in their exits.
func (c *localCluster) stop() error {
	if c.page != nil {
		_ = c.page.Close() // the WebSockets it passed on end with their gateway
	}
	var (
		mu   sync.Mutex
		errs []error
	)
	for _, group := range [][]*child{c.gateways, c.workers, c.nats} {
		var wg sync.WaitGroup
		for _, p := range group {
			wg.Go(func() {
				if err := p.stop(c.cf.stopTimeout); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	return errors.Join(errs...)
}

// child is one process of `fabric cluster`.
type child struct {
	name    string
	cmd     *exec.Cmd
	log     *topology.LineLog
	addr    string // host:port it serves on, from its log ("" if none)
	metrics string // a worker's --metrics-listen host:port

	done     chan struct{} // closed once it has exited
	err      error         // its exit, once done
	stopping atomic.Bool   // stop signalled it: its exit is expected
}

// wait waits for the child to exit and reports an exit nobody asked for.
func (p *child) wait(out io.Writer) {
	err := p.cmd.Wait()
	p.log.Flush()
	p.err = err
	close(p.done)
	if !p.stopping.Load() {
		if err == nil {
			err = errors.New("exit status 0")
		}
		fmt.Fprintf(out, "fabric cluster: %s (pid %d) exited on its own (%v); the others keep running\n", p.name, p.pid(), err)
	}
}

func (p *child) pid() int { return p.cmd.Process.Pid }

func (p *child) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// await waits until the child's output matches re and returns the match's
// last submatch.
func (p *child) await(ctx context.Context, re *regexp.Regexp) (string, error) {
	var found string
	err := poll(ctx, p, func() error {
		m, ok := p.log.Find(re)
		if !ok {
			return fmt.Errorf("no %s in its log", re)
		}
		found = m
		return nil
	})
	return found, err
}

// stop sends SIGTERM, and SIGKILL after timeout; it returns an error if the
// child had to be killed or exited with a failure. A child already gone was
// reported when it went.
func (p *child) stop(timeout time.Duration) error {
	p.stopping.Store(true)
	if !p.running() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s: %w", p.name, p.err)
		}
		return nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s still running %s after SIGTERM: killed", p.name, timeout)
	}
}

// poll calls ok every 20ms until it returns nil, and fails when p exits,
// ctx ends or clusterReadyTimeout passes first.
func poll(ctx context.Context, p *child, ok func() error) error {
	ctx, cancel := context.WithTimeout(ctx, clusterReadyTimeout)
	defer cancel()
	for {
		err := ok()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited (%v) while starting: %v", p.name, p.err, err)
		case <-ctx.Done():
			return fmt.Errorf("%s: %w: %v", p.name, context.Cause(ctx), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// syncWriter writes whole lines from several writers, one at a time.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// prefixLog returns a log of a child's output that writes each line to out
// with name in front, and keeps the first lines to find what says it serves.
func prefixLog(out io.Writer, name string) *topology.LineLog {
	prefix := []byte(fmt.Sprintf("%-4s | ", name))
	return &topology.LineLog{Keep: 1000, OnLine: func(line []byte) {
		_, _ = out.Write(append(append(append([]byte(nil), prefix...), line...), '\n'))
	}}
}
