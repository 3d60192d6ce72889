package compose_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// root is the repository, seen from this package's directory.
const root = "../.."

// Service names the tests expect in docker-compose.yml.
var (
	natsNodes       = []string{"n1", "n2", "n3"}
	gatewayServices = []string{"gateway-1", "gateway-2"}
	workerServices  = []string{"agents", "worker"}
	fabricServices  = []string{"agents", "gateway-1", "gateway-2", "worker"}
	// observability is the profile of Prometheus and Grafana; the rest
	// runs by default.
	observability    = "observability"
	profiledServices = []string{"grafana", "prometheus"}
	defaultServices  = []string{"agents", "gateway-1", "gateway-2", "jaeger", "lb", "n1", "n2", "n3", "worker"}
)

// rootPath returns the absolute path of a file of the repository.
func rootPath(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// loadProject loads docker-compose.yml as `docker compose --profile …`
// would, with the given profiles ("*": all), interpolating variables with
// their defaults only: neither the environment nor a .env file changes
// what the tests see.
func loadProject(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	dir := rootPath(t, ".")
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "docker-compose.yml")},
		cli.WithWorkingDirectory(dir), cli.WithProfiles(profiles))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return p
}

// service returns a service of p, failing the test if it is missing.
func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %q", name)
	}
	return s
}

// flagValue returns the value of --name (or -name, or --name=v) in a
// command line.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		for _, dash := range []string{"--", "-"} {
			switch {
			case a == dash+name && i+1 < len(args):
				return args[i+1], true
			case strings.HasPrefix(a, dash+name+"="):
				return strings.TrimPrefix(a, dash+name+"="), true
			}
		}
	}
	return "", false
}

// hasBoolFlag reports whether a boolean flag is on in a command line.
func hasBoolFlag(args []string, name string) bool {
	for _, a := range args {
		for _, dash := range []string{"--", "-"} {
			if a == dash+name || a == dash+name+"=true" {
				return true
			}
		}
	}
	return false
}

// env returns a service's environment variable.
func env(s types.ServiceConfig, name string) (string, bool) {
	v, ok := s.Environment[name]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

// portOf returns the port of a listen address such as ":8080".
func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return port
}

// listenPort returns the port a fabric service serves HTTP on: the
// gateway's --listen (default :8080), a worker's --metrics-listen.
func listenPort(t *testing.T, s types.ServiceConfig) string {
	t.Helper()
	switch s.Command[0] {
	case "gateway":
		addr, ok := flagValue(s.Command, "listen")
		if !ok {
			addr = ":8080"
		}
		return portOf(t, addr)
	case "worker":
		addr, ok := flagValue(s.Command, "metrics-listen")
		if !ok {
			t.Fatalf("%s: no --metrics-listen: the worker serves no /metrics and no /healthz", s.Name)
		}
		return portOf(t, addr)
	}
	t.Fatalf("%s: unknown fabric command %q", s.Name, s.Command[0])
	return ""
}

// mount returns the service's volume mounted at target.
func mount(t *testing.T, s types.ServiceConfig, target string) types.ServiceVolumeConfig {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Target == target {
			return v
		}
	}
	t.Fatalf("%s: nothing is mounted at %s", s.Name, target)
	return types.ServiceVolumeConfig{}
}

// bindOf returns the target where a service bind-mounts a file or folder
// of the repository.
func bindOf(t *testing.T, s types.ServiceConfig, rel string) string {
	t.Helper()
	src := rootPath(t, rel)
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == src {
			if !v.ReadOnly {
				t.Errorf("%s: %s is mounted read-write", s.Name, rel)
			}
			return v.Target
		}
	}
	t.Fatalf("%s does not mount %s", s.Name, rel)
	return ""
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestServices(t *testing.T) {
	all := loadProject(t, "*")
	want := append(slices.Clone(defaultServices), profiledServices...)
	slices.Sort(want)
	if got := sortedKeys(all.Services); !slices.Equal(got, want) {
		t.Errorf("services %v, want %v", got, want)
	}
	// Without a profile: everything but Prometheus and Grafana, Jaeger
	// included.
	if got := sortedKeys(loadProject(t).Services); !slices.Equal(got, defaultServices) {
		t.Errorf("services without a profile %v, want %v", got, defaultServices)
	}
	for _, name := range profiledServices {
		if s := service(t, all, name); !slices.Equal(s.Profiles, []string{observability}) {
			t.Errorf("%s: profiles %v, want [%s]", name, s.Profiles, observability)
		}
	}
	// Every file a service mounts from the repository is there.
	for _, s := range all.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s mounts %s: %v", s.Name, v.Source, err)
			}
		}
	}
}

// TestFabricServices checks what every gateway and worker shares: one image
// built from the Dockerfile, all NATS nodes, traces to Jaeger under a name
// of its own, a healthcheck the image can run.
func TestFabricServices(t *testing.T) {
	p := loadProject(t, "*")
	var built []string
	for _, s := range p.Services {
		if s.Build != nil {
			built = append(built, s.Name)
		}
	}
	slices.Sort(built)
	if !slices.Equal(built, fabricServices) {
		t.Errorf("services built from the Dockerfile: %v, want %v", built, fabricServices)
	}
	df := parseDockerfile(t)
	jaeger := service(t, p, "jaeger")
	if len(jaeger.Profiles) != 0 {
		t.Errorf("jaeger is in profiles %v: it belongs to the default set", jaeger.Profiles)
	}
	image := ""
	names := map[string]string{}
	for _, name := range fabricServices {
		s := service(t, p, name)
		if image == "" {
			image = s.Image
		}
		if s.Image == "" || s.Image != image {
			t.Errorf("%s: image %q, want the one image %q every fabric service runs", name, s.Image, image)
		}
		if s.Build == nil || s.Build.Context != rootPath(t, ".") || s.Build.Dockerfile != "Dockerfile" {
			t.Errorf("%s: build %+v, want the repository's Dockerfile", name, s.Build)
		}
		if len(s.Entrypoint) != 0 {
			t.Errorf("%s: entrypoint %v overrides the image's fabric", name, s.Entrypoint)
		}

		// NATS: every node, at its client port.
		urls, ok := flagValue(s.Command, "nats")
		if !ok {
			t.Errorf("%s: no --nats", name)
		}
		var hosts []string
		for _, u := range strings.Split(urls, ",") {
			pu, err := url.Parse(strings.TrimSpace(u))
			if err != nil || pu.Scheme != "nats" || pu.Port() != "4222" {
				t.Errorf("%s: NATS URL %q, want nats://<node>:4222", name, u)
				continue
			}
			hosts = append(hosts, pu.Hostname())
		}
		slices.Sort(hosts)
		if !slices.Equal(hosts, natsNodes) {
			t.Errorf("%s: --nats names %v, want every node %v", name, hosts, natsNodes)
		}
		for _, n := range natsNodes {
			if d, ok := s.DependsOn[n]; !ok || d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s: depends_on %s %+v, want condition service_healthy", name, n, d)
			}
		}

		// Traces: OTLP/HTTP to the jaeger service.
		endpoint, _ := env(s, "OTEL_EXPORTER_OTLP_ENDPOINT")
		if proto, ok := env(s, "OTEL_EXPORTER_OTLP_PROTOCOL"); ok && proto != "http/protobuf" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_PROTOCOL=%s; the tests expect OTLP/HTTP", name, proto)
		}
		if u, err := url.Parse(endpoint); err != nil || u.Scheme != "http" || u.Hostname() != "jaeger" || u.Port() != "4318" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT=%q, want Jaeger's OTLP/HTTP receiver http://jaeger:4318", name, endpoint)
		}
		if _, ok := s.DependsOn["jaeger"]; !ok {
			t.Errorf("%s: does not depend on jaeger: its first spans would find no receiver", name)
		}
		svc, _ := env(s, "OTEL_SERVICE_NAME")
		if svc == "" {
			t.Errorf("%s: no OTEL_SERVICE_NAME", name)
		} else if other, dup := names[svc]; dup {
			t.Errorf("%s and %s both trace as %q", other, name, svc)
		}
		names[svc] = name

		// A healthcheck on the service's own HTTP listener, run by the
		// image's fabric binary: the image has no shell, curl or wget.
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 4 {
			t.Errorf("%s: healthcheck %+v, want [CMD %s health URL]", name, hc, df.entrypoint)
			continue
		}
		if hc.Test[0] != "CMD" || hc.Test[1] != df.entrypoint || hc.Test[2] != "health" {
			t.Errorf("%s: healthcheck %v, want [CMD %s health URL]", name, hc.Test, df.entrypoint)
		}
		wantPath := "/healthz"
		if s.Command[0] == "gateway" {
			wantPath = "/readyz" // 503 while draining: the load balancer moves on
		}
		if u, err := url.Parse(hc.Test[3]); err != nil || u.Hostname() != "localhost" || u.Port() != listenPort(t, s) || u.Path != wantPath {
			t.Errorf("%s: healthcheck probes %q, want http://localhost:%s%s", name, hc.Test[3], listenPort(t, s), wantPath)
		}
	}
}

// TestGateways checks what lets any gateway resume any session: durable
// mode with a replica on every node, and one resume secret.
func TestGateways(t *testing.T) {
	p := loadProject(t)
	var gateways []string
	for _, s := range p.Services {
		if len(s.Command) > 0 && s.Command[0] == "gateway" {
			gateways = append(gateways, s.Name)
		}
	}
	slices.Sort(gateways)
	if !slices.Equal(gateways, gatewayServices) {
		t.Fatalf("services running fabric gateway: %v, want %v", gateways, gatewayServices)
	}
	secret := ""
	for i, name := range gatewayServices {
		s := service(t, p, name)
		if !hasBoolFlag(s.Command, "durable") {
			t.Errorf("%s: no --durable: a session would not resume on the other gateway with its events", name)
		}
		if r, _ := flagValue(s.Command, "durable-replicas"); r != strconv.Itoa(len(natsNodes)) {
			t.Errorf("%s: --durable-replicas %q, want %d (a replica on every node)", name, r, len(natsNodes))
		}
		if _, ok := flagValue(s.Command, "resume-secret"); ok {
			t.Errorf("%s: --resume-secret on the command line, where ps shows it; use FABRIC_RESUME_SECRET", name)
		}
		v, _ := env(s, "FABRIC_RESUME_SECRET")
		if v == "" {
			t.Errorf("%s: no FABRIC_RESUME_SECRET", name)
		}
		if i == 0 {
			secret = v
		} else if v != secret {
			t.Errorf("%s: FABRIC_RESUME_SECRET %q differs from %s's %q", name, v, gatewayServices[0], secret)
		}
		if len(s.Ports) != 0 {
			t.Errorf("%s publishes %+v: clients come through the load balancer", name, s.Ports)
		}
	}
	// The default is a placeholder that says so.
	if !strings.Contains(secret, "CHANGE-ME") {
		t.Errorf("the default resume secret %q is not marked CHANGE-ME", secret)
	}
	// FABRIC_RESUME_SECRET from the environment reaches both.
	t.Setenv("FABRIC_RESUME_SECRET", "s3cret")
	dir := rootPath(t, ".")
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "docker-compose.yml")}, cli.WithWorkingDirectory(dir), cli.WithOsEnv)
	if err != nil {
		t.Fatal(err)
	}
	withEnv, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range gatewayServices {
		if v, _ := env(withEnv.Services[name], "FABRIC_RESUME_SECRET"); v != "s3cret" {
			t.Errorf("%s: FABRIC_RESUME_SECRET %q with FABRIC_RESUME_SECRET=s3cret set", name, v)
		}
	}
}

// TestWorkersScale checks that `docker compose up --scale worker=5` can
// start five of each worker service: no fixed name, no host port.
func TestWorkersScale(t *testing.T) {
	p := loadProject(t)
	for _, name := range workerServices {
		s := service(t, p, name)
		if s.Command[0] != "worker" {
			t.Errorf("%s: command %v, want fabric worker", name, s.Command)
		}
		if s.ContainerName != "" {
			t.Errorf("%s: container_name %q: a second replica could not start", name, s.ContainerName)
		}
		for _, port := range s.Ports {
			if port.Published != "" {
				t.Errorf("%s: host port %s: a second replica could not bind it", name, port.Published)
			}
		}
	}
	if !hasBoolFlag(service(t, p, "worker").Command, "demo") || !hasBoolFlag(service(t, p, "agents").Command, "agents") {
		t.Errorf("worker should serve --demo and agents --agents")
	}
}

// TestDependsOn checks that every wait on a service's health waits on a
// service that has a healthcheck (compose would wait forever otherwise),
// and that the services that must be healthy have one.
func TestDependsOn(t *testing.T) {
	p := loadProject(t, "*")
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on unknown %s", s.Name, dep)
				continue
			}
			if d.Condition == types.ServiceConditionHealthy && (target.HealthCheck == nil || target.HealthCheck.Disable || len(target.HealthCheck.Test) == 0) {
				t.Errorf("%s waits for %s to be healthy, which has no healthcheck", s.Name, dep)
			}
		}
	}
	for _, name := range append(append(slices.Clone(natsNodes), fabricServices...), "lb", "prometheus") {
		if hc := service(t, p, name).HealthCheck; hc == nil || hc.Disable || len(hc.Test) == 0 {
			t.Errorf("%s has no healthcheck", name)
		}
	}
	lb := service(t, p, "lb")
	for _, g := range gatewayServices {
		if d := lb.DependsOn[g]; d.Condition != types.ServiceConditionHealthy {
			t.Errorf("lb: depends_on %s %+v, want service_healthy", g, d)
		}
	}
	if d := service(t, p, "grafana").DependsOn["prometheus"]; d.Condition != types.ServiceConditionHealthy {
		t.Errorf("grafana: depends_on prometheus %+v, want service_healthy", d)
	}
}

// TestJaeger checks that Jaeger receives OTLP and shows its UI on the host.
func TestJaeger(t *testing.T) {
	s := service(t, loadProject(t), "jaeger")
	if !strings.HasPrefix(s.Image, "jaegertracing/jaeger:2.") {
		t.Errorf("jaeger image %q, want jaegertracing/jaeger:2.x (OTLP on 4317 and 4318)", s.Image)
	}
	if v, _ := env(s, "JAEGER_LISTEN_HOST"); v != "0.0.0.0" {
		t.Errorf("JAEGER_LISTEN_HOST=%q: the receivers must listen beyond localhost", v)
	}
	ui := false
	for _, port := range s.Ports {
		ui = ui || (port.Target == 16686 && port.Published == "16686")
	}
	if !ui {
		t.Errorf("jaeger ports %+v: the UI should be on localhost:16686", s.Ports)
	}
}
