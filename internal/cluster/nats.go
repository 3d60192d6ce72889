package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/internal/topology"
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
func (n *Node) URL() string { return n.spec().URL() }

// spec is where the node listens and stores.
func (n *Node) spec() topology.Node {
	return topology.Node{Name: n.Name, ClientPort: n.ClientPort, ClusterPort: n.ClusterPort, HTTPPort: n.HTTPPort,
		StoreDir: filepath.Join(n.dir, "jetstream")}
}

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

// startNATS starts the nodes in their directories and waits until they form
// a cluster. A port another process took between its choice and its use
// makes the nodes start again, on new ports.
func (c *Cluster) startNATS(bin string, dirs []string) {
	c.t.Helper()
	for attempt := 1; ; attempt++ {
		ports, err := topology.FreePorts("127.0.0.1", 3*len(dirs))
		if err != nil {
			c.t.Fatal(err)
		}
		c.NATS = make([]*Node, len(dirs))
		for i, dir := range dirs {
			n := &Node{Index: i, ClientPort: ports[3*i], ClusterPort: ports[3*i+1], HTTPPort: ports[3*i+2], dir: dir}
			name := fmt.Sprintf("n%d", i+1)
			n.Process = c.newProcess(name, bin, []string{"nats-server", "-c", filepath.Join(dir, "nats.conf")})
			n.ready = func() error { return n.awaitReady(len(dirs) > 1) }
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

// startNodes starts every node; on an error it abandons those it started,
// the one that failed included.
func (c *Cluster) startNodes() error {
	for i, n := range c.NATS {
		if err := n.start(); err != nil {
			for _, m := range c.NATS[:i+1] {
				m.abandon()
			}
			return err
		}
	}
	return nil
}

// natsConfig is node n's configuration file.
func (c *Cluster) natsConfig(n *Node) string {
	nodes := make([]topology.Node, len(c.NATS))
	for i, m := range c.NATS {
		nodes[i] = m.spec()
	}
	return topology.Config(n.spec(), ClusterName, nodes, c.opts.NATSConfig)
}

// awaitReady waits until the node logs that it listens for clients and,
// clustered, for routes: a route port taken by another process shows here,
// as an exit.
func (n *Node) awaitReady(clustered bool) error {
	_, err := n.waitOutput(topology.NATSReady)
	if err == nil && clustered {
		_, err = n.waitOutput(topology.NATSRoutesReady)
	}
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
	var peers []string
	for _, m := range c.NATS {
		if m != n && m.Running() && !m.Stopped() {
			peers = append(peers, m.Name)
		}
	}
	return topology.Formed(n.spec(), peers)
}

// knowsWorker reports whether a subscription to demo requests is known to
// the node: a local one, or one a route brought.
func (n *Node) knowsWorker() (bool, error) {
	return topology.KnowsWorker(n.spec(), subjects.MustSpace("fabric").Request(demo.Echo.Type()))
}

// Restart starts the node again, on its ports and with its store, and waits
// until it has rejoined the cluster.
func (n *Node) Restart() {
	n.c.t.Helper()
	n.Process.Restart()
	n.c.WaitNATS()
}
