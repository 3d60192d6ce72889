package topology

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Node is one NATS server of a cluster: where it listens and stores.
type Node struct {
	Name        string // n1, n2…: its server name, unique in the cluster
	Host        string // "" means 127.0.0.1
	ClientPort  int
	ClusterPort int    // routes to the other nodes
	HTTPPort    int    // monitoring: /healthz, /routez, /subsz…
	StoreDir    string // JetStream's store
}

func (n Node) host() string {
	if n.Host == "" {
		return "127.0.0.1"
	}
	return n.Host
}

func (n Node) hostPort(port int) string { return net.JoinHostPort(n.host(), strconv.Itoa(port)) }

// URL returns the node's client URL.
func (n Node) URL() string { return "nats://" + n.hostPort(n.ClientPort) }

// MonitorURL returns the base URL of the node's monitoring endpoints.
func (n Node) MonitorURL() string { return "http://" + n.hostPort(n.HTTPPort) }

// URLs returns the nodes' client URLs, comma-separated, as --nats takes them.
func URLs(nodes []Node) string {
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.URL()
	}
	return strings.Join(urls, ",")
}

// Config returns the configuration file of n, one of nodes, in the cluster
// named cluster; extra is appended (users and permissions, say). A single
// node has no cluster block.
//
// Its settings are deploy/nats/nats.conf's where they matter to the fabric:
// a frozen client or route is dropped after 4–6s (ping every 2s, 2 missed),
// and a message may carry a 1 MiB frame and its headers.
func Config(n Node, cluster string, nodes []Node, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %s\nhost: %q\nport: %d\nhttp: %q\n", n.Name, n.host(), n.ClientPort, n.hostPort(n.HTTPPort))
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n}\n", n.StoreDir)
	b.WriteString("ping_interval: \"2s\"\nping_max: 2\nmax_payload: 2MB\n")
	if len(nodes) > 1 {
		var routes []string
		for _, m := range nodes {
			if m.Name != n.Name {
				routes = append(routes, strconv.Quote("nats-route://"+m.hostPort(m.ClusterPort)))
			}
		}
		fmt.Fprintf(&b, "cluster {\n  name: %q\n  listen: %q\n  routes: [%s]\n}\n",
			cluster, n.hostPort(n.ClusterPort), strings.Join(routes, ", "))
	}
	b.WriteString(extra)
	return b.String()
}

// Formed returns nil once n is healthy (JetStream included) and routed to
// every node named in peers.
func Formed(n Node, peers []string) error {
	if err := n.Monitor("/healthz", nil); err != nil {
		return err
	}
	var rz struct {
		Routes []struct {
			RemoteName string `json:"remote_name"`
		} `json:"routes"`
	}
	if err := n.Monitor("/routez", &rz); err != nil {
		return err
	}
	routed := make(map[string]bool, len(rz.Routes))
	for _, r := range rz.Routes {
		routed[r.RemoteName] = true
	}
	for _, p := range peers {
		if p != n.Name && !routed[p] {
			return fmt.Errorf("%s has no route to %s", n.Name, p)
		}
	}
	return nil
}

// KnowsWorker reports whether n knows a subscription to subject: a local
// one, or one a route brought. Once every node knows a worker's, a request
// on any node finds it rather than no_responders.
func KnowsWorker(n Node, subject string) (bool, error) {
	var sz struct {
		Total int `json:"total"`
	}
	if err := n.Monitor("/subsz?subs=1&test="+subject, &sz); err != nil || sz.Total > 0 {
		return sz.Total > 0, err
	}
	var rz struct {
		Routes []struct {
			Subs []string `json:"subscriptions_list"`
		} `json:"routes"`
	}
	if err := n.Monitor("/routez?subs=1", &rz); err != nil {
		return false, err
	}
	for _, r := range rz.Routes {
		if slices.Contains(r.Subs, subject) {
			return true, nil
		}
	}
	return false, nil
}

// Monitor GETs path on the node's monitoring port and decodes the JSON
// answer into v (if not nil); a status other than 200 is an error.
func (n Node) Monitor(path string, v any) error {
	return Get(n.MonitorURL()+path, v)
}

// Get GETs url and decodes the JSON answer into v (if not nil); a status
// other than 200 is an error.
func Get(url string, v any) error {
	resp, err := MonitorClient.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if v == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// MonitorClient is the HTTP client of [Get]: it scrapes monitoring
// endpoints without keeping connections open, so that a scrape leaves no file descriptor behind in the process it
// measures.
var MonitorClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// FreePorts returns n distinct ports that were free on host a moment ago.
// Another process may take one before it is used: a caller that sees
// "address already in use" asks again.
func FreePorts(host string, n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}
