package compose_test

import (
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"testing"

	"go.yaml.in/yaml/v3"
)

// readYAML decodes a YAML file of the repository into v.
func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	b, err := os.ReadFile(rootPath(t, rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// prometheusConfig is the part of Prometheus's configuration the test reads.
type prometheusConfig struct {
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
	} `yaml:"scrape_configs"`
}

// TestPrometheus checks that Prometheus scrapes every gateway where it
// serves /metrics, and every container of each worker service, however
// many there are, on its --metrics-listen port.
func TestPrometheus(t *testing.T) {
	p := loadProject(t, observability)
	prom := service(t, p, "prometheus")
	conf, _ := flagValue(prom.Command, "config.file")
	if target := bindOf(t, prom, "deploy/prometheus/prometheus.yml"); target != conf {
		t.Errorf("prometheus: --config.file %q, but deploy/prometheus/prometheus.yml is mounted at %s", conf, target)
	}
	var cfg prometheusConfig
	readYAML(t, "deploy/prometheus/prometheus.yml", &cfg)

	static := map[string]bool{}
	dnsPort := map[string]int{} // service name → port
	for _, sc := range cfg.ScrapeConfigs {
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			continue
		}
		for _, s := range sc.StaticConfigs {
			for _, target := range s.Targets {
				static[target] = true
			}
		}
		for _, d := range sc.DNSSDConfigs {
			if d.Type != "A" {
				continue // SRV, the default, finds nothing in Docker's DNS
			}
			for _, n := range d.Names {
				dnsPort[n] = d.Port
			}
		}
	}
	for _, name := range gatewayServices {
		if target := name + ":" + listenPort(t, service(t, p, name)); !static[target] {
			t.Errorf("no scrape of %s", target)
		}
	}
	for _, name := range workerServices {
		want, _ := strconv.Atoi(listenPort(t, service(t, p, name)))
		if got, ok := dnsPort[name]; !ok || got != want {
			t.Errorf("%s: want a dns_sd_configs entry of type A for it on port %d (found port %d)", name, want, got)
		}
	}
}

// TestGrafana checks Grafana's provisioning: Prometheus as the default data
// source, and deploy/grafana/fabric.json loaded from where it is mounted.
func TestGrafana(t *testing.T) {
	p := loadProject(t, observability)
	g := service(t, p, "grafana")
	if target := bindOf(t, g, "deploy/grafana/provisioning"); target != "/etc/grafana/provisioning" {
		t.Errorf("deploy/grafana/provisioning is mounted at %s, want /etc/grafana/provisioning", target)
	}
	dashboard := bindOf(t, g, "deploy/grafana/fabric.json")

	var ds struct {
		Datasources []struct {
			Type      string `yaml:"type"`
			URL       string `yaml:"url"`
			IsDefault bool   `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	readYAML(t, "deploy/grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 {
		t.Fatalf("want one provisioned data source, got %d", len(ds.Datasources))
	}
	d := ds.Datasources[0]
	port := "9090"
	if addr, ok := flagValue(service(t, p, "prometheus").Command, "web.listen-address"); ok {
		port = portOf(t, addr)
	}
	if u, err := url.Parse(d.URL); d.Type != "prometheus" || !d.IsDefault || err != nil || u.Hostname() != "prometheus" || u.Port() != port {
		t.Errorf("data source %+v, want the default, of type prometheus, at http://prometheus:%s", d, port)
	}

	var dash struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "deploy/grafana/provisioning/dashboards/fabric.yml", &dash)
	var paths []string
	for _, pr := range dash.Providers {
		if pr.Type == "file" {
			paths = append(paths, pr.Options.Path)
		}
	}
	if !slices.Contains(paths, path.Dir(dashboard)) {
		t.Errorf("dashboard providers read %v; fabric.json is mounted at %s", paths, dashboard)
	}
	if home, _ := env(g, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"); home != dashboard {
		t.Errorf("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH=%q, want %s", home, dashboard)
	}
}
