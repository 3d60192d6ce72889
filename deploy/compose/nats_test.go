package compose_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
)

// natsConfigFile is every NATS node's configuration.
const natsConfigFile = "deploy/nats/nats.conf"

// natsOptions parses deploy/nats/nats.conf with nats-server's own parser,
// with the environment of the compose service s (NATS_SERVER_NAME).
func natsOptions(t *testing.T, s types.ServiceConfig) *server.Options {
	t.Helper()
	for k, v := range s.Environment {
		if v != nil {
			t.Setenv(k, *v)
		}
	}
	opts, err := server.ProcessConfigFile(rootPath(t, natsConfigFile))
	if err != nil {
		t.Fatalf("%s: %v", natsConfigFile, err)
	}
	return opts
}

// TestNATSNodes checks each node's service and configuration: the image
// of the nats-server go.mod tests against, the config mounted where the
// command reads it, a name of its own, routes to every other node,
// JetStream on a volume, fast ping, and a healthcheck on monitoring.
func TestNATSNodes(t *testing.T) {
	p := loadProject(t)
	var nodes []string
	for _, s := range p.Services {
		if strings.HasPrefix(s.Image, "nats:") {
			nodes = append(nodes, s.Name)
		}
	}
	slices.Sort(nodes)
	if !slices.Equal(nodes, natsNodes) {
		t.Fatalf("NATS services %v, want %v", nodes, natsNodes)
	}
	want := "nats:" + strings.TrimPrefix(goModLine(t, "github.com/nats-io/nats-server/v2"), "v") + "-alpine"
	for _, name := range natsNodes {
		s := service(t, p, name)
		if s.Image != want {
			t.Errorf("%s: image %s, want %s: the nats-server of go.mod, which the tests run (alpine: wget for the healthcheck)", name, s.Image, want)
		}
		conf, _ := flagValue(s.Command, "config")
		if target := bindOf(t, s, natsConfigFile); conf != target {
			t.Errorf("%s: --config %q, but %s is mounted at %s", name, conf, natsConfigFile, target)
		}
		opts := natsOptions(t, s)
		if opts.ServerName != name {
			t.Errorf("%s: server_name %q, want the service's name", name, opts.ServerName)
		}
		if opts.Cluster.Name == "" || opts.Cluster.Port == 0 {
			t.Errorf("%s: cluster name %q port %d", name, opts.Cluster.Name, opts.Cluster.Port)
		}
		var routed []string
		for _, r := range opts.Routes {
			if r.Port() != strconv.Itoa(opts.Cluster.Port) {
				t.Errorf("%s: route %s is not to the cluster port %d", name, r, opts.Cluster.Port)
			}
			routed = append(routed, r.Hostname())
		}
		for _, other := range natsNodes {
			if other != name && !slices.Contains(routed, other) {
				t.Errorf("%s: no route to %s (routes %v)", name, other, routed)
			}
		}
		if !opts.JetStream {
			t.Errorf("%s: JetStream is off", name)
		}
		if v := mount(t, s, opts.StoreDir); v.Type != types.VolumeTypeVolume {
			t.Errorf("%s: the JetStream store %s is a %s, want a named volume", name, opts.StoreDir, v.Type)
		}
		if opts.PingInterval != 2*time.Second || opts.MaxPingsOut != 2 {
			t.Errorf("%s: ping_interval %s, ping_max %d; want 2s and 2 (docs/operations.md)", name, opts.PingInterval, opts.MaxPingsOut)
		}
		// A frame of the gateway's largest size, with headers, fits.
		if min := int32(gateway.DefaultMaxFrameBytes + 64<<10); opts.MaxPayload < min {
			t.Errorf("%s: max_payload %d < %d", name, opts.MaxPayload, min)
		}
		if opts.Port != 4222 {
			t.Errorf("%s: client port %d, want 4222 (the fabric services' --nats)", name, opts.Port)
		}
		hc := s.HealthCheck
		if hc == nil || len(hc.Test) == 0 {
			t.Errorf("%s: no healthcheck", name)
		} else if probe := hc.Test[len(hc.Test)-1]; !strings.HasSuffix(probe, fmt.Sprintf(":%d/healthz", opts.HTTPPort)) {
			t.Errorf("%s: healthcheck %v, want a GET of /healthz on the monitoring port %d", name, hc.Test, opts.HTTPPort)
		}
	}
}

// TestNATSConfigFormsACluster starts the three nodes in-process from
// deploy/nats/nats.conf, each with its compose service's environment, on
// free ports instead of the fixed ones (routes rewritten to match), waits
// until each answers /healthz as the compose healthcheck asks, then starts a
// gateway with the durable flags of docker-compose.yml's gateways on them:
// its replicated stream must have a replica on every node.
func TestNATSConfigFormsACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node JetStream cluster")
	}
	p := loadProject(t)
	clusterPorts := freePorts(t, len(natsNodes))
	portOfNode := map[string]int{}
	for i, name := range natsNodes {
		portOfNode[name] = clusterPorts[i]
	}
	var servers []*server.Server
	for _, name := range natsNodes {
		opts := natsOptions(t, service(t, p, name))
		opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
		opts.HTTPHost, opts.HTTPPort = "127.0.0.1", server.RANDOM_PORT
		opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", portOfNode[name]
		opts.StoreDir = t.TempDir()
		opts.NoLog, opts.NoSigs = true, true
		for i, r := range opts.Routes {
			port, ok := portOfNode[r.Hostname()]
			if !ok {
				t.Fatalf("%s: route to %s, which is no node", name, r)
			}
			opts.Routes[i] = &url.URL{Scheme: r.Scheme, Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		go s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		servers = append(servers, s)
	}
	var urls []string
	for i, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("%s not ready", natsNodes[i])
		}
		urls = append(urls, s.ClientURL())
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, s := range servers {
		for {
			status, err := healthz(s)
			if err == nil && status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: /healthz %d, %v: the cluster did not form", natsNodes[i], status, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	gw := service(t, p, gatewayServices[0])
	r, _ := flagValue(gw.Command, "durable-replicas")
	replicas, err := strconv.Atoi(r)
	if err != nil {
		t.Fatalf("%s: --durable-replicas %q: %v", gw.Name, r, err)
	}
	nc, err := nats.Connect(strings.Join(urls, ","), natsAuth(gw)...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	g, err := gateway.New(nc, gateway.Config{Durable: &gateway.DurableConfig{Replicas: replicas}}, gateway.WithLogger(fabrictest.Logger(t)))
	if err != nil {
		t.Fatalf("a gateway with --durable-replicas %d on the cluster: %v", replicas, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer g.Shutdown(ctx)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "FABRIC_EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	peers := []string{info.Cluster.Leader}
	for _, r := range info.Cluster.Replicas {
		peers = append(peers, r.Name)
	}
	slices.Sort(peers)
	if !slices.Equal(peers, natsNodes) {
		t.Errorf("FABRIC_EVENTS is on %v, want every node %v", peers, natsNodes)
	}
}

// healthz GETs a server's /healthz, as the compose healthcheck does.
func healthz(s *server.Server) (int, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + s.MonitorAddr().String() + "/healthz")
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment
// ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
