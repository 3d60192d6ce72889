package cluster

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/subjects"
	"github.com/seed82ac63c1/fabric/workers/demo"
)

// ClusterName is the NATS cluster's name.
const ClusterName = "fabric-test"

// Node is a NATS server process, one node of the cluster. Its ports and its
// JetStream store directory stay the same across restarts, so a restarted
// node rejoins the cluster where it was.
type Node struct {
	*Process
	Index       int
	ClientPort  int
	ClusterPort int
	HTTPPort    int // monitoring: /healthz, /routez, /connz…
	dir         string
}

// URL returns the node's client URL.
func (n *Node) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(n.ClientPort) }

// Connect opens a NATS connection to this node only, closed at cleanup.
func (n *Node) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(n.URL(), nats.Name("cluster-test"), nats.DontRandomize(), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

var natsReadyRE = regexp.MustCompile(`Server is ready`)

// startNATS starts the nodes in their directories and waits until they form
// a cluster. A port another process took between its choice and its use
// makes the nodes start again, on new ports.
func (c *Cluster) startNATS(bin string, dirs []string) {
	c.t.Helper()
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(3 * len(dirs))
		if err != nil {
			c.t.Fatal(err)
		}
		c.NATS = make([]*Node, len(dirs))
		for i, dir := range dirs {
			n := &Node{Index: i, ClientPort: ports[3*i], ClusterPort: ports[3*i+1], HTTPPort: ports[3*i+2], dir: dir}
			name := fmt.Sprintf("n%d", i+1)
			n.Process = c.newProcess(name, bin, []string{"-c", filepath.Join(dir, "nats.conf")})
			n.ready = n.awaitReady
			c.NATS[i] = n
		}
		for _, n := range c.NATS {
			if err := os.WriteFile(filepath.Join(n.dir, "nats.conf"), []byte(c.natsConfig(n)), 0o600); err != nil {
				c.t.Fatal(err)
			}
		}
		if err := c.startNodes(); err != nil {
			if attempt < 3 && strings.Contains(err.Error(), "address already in use") {
				c.t.Logf("NATS port taken, new ports: %v", err)
				continue
			}
			c.t.Fatal(err)
		}
		break
	}
	c.WaitNATS()
}

// startNodes starts every node; on an error it kills those it started.
func (c *Cluster) startNodes() error {
	for i, n := range c.NATS {
		if err := n.start(); err != nil {
			for _, m := range c.NATS[:i+1] {
				if m.Running() {
					m.Kill()
				}
			}
			return err
		}
	}
	return nil
}

// natsConfig is node n's configuration file.
func (c *Cluster) natsConfig(n *Node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %s\nhost: 127.0.0.1\nport: %d\nhttp: \"127.0.0.1:%d\"\n", n.Name, n.ClientPort, n.HTTPPort)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n}\n", filepath.Join(n.dir, "jetstream"))
	// A frozen client or route is dropped after about 4–6s, not minutes
	// (docs/operations.md).
	b.WriteString("ping_interval: \"2s\"\nping_max: 2\n")
	if len(c.NATS) > 1 {
		var routes []string
		for _, m := range c.NATS {
			if m != n {
				routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats-route://127.0.0.1:%d", m.ClusterPort)))
			}
		}
		fmt.Fprintf(&b, "cluster {\n  name: %q\n  listen: \"127.0.0.1:%d\"\n  routes: [%s]\n}\n",
			ClusterName, n.ClusterPort, strings.Join(routes, ", "))
	}
	b.WriteString(c.opts.NATSConfig)
	return b.String()
}

// awaitReady waits until the node logs that it is ready.
func (n *Node) awaitReady() error {
	_, err := n.waitOutput(natsReadyRE)
	return err
}

// WaitNATS waits until every running node is healthy (JetStream included)
// and routed to every other running node.
func (c *Cluster) WaitNATS() {
	c.t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for _, n := range c.NATS {
		if !n.Running() || n.Stopped() {
			continue
		}
		for {
			err := c.nodeFormed(n)
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("NATS cluster not formed within %s: %v", readyTimeout, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// nodeFormed checks that n is healthy and routed to every other running
// node.
func (c *Cluster) nodeFormed(n *Node) error {
	if err := n.monitor("/healthz", nil); err != nil {
		return err
	}
	var rz struct {
		Routes []struct {
			RemoteName string `json:"remote_name"`
		} `json:"routes"`
	}
	if err := n.monitor("/routez", &rz); err != nil {
		return err
	}
	routed := make(map[string]bool)
	for _, r := range rz.Routes {
		routed[r.RemoteName] = true
	}
	for _, m := range c.NATS {
		if m != n && m.Running() && !m.Stopped() && !routed[m.Name] {
			return fmt.Errorf("%s has no route to %s", n.Name, m.Name)
		}
	}
	return nil
}

// knowsWorker reports whether a subscription to demo requests is known to
// the node: a local one, or one a route brought.
func (n *Node) knowsWorker() (bool, error) {
	subject := subjects.MustSpace("fabric").Request(demo.Echo.Type())
	var sz struct {
		Total int `json:"total"`
	}
	if err := n.monitor("/subsz?subs=1&test="+subject, &sz); err != nil || sz.Total > 0 {
		return sz.Total > 0, err
	}
	var rz struct {
		Routes []struct {
			Subs []string `json:"subscriptions_list"`
		} `json:"routes"`
	}
	if err := n.monitor("/routez?subs=1", &rz); err != nil {
		return false, err
	}
	for _, r := range rz.Routes {
		if slices.Contains(r.Subs, subject) {
			return true, nil
		}
	}
	return false, nil
}

// Restart starts the node again, on its ports and with its store, and waits
// until it has rejoined the cluster.
func (n *Node) Restart() {
	n.c.t.Helper()
	n.Process.Restart()
	n.c.WaitNATS()
}

// monitor GETs path on the node's monitoring port and decodes the JSON
// answer into v (if not nil); a status other than 200 is an error.
func (n *Node) monitor(path string, v any) error {
	resp, err := monitorClient.Get("http://127.0.0.1:" + strconv.Itoa(n.HTTPPort) + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", n.Name, path, resp.Status)
	}
	if v == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// monitorClient scrapes monitoring endpoints without keeping connections
// open, so that a scrape leaves no file descriptor behind in the process it
// measures.
var monitorClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment
// ago.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}
