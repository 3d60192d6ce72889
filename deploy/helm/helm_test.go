package helm_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/seed82ac63c1/fabric/auth"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
)

const (
	chartDir  = "fabric"
	release   = "prod"
	namespace = "fabric"
)

// helmBinary returns the helm of bin/ (make tools), else the one on PATH.
func helmBinary(t *testing.T) string {
	t.Helper()
	if p, err := filepath.Abs(filepath.Join("..", "..", "bin", "helm")); err == nil {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	msg := "no helm in bin/ or on PATH: `make tools` installs the pinned version into bin/"
	if os.Getenv("FABRIC_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg + " (FABRIC_REQUIRE_TOOLS=1)")
	}
	t.Skip(msg)
	return ""
}

func runHelm(t *testing.T, helm string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(helm, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// flagInfo is one flag of a fabric command, from its -h output.
type flagInfo struct {
	takesValue bool
	def        string
}

var (
	usageFlagRE    = regexp.MustCompile(`^  -([a-z0-9-]+)(?: (\S+))?$`)
	usageDefaultRE = regexp.MustCompile(`\(default ("[^"]*"|[^)]*)\)`)

	fabricOnce  sync.Once
	fabricFlags map[string]map[string]flagInfo // command → flag → info
	fabricErr   error
)

// commandFlags builds the fabric binary once and returns the flags of
// `fabric gateway` and `fabric worker` as their -h lists them.
func commandFlags(t *testing.T) map[string]map[string]flagInfo {
	t.Helper()
	fabricOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fabric-helm-test")
		if err != nil {
			fabricErr = err
			return
		}
		defer os.RemoveAll(dir)
		bin, err := fabrictest.BuildFabric(dir)
		if err != nil {
			fabricErr = fmt.Errorf("building fabric: %w", err)
			return
		}
		fabricFlags = map[string]map[string]flagInfo{}
		for _, command := range []string{"gateway", "worker"} {
			out, err := exec.Command(bin, command, "-h").CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				fabricErr = fmt.Errorf("fabric %s -h: %v, want exit 2\n%s", command, err, out)
				return
			}
			flags := map[string]flagInfo{}
			var last string
			for line := range strings.SplitSeq(string(out), "\n") {
				if m := usageFlagRE.FindStringSubmatch(line); m != nil {
					last = m[1]
					flags[last] = flagInfo{takesValue: m[2] != ""}
					continue
				}
				if m := usageDefaultRE.FindStringSubmatch(line); m != nil && last != "" && strings.HasPrefix(line, "    \t") {
					f := flags[last]
					f.def = strings.Trim(m[1], `"`)
					flags[last] = f
				}
			}
			if len(flags) < 5 {
				fabricErr = fmt.Errorf("fabric %s -h lists %d flags:\n%s", command, len(flags), out)
				return
			}
			fabricFlags[command] = flags
		}
	})
	if fabricErr != nil {
		t.Fatal(fabricErr)
	}
	return fabricFlags
}

// parseArgs reads a container's args as fabric does: the subcommand, then
// --name=value, --name value, or --name for a flag that takes no value. It
// returns the flags given, and an error for each argument fabric would
// refuse.
func parseArgs(args []string, known map[string]flagInfo) (map[string]string, []error) {
	got := map[string]string{}
	var errs []error
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			errs = append(errs, fmt.Errorf("argument %q is not a flag", a))
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f, ok := known[name]
		if !ok {
			errs = append(errs, fmt.Errorf("--%s is no flag of fabric", name))
			continue
		}
		if f.takesValue && !hasValue {
			if i+1 == len(args) {
				errs = append(errs, fmt.Errorf("--%s has no value", name))
				continue
			}
			i++
			value = args[i]
		}
		if _, dup := got[name]; dup {
			errs = append(errs, fmt.Errorf("--%s given twice", name))
		}
		got[name] = value
	}
	return got, errs
}

// flagsOf returns the fabric flags a Deployment's container is given
// (fabricContainer reports the bad ones).
func flagsOf(t *testing.T, d *appsv1.Deployment) map[string]string {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	given, _ := parseArgs(c.Args[1:], commandFlags(t)[c.Args[0]])
	return given
}

// flagDuration is a duration flag's value: given, else its default.
func flagDuration(t *testing.T, where string, given map[string]string, known map[string]flagInfo, name string) time.Duration {
	t.Helper()
	v, ok := given[name]
	if !ok {
		v = known[name].def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: --%s %q: %v", where, name, v, err)
	}
	return d
}

// servedPaths returns the GET paths a Go file's mux serves.
func servedPaths(t *testing.T, file string) []string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", file))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, m := range regexp.MustCompile(`mux\.Handle(?:Func)?\("GET (/[^"]*)"`).FindAllStringSubmatch(string(src), -1) {
		paths = append(paths, m[1])
	}
	if len(paths) == 0 {
		t.Fatalf("%s: found no mux.Handle(\"GET /…\")", file)
	}
	return paths
}

// Custom resources the chart renders, with the fields it uses: decoded
// strictly like the rest, a misspelt field fails.
type (
	scaledObject struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              struct {
			ScaleTargetRef struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Name       string `json:"name"`
			} `json:"scaleTargetRef"`
			MinReplicaCount *int32 `json:"minReplicaCount"`
			MaxReplicaCount *int32 `json:"maxReplicaCount"`
			PollingInterval *int32 `json:"pollingInterval"`
			CooldownPeriod  *int32 `json:"cooldownPeriod"`
			Triggers        []struct {
				Type     string            `json:"type"`
				Metadata map[string]string `json:"metadata"`
			} `json:"triggers"`
		} `json:"spec"`
	}
	serviceMonitor struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              struct {
			Selector  metav1.LabelSelector `json:"selector"`
			Endpoints []struct {
				Port          string `json:"port"`
				Path          string `json:"path"`
				Interval      string `json:"interval"`
				ScrapeTimeout string `json:"scrapeTimeout"`
			} `json:"endpoints"`
		} `json:"spec"`
	}
)

// objects is a rendered chart, by kind.
type objects struct {
	deployments     []*appsv1.Deployment
	services        []*corev1.Service
	configMaps      []*corev1.ConfigMap
	secrets         []*corev1.Secret
	serviceAccounts []*corev1.ServiceAccount
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	pdbs            []*policyv1.PodDisruptionBudget
	netpols         []*networkingv1.NetworkPolicy
	ingresses       []*networkingv1.Ingress
	scaledObjects   []*scaledObject
	serviceMonitors []*serviceMonitor
}

func (o *objects) count() map[string]int {
	return map[string]int{
		"Deployment": len(o.deployments), "Service": len(o.services), "ConfigMap": len(o.configMaps),
		"Secret": len(o.secrets), "ServiceAccount": len(o.serviceAccounts), "HorizontalPodAutoscaler": len(o.hpas),
		"PodDisruptionBudget": len(o.pdbs), "NetworkPolicy": len(o.netpols), "Ingress": len(o.ingresses),
		"ScaledObject": len(o.scaledObjects), "ServiceMonitor": len(o.serviceMonitors),
	}
}

// strictDecode decodes one YAML document into v, refusing unknown fields.
func strictDecode(doc []byte, v any) error {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// decodeAll splits helm template's output into documents and decodes each
// into its API type.
func decodeAll(t *testing.T, out []byte) *objects {
	t.Helper()
	o := &objects{}
	for i, doc := range docSeparator.Split(string(out), -1) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, doc)
		}
		if tm.Kind == "" && tm.APIVersion == "" {
			continue // comments only
		}
		var v any
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			x := new(appsv1.Deployment)
			o.deployments, v = append(o.deployments, x), x
		case "v1 Service":
			x := new(corev1.Service)
			o.services, v = append(o.services, x), x
		case "v1 ConfigMap":
			x := new(corev1.ConfigMap)
			o.configMaps, v = append(o.configMaps, x), x
		case "v1 Secret":
			x := new(corev1.Secret)
			o.secrets, v = append(o.secrets, x), x
		case "v1 ServiceAccount":
			x := new(corev1.ServiceAccount)
			o.serviceAccounts, v = append(o.serviceAccounts, x), x
		case "autoscaling/v2 HorizontalPodAutoscaler":
			x := new(autoscalingv2.HorizontalPodAutoscaler)
			o.hpas, v = append(o.hpas, x), x
		case "policy/v1 PodDisruptionBudget":
			x := new(policyv1.PodDisruptionBudget)
			o.pdbs, v = append(o.pdbs, x), x
		case "networking.k8s.io/v1 NetworkPolicy":
			x := new(networkingv1.NetworkPolicy)
			o.netpols, v = append(o.netpols, x), x
		case "networking.k8s.io/v1 Ingress":
			x := new(networkingv1.Ingress)
			o.ingresses, v = append(o.ingresses, x), x
		case "keda.sh/v1alpha1 ScaledObject":
			x := new(scaledObject)
			o.scaledObjects, v = append(o.scaledObjects, x), x
		case "monitoring.coreos.com/v1 ServiceMonitor":
			x := new(serviceMonitor)
			o.serviceMonitors, v = append(o.serviceMonitors, x), x
		default:
			t.Fatalf("document %d: %s %s: a kind this test does not know; add it\n%s", i, tm.APIVersion, tm.Kind, doc)
		}
		if err := strictDecode([]byte(doc), v); err != nil {
			t.Fatalf("document %d (%s): %v\n%s", i, tm.Kind, err, doc)
		}
	}
	return o
}

func selects(sel *metav1.LabelSelector, labels map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return !s.Empty() && s.Matches(labelSet(labels))
}

type labelSet map[string]string

func (l labelSet) Has(k string) bool              { _, ok := l[k]; return ok }
func (l labelSet) Get(k string) string            { return l[k] }
func (l labelSet) Lookup(k string) (string, bool) { v, ok := l[k]; return v, ok }

// component is a Deployment's app.kubernetes.io/component: gateway or worker.
func component(d *appsv1.Deployment) string {
	return d.Spec.Template.Labels["app.kubernetes.io/component"]
}

// chartCase is one rendering of the chart.
type chartCase struct {
	name        string
	values      string // a values file, or ""
	kubeVersion string
	want        map[string]int // objects of each kind
	preStop     bool           // the gateway has a preStop sleep
}

var chartCases = []chartCase{
	{
		name:        "defaults",
		kubeVersion: "1.29.0", // before the kubelet's sleep action
		want: map[string]int{
			"Deployment": 2, "Service": 1, "Secret": 1, "ServiceAccount": 1, "HorizontalPodAutoscaler": 2,
			"PodDisruptionBudget": 1,
		},
	},
	{
		name:        "everything",
		values:      filepath.Join("testdata", "full-values.yaml"),
		kubeVersion: "1.33.0",
		want: map[string]int{
			"Deployment": 3, "Service": 3, "ConfigMap": 1, "ServiceAccount": 1, "HorizontalPodAutoscaler": 1, "PodDisruptionBudget": 1,
			"NetworkPolicy": 3, "Ingress": 1, "ScaledObject": 1, "ServiceMonitor": 1,
		},
		preStop: true,
	},
}

// TestChart lints and renders the chart, decodes every object strictly and
// checks that its pieces fit together and fit the fabric binary.
func TestChart(t *testing.T) {
	helm := helmBinary(t)
	flags := commandFlags(t)
	for _, c := range chartCases {
		t.Run(c.name, func(t *testing.T) {
			var vals []string
			if c.values != "" {
				vals = []string{"--values", c.values}
			}
			runHelm(t, helm, append([]string{"lint", "--strict", chartDir, "--namespace", namespace}, vals...)...)
			out := runHelm(t, helm, append([]string{"template", release, chartDir, "--namespace", namespace, "--kube-version", c.kubeVersion}, vals...)...)
			o := decodeAll(t, out)
			for kind, n := range o.count() {
				if n != c.want[kind] {
					t.Errorf("%d objects of kind %s, want %d", n, kind, c.want[kind])
				}
			}
			checkSecurity(t, o)
			checkGateway(t, o, flags["gateway"], c.preStop)
			checkWorkers(t, o, flags["worker"])
			checkNATS(t, o)
			checkScaling(t, o)
			checkSelectors(t, o)
			checkNetworkPolicies(t, o)
		})
	}
}

// checkSecurity: every pod and container runs as non-root, on a read-only
// root filesystem, with no privilege escalation, no capabilities, the
// runtime's seccomp profile and no service account token.
func checkSecurity(t *testing.T, o *objects) {
	for _, d := range o.deployments {
		spec := d.Spec.Template.Spec
		psc := spec.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			t.Errorf("%s: pod securityContext.runAsNonRoot is not true", d.Name)
		}
		if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
			t.Errorf("%s: pod runs as user 0", d.Name)
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("%s: the service account token is mounted; fabric calls no Kubernetes API", d.Name)
		}
		if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
			t.Errorf("%s: service links on: their FABRIC_* variables can set fabric's flags", d.Name)
		}
		for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
			where := d.Name + "/" + c.Name
			sc := c.SecurityContext
			if sc == nil {
				t.Errorf("%s: no securityContext", where)
				continue
			}
			if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot || sc.RunAsUser != nil && *sc.RunAsUser == 0 {
				t.Errorf("%s: may run as root", where)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: root filesystem is writable", where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", where)
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Errorf("%s: privileged", where)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities %+v, want ALL dropped and none added", where, sc.Capabilities)
			}
			seccomp := sc.SeccompProfile
			if seccomp == nil && psc != nil {
				seccomp = psc.SeccompProfile
			}
			if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: seccomp profile %+v, want RuntimeDefault", where, seccomp)
			}
		}
	}
}

// fabricContainer returns the Deployment's one container and its parsed
// fabric flags, after checking its subcommand, flags and FABRIC_* variables
// against the binary's.
func fabricContainer(t *testing.T, d *appsv1.Deployment, command string, known map[string]flagInfo) (*corev1.Container, map[string]string) {
	t.Helper()
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("%s: %d containers, want 1", d.Name, len(cs))
	}
	c := &cs[0]
	if len(c.Command) != 0 {
		t.Errorf("%s: command %q replaces the image's entrypoint, fabric", d.Name, c.Command)
	}
	if len(c.Args) == 0 || c.Args[0] != command {
		t.Fatalf("%s: args %q, want fabric %s", d.Name, c.Args, command)
	}
	given, errs := parseArgs(c.Args[1:], known)
	for _, err := range errs {
		t.Errorf("%s: %v", d.Name, err)
	}
	for _, e := range c.Env {
		f, ok := strings.CutPrefix(e.Name, "FABRIC_")
		if !ok {
			continue
		}
		name := strings.ReplaceAll(strings.ToLower(f), "_", "-")
		if _, ok := known[name]; !ok {
			t.Errorf("%s: %s is no flag of fabric %s", d.Name, e.Name, command)
		}
		if _, ok := given[name]; ok {
			t.Errorf("%s: --%s given both as a flag and as %s", d.Name, name, e.Name)
		}
	}
	for _, name := range fileFlags {
		if path, ok := given[name]; ok && mountedVolume(d, c, path) == nil {
			t.Errorf("%s: --%s %s is in no mounted volume", d.Name, name, path)
		}
	}
	return c, given
}

// fileFlags name files, which the chart mounts from Secrets and ConfigMaps.
var fileFlags = []string{"nats-creds", "jwt-secret-file", "jwt-public-keys", "jwks-file", "policy"}

// portOf resolves a probe's port to a number of the container's.
func portOf(c *corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// listenPort is the port of a listen address such as ":8080".
func listenPort(t *testing.T, where, addr string) int32 {
	t.Helper()
	_, p, ok := strings.Cut(addr, ":")
	n, err := strconv.Atoi(p)
	if !ok || err != nil {
		t.Fatalf("%s: listen address %q has no port", where, addr)
	}
	return int32(n)
}

// checkProbes: every probe GETs a path the process serves, on the port it
// listens on.
func checkProbes(t *testing.T, where string, c *corev1.Container, served []string, port int32, need ...string) {
	probes := map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe}
	for _, kind := range need {
		if probes[kind] == nil {
			t.Errorf("%s: no %s probe", where, kind)
		}
	}
	for kind, p := range probes {
		if p == nil {
			continue
		}
		if p.HTTPGet == nil {
			t.Errorf("%s: %s probe is not an HTTP GET", where, kind)
			continue
		}
		if !slices.Contains(served, p.HTTPGet.Path) {
			t.Errorf("%s: %s probe GETs %s, which is not served (only %v)", where, kind, p.HTTPGet.Path, served)
		}
		if n, ok := portOf(c, p.HTTPGet.Port); !ok || n != port {
			t.Errorf("%s: %s probe on port %s, want the listener's %d", where, kind, p.HTTPGet.Port.String(), port)
		}
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path == "/metrics" {
		t.Errorf("%s: readiness on /metrics, which is always 200", where)
	}
}

func checkGateway(t *testing.T, o *objects, known map[string]flagInfo, wantPreStop bool) {
	served := servedPaths(t, "gateway/gateway.go")
	var n int
	for _, d := range o.deployments {
		if component(d) != "gateway" {
			continue
		}
		n++
		c, given := fabricContainer(t, d, "gateway", known)
		listen, ok := given["listen"]
		if !ok {
			listen = known["listen"].def
		}
		port := listenPort(t, d.Name, listen)
		if cp, ok := portOf(c, intstr.FromString("http")); !ok || cp != port {
			t.Errorf("%s: container port http %d, want --listen's %d", d.Name, cp, port)
		}
		checkProbes(t, d.Name, c, served, port, "readiness", "liveness")
		if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("%s: readiness on %s, want /readyz (503 while the gateway drains)", d.Name, c.ReadinessProbe.HTTPGet.Path)
		}
		if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
			return e.Name == "FABRIC_RESUME_SECRET" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
		}) {
			t.Errorf("%s: FABRIC_RESUME_SECRET does not come from a Secret: sessions would resume on one gateway only", d.Name)
		}
		if path, ok := given["policy"]; ok {
			checkPolicy(t, o, d, c, path)
		}
		if _, ok := given["resume-secret"]; ok {
			t.Errorf("%s: --resume-secret on the command line, where ps shows it", d.Name)
		}

		// Shutdown: the drain fits in --shutdown-grace, and the kubelet
		// waits for the preStop sleep plus all of it.
		drain := flagDuration(t, d.Name, given, known, "drain-period")
		handoff := flagDuration(t, d.Name, given, known, "handoff-timeout")
		grace := flagDuration(t, d.Name, given, known, "shutdown-grace")
		if drain+handoff > grace {
			t.Errorf("%s: --drain-period %v + --handoff-timeout %v exceed --shutdown-grace %v", d.Name, drain, handoff, grace)
		}
		var sleep time.Duration
		if lc := c.Lifecycle; lc != nil && lc.PreStop != nil {
			if lc.PreStop.Sleep == nil || lc.PreStop.Exec != nil || lc.PreStop.HTTPGet != nil {
				t.Errorf("%s: preStop %+v: the image has no shell; only the kubelet's sleep works", d.Name, lc.PreStop)
			} else {
				sleep = time.Duration(lc.PreStop.Sleep.Seconds) * time.Second
			}
		}
		if (sleep > 0) != wantPreStop {
			t.Errorf("%s: preStop sleep %v, want one: %v", d.Name, sleep, wantPreStop)
		}
		tgps := d.Spec.Template.Spec.TerminationGracePeriodSeconds
		if tgps == nil || time.Duration(*tgps)*time.Second <= sleep+grace {
			t.Errorf("%s: terminationGracePeriodSeconds %s, want more than preStop %v + --shutdown-grace %v", d.Name, seconds(tgps), sleep, grace)
		}
		if s := d.Spec.Strategy.RollingUpdate; s == nil || s.MaxUnavailable == nil || s.MaxUnavailable.IntValue() != 0 {
			t.Errorf("%s: a rolling update may take gateways away before new ones are ready", d.Name)
		}
	}
	if n != 1 {
		t.Errorf("%d gateway Deployments, want 1", n)
	}
}

// checkPolicy: a policy file the chart renders into a ConfigMap is one the
// gateway loads (auth.ParsePolicy).
func checkPolicy(t *testing.T, o *objects, d *appsv1.Deployment, c *corev1.Container, path string) {
	v := mountedVolume(d, c, path)
	if v == nil || v.ConfigMap == nil {
		t.Errorf("%s: --policy %s is not mounted from a ConfigMap", d.Name, path)
		return
	}
	key := filepath.Base(path)
	for _, it := range v.ConfigMap.Items {
		if it.Path == key {
			key = it.Key
		}
	}
	for _, cm := range o.configMaps {
		if cm.Name != v.ConfigMap.Name {
			continue
		}
		data, ok := cm.Data[key]
		if !ok {
			t.Errorf("%s: ConfigMap %s has no key %s", d.Name, cm.Name, key)
		} else if _, err := auth.ParsePolicy([]byte(data)); err != nil {
			t.Errorf("%s: the policy of ConfigMap %s: %v", d.Name, cm.Name, err)
		}
		return
	}
	t.Logf("%s: --policy from ConfigMap %s, which the chart does not render", d.Name, v.ConfigMap.Name)
}

func seconds(p *int64) string {
	if p == nil {
		return "unset (30)"
	}
	return strconv.FormatInt(*p, 10)
}

func checkWorkers(t *testing.T, o *objects, known map[string]flagInfo) {
	served := servedPaths(t, "cmd/fabric/worker.go")
	for _, d := range o.deployments {
		if component(d) != "worker" {
			continue
		}
		c, given := fabricContainer(t, d, "worker", known)
		ml, ok := given["metrics-listen"]
		if !ok {
			t.Errorf("%s: no --metrics-listen: no /healthz to probe, no metrics", d.Name)
			continue
		}
		port := listenPort(t, d.Name, ml)
		checkProbes(t, d.Name, c, served, port, "readiness", "liveness")
		grace := flagDuration(t, d.Name, given, known, "shutdown-grace")
		tgps := d.Spec.Template.Spec.TerminationGracePeriodSeconds
		if tgps == nil || time.Duration(*tgps)*time.Second <= grace {
			t.Errorf("%s: terminationGracePeriodSeconds %s, want more than --shutdown-grace %v", d.Name, seconds(tgps), grace)
		}
		if len(c.Ports) != 1 || c.Ports[0].ContainerPort != port {
			t.Errorf("%s: ports %+v, want only the metrics port %d (workers take requests over NATS)", d.Name, c.Ports, port)
		}
	}
}

// natsUsers are the users of deploy/nats/permissions.conf.
var natsUsers = []string{"gateway", "worker", "caller", "tail", "auth"}

// checkNATS: each process connects as a user of deploy/nats/permissions.conf,
// with that user's reply inboxes and credentials.
func checkNATS(t *testing.T, o *objects) {
	for _, d := range o.deployments {
		c := d.Spec.Template.Spec.Containers[0]
		given := flagsOf(t, d)
		var user string
		for _, e := range c.Env {
			if e.Name == "FABRIC_NATS_USER" {
				user = e.Value
			}
		}
		if creds, ok := given["nats-creds"]; ok {
			user = strings.TrimSuffix(filepath.Base(creds), ".creds")
		}
		switch {
		case user == "":
			t.Errorf("%s: no NATS user", d.Name)
			continue
		case !slices.Contains(natsUsers, user):
			t.Errorf("%s: NATS user %q is not in deploy/nats/permissions.conf", d.Name, user)
		case component(d) == "gateway" && user != "gateway":
			t.Errorf("%s: NATS user %q, want gateway", d.Name, user)
		case component(d) == "worker" && user != "worker" && user != "caller":
			t.Errorf("%s: NATS user %q, want worker or caller", d.Name, user)
		}
		if p := given["nats-inbox-prefix"]; p != "_INBOX."+user {
			t.Errorf("%s: --nats-inbox-prefix %q, want _INBOX.%s (permissions.conf allows each user its own)", d.Name, p, user)
		}
		for u := range strings.SplitSeq(given["nats"], ",") {
			if pu, err := url.Parse(u); err != nil || pu.Scheme != "nats" && pu.Scheme != "tls" || pu.Port() == "" || pu.User != nil {
				t.Errorf("%s: --nats URL %q: want nats://host:port with no credentials in it", d.Name, u)
			}
		}
	}
}

// mountedVolume returns the pod's volume holding path as c mounts it, or nil.
func mountedVolume(d *appsv1.Deployment, c *corev1.Container, path string) *corev1.Volume {
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			continue
		}
		for i, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == m.Name {
				return &d.Spec.Template.Spec.Volumes[i]
			}
		}
	}
	return nil
}

// checkScaling: each autoscaler targets a rendered Deployment, which leaves
// the replica count to it; no Deployment has two.
func checkScaling(t *testing.T, o *objects) {
	scaled := map[string]string{}
	target := func(kind, name, apiVersion, targetKind, targetName string) {
		if apiVersion != "apps/v1" || targetKind != "Deployment" {
			t.Errorf("%s %s targets %s %s, want apps/v1 Deployment", kind, name, apiVersion, targetKind)
		}
		i := slices.IndexFunc(o.deployments, func(d *appsv1.Deployment) bool { return d.Name == targetName })
		if i < 0 {
			t.Errorf("%s %s targets Deployment %q, which the chart does not render", kind, name, targetName)
			return
		}
		if prev, ok := scaled[targetName]; ok {
			t.Errorf("Deployment %s is scaled by both %s and %s", targetName, prev, kind)
		}
		scaled[targetName] = kind
		if o.deployments[i].Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas, which fights its %s", targetName, kind)
		}
	}
	for _, h := range o.hpas {
		r := h.Spec.ScaleTargetRef
		target("HorizontalPodAutoscaler", h.Name, r.APIVersion, r.Kind, r.Name)
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			t.Errorf("HorizontalPodAutoscaler %s: replicas %v to %d", h.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
	}
	for _, s := range o.scaledObjects {
		r := s.Spec.ScaleTargetRef
		target("ScaledObject", s.Name, r.APIVersion, r.Kind, r.Name)
		if len(s.Spec.Triggers) == 0 {
			t.Errorf("ScaledObject %s has no trigger", s.Name)
		}
		for _, tr := range s.Spec.Triggers {
			if tr.Type != "prometheus" || !strings.Contains(tr.Metadata["query"], "fabric_worker_handlers_in_flight") ||
				tr.Metadata["serverAddress"] == "" || tr.Metadata["threshold"] == "" {
				t.Errorf("ScaledObject %s: trigger %+v, want prometheus on fabric_worker_handlers_in_flight", s.Name, tr)
			}
			if !strings.Contains(tr.Metadata["query"], r.Name) {
				t.Errorf("ScaledObject %s: query %q is not about the pods of %s", s.Name, tr.Metadata["query"], r.Name)
			}
		}
	}
	for _, d := range o.deployments {
		if _, ok := scaled[d.Name]; !ok && d.Spec.Replicas == nil {
			t.Errorf("Deployment %s has no replica count and no autoscaler", d.Name)
		}
	}
}

// checkSelectors: Deployments select their own pods; each Service, PDB and
// ServiceMonitor selects the pods and ports it is for.
func checkSelectors(t *testing.T, o *objects) {
	podsOf := func(sel *metav1.LabelSelector) []*appsv1.Deployment {
		var ds []*appsv1.Deployment
		for _, d := range o.deployments {
			if selects(sel, d.Spec.Template.Labels) {
				ds = append(ds, d)
			}
		}
		return ds
	}
	for _, d := range o.deployments {
		if got := podsOf(d.Spec.Selector); len(got) != 1 || got[0] != d {
			t.Errorf("Deployment %s's selector matches the pods of %d Deployments, want its own only", d.Name, len(got))
		}
	}
	for _, pdb := range o.pdbs {
		got := podsOf(pdb.Spec.Selector)
		if len(got) != 1 || component(got[0]) != "gateway" {
			t.Errorf("PodDisruptionBudget %s selects %d Deployments' pods, want the gateways'", pdb.Name, len(got))
		}
		if pdb.Spec.MinAvailable == nil && pdb.Spec.MaxUnavailable == nil {
			t.Errorf("PodDisruptionBudget %s sets neither minAvailable nor maxUnavailable", pdb.Name)
		}
	}
	servicePorts := map[string][]string{} // Service → port names
	for _, s := range o.services {
		if s.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
			t.Errorf("Service %s has session affinity: any gateway resumes any session", s.Name)
		}
		got := podsOf(&metav1.LabelSelector{MatchLabels: s.Spec.Selector})
		if len(got) != 1 {
			t.Errorf("Service %s selects %d Deployments' pods, want 1", s.Name, len(got))
			continue
		}
		c := &got[0].Spec.Template.Spec.Containers[0]
		for _, p := range s.Spec.Ports {
			if _, ok := portOf(c, p.TargetPort); !ok {
				t.Errorf("Service %s: target port %s is not a port of %s", s.Name, p.TargetPort.String(), got[0].Name)
			}
			servicePorts[s.Name] = append(servicePorts[s.Name], p.Name)
		}
	}
	for _, in := range o.ingresses {
		for _, r := range in.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				b := p.Backend.Service
				if b == nil || !slices.Contains(servicePorts[b.Name], b.Port.Name) {
					t.Errorf("Ingress %s: %s goes to %+v, not a rendered Service port", in.Name, p.Path, b)
				}
				if p.Path == "/metrics" {
					t.Errorf("Ingress %s exposes /metrics", in.Name)
				}
			}
		}
	}
	for _, sm := range o.serviceMonitors {
		scraped := map[string]bool{}
		for _, s := range o.services {
			if !selects(&sm.Spec.Selector, s.Labels) {
				continue
			}
			for _, ep := range sm.Spec.Endpoints {
				if slices.Contains(servicePorts[s.Name], ep.Port) {
					scraped[component(podsOf(&metav1.LabelSelector{MatchLabels: s.Spec.Selector})[0])] = true
				}
			}
		}
		if !scraped["gateway"] || !scraped["worker"] {
			t.Errorf("ServiceMonitor %s scrapes %v, want gateways and workers", sm.Name, scraped)
		}
	}
}

// checkNetworkPolicies: each policy selects one Deployment's pods, lets in
// only its listening port, and lets out NATS, DNS and (with traces) the
// collector.
func checkNetworkPolicies(t *testing.T, o *objects) {
	covered := map[string]bool{}
	for _, np := range o.netpols {
		var ds []*appsv1.Deployment
		for _, d := range o.deployments {
			if selects(&np.Spec.PodSelector, d.Spec.Template.Labels) {
				ds = append(ds, d)
			}
		}
		if len(ds) != 1 {
			t.Errorf("NetworkPolicy %s selects the pods of %d Deployments, want 1", np.Name, len(ds))
			continue
		}
		d := ds[0]
		covered[d.Name] = true
		c := d.Spec.Template.Spec.Containers[0]
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
			t.Errorf("NetworkPolicy %s: policy types %v, want Ingress and Egress", np.Name, np.Spec.PolicyTypes)
		}
		for _, rule := range np.Spec.Ingress {
			if len(rule.Ports) == 0 {
				t.Errorf("NetworkPolicy %s lets in every port", np.Name)
			}
			for _, p := range rule.Ports {
				if p.Port == nil {
					t.Errorf("NetworkPolicy %s lets in every port", np.Name)
				} else if n, ok := portOf(&c, *p.Port); !ok || len(c.Ports) != 1 || n != c.Ports[0].ContainerPort {
					t.Errorf("NetworkPolicy %s lets in port %s, not %s's one port", np.Name, p.Port.String(), d.Name)
				}
			}
		}
		out := map[string]bool{}
		for _, rule := range np.Spec.Egress {
			for _, p := range rule.Ports {
				if p.Port != nil {
					proto := corev1.ProtocolTCP
					if p.Protocol != nil {
						proto = *p.Protocol
					}
					out[fmt.Sprintf("%s/%s", proto, p.Port.String())] = true
				}
			}
		}
		given := flagsOf(t, d)
		want := []string{"UDP/53", "TCP/53"}
		for u := range strings.SplitSeq(given["nats"], ",") {
			if pu, err := url.Parse(u); err == nil {
				want = append(want, "TCP/"+pu.Port())
			}
		}
		for _, e := range c.Env {
			if e.Name == "OTEL_EXPORTER_OTLP_ENDPOINT" {
				pu, err := url.Parse(e.Value)
				if err != nil || pu.Port() == "" {
					t.Fatalf("%s: OTEL_EXPORTER_OTLP_ENDPOINT %q has no port", d.Name, e.Value)
				}
				want = append(want, "TCP/"+pu.Port())
			}
		}
		for _, w := range want {
			if !out[w] {
				t.Errorf("NetworkPolicy %s: no egress to %s (have %v)", np.Name, w, out)
			}
		}
	}
	if len(o.netpols) > 0 {
		for _, d := range o.deployments {
			if !covered[d.Name] {
				t.Errorf("Deployment %s has no NetworkPolicy", d.Name)
			}
		}
	}
}
