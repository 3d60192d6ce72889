package grafana_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/seed82ac63c1/fabric/auth"
	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/workers"
	"github.com/seed82ac63c1/fabric/workers/demo"
)

// dashboard is the part of Grafana's dashboard model the test reads.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Type       string          `json:"type"`
			Name       string          `json:"name"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct{ H, W, X, Y int }
	Panels     []panel `json:"panels"` // a collapsed row's
	Targets    []struct {
		Datasource   *datasource `json:"datasource"`
		Expr         string      `json:"expr"`
		LegendFormat string      `json:"legendFormat"`
		RefID        string      `json:"refId"`
	} `json:"targets"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// metric is an exported metric family: its label names, and whether it is
// a histogram (selected as name_bucket, name_sum, name_count).
type metric struct {
	labels    []string
	histogram bool
}

// exported gathers the metrics a real gateway and a real worker export,
// with the Go and process collectors `fabric gateway` and
// `fabric worker --metrics-listen` serve too. A request through the gateway
// and a closed connection make the gateway's labelled series; a worker makes
// its series when a route is registered.
func exported(t *testing.T) map[string]metric {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ns := fabrictest.NATS(t)
	// With authentication on, so that its metrics are exported too.
	anyone := auth.AuthenticatorFunc(func(context.Context, auth.Credentials) (auth.Identity, error) {
		return auth.Identity{User: "u"}, nil
	})
	gw := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gateway"),
		gateway.Config{Auth: &gateway.AuthConfig{Authenticator: anyone}}, gateway.WithRegistry(reg))
	fabrictest.StartWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{}, demo.Register, workers.WithMetrics(reg))
	ws := fabrictest.Dial(t, gw.URL)
	ws.Hello(map[string]string{"token": "t"})
	if msgs := ws.Call("demo/echo", "m1", "hi"); len(msgs) != 2 {
		t.Fatalf("demo/echo: %+v", msgs)
	}
	ws.Close()

	out := map[string]metric{}
	fabrictest.Eventually(t, 10*time.Second, func() bool {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			m := metric{histogram: mf.GetMetric()[0].GetHistogram() != nil}
			for _, s := range mf.GetMetric() {
				for _, l := range s.GetLabel() {
					if !slices.Contains(m.labels, l.GetName()) {
						m.labels = append(m.labels, l.GetName())
					}
				}
			}
			out[mf.GetName()] = m
		}
		_, closed := out["fabric_gateway_closes_total"]
		return closed
	})
	return out
}

var (
	stringRE   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	matchersRE = regexp.MustCompile(`\{([^}]*)\}`)
	matcherRE  = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)`)
	groupingRE = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	rangeRE    = regexp.MustCompile(`\[[^\]]*\]|\$\{[^}]*\}|\$[A-Za-z_]+`)
	identRE    = regexp.MustCompile(`\b[A-Za-z_:][A-Za-z0-9_:]*(\s*\()?`)
	legendRE   = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`)
	labelValRE = regexp.MustCompile(`^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)$`)
)

// PromQL words that are not metric names and are not followed by "(".
var keywords = []string{"and", "or", "unless", "bool", "offset", "inf", "nan"}

// promql is what a PromQL expression refers to: metric names, the labels
// its matchers use, and the labels it groups by.
type promql struct {
	metrics, matched, grouped []string
}

// parse reads expr's references without a PromQL parser: it removes string
// literals, matchers, groupings, ranges and dashboard variables, and takes
// the identifiers left that are not functions or keywords as metric names.
func parse(expr string) promql {
	var q promql
	s := stringRE.ReplaceAllString(expr, `""`)
	for _, m := range matchersRE.FindAllStringSubmatch(s, -1) {
		for _, l := range matcherRE.FindAllStringSubmatch(m[1], -1) {
			q.matched = append(q.matched, l[1])
		}
	}
	s = matchersRE.ReplaceAllString(s, " ")
	for _, g := range groupingRE.FindAllStringSubmatch(s, -1) {
		for l := range strings.SplitSeq(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				q.grouped = append(q.grouped, l)
			}
		}
	}
	s = groupingRE.ReplaceAllString(s, " ")
	s = rangeRE.ReplaceAllString(s, " ")
	for _, m := range identRE.FindAllStringSubmatch(s, -1) {
		name := strings.TrimRight(m[0], " (")
		if m[1] != "" || slices.Contains(keywords, strings.ToLower(name)) {
			continue // a function or an aggregation, or a keyword
		}
		q.metrics = append(q.metrics, name)
	}
	return q
}

// resolve finds the metric family a selected name belongs to: its own, or
// the histogram's it is a series of. It returns the family's name.
func resolve(known map[string]metric, name string) (string, metric, bool) {
	if m, ok := known[name]; ok {
		return name, m, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if m, ok := known[base]; ok && m.histogram {
				if suffix == "_bucket" {
					m.labels = append(slices.Clone(m.labels), "le")
				}
				return base, m, true
			}
		}
	}
	return "", metric{}, false
}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"instance", "job"}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		expr                      string
		metrics, matched, grouped string
	}{
		{`sum(fabric_gateway_connections)`, "fabric_gateway_connections", "", ""},
		{`histogram_quantile(0.99, sum by (le, route) (rate(x_bucket{route=~"$route",a!="b{c}"}[$__rate_interval])))`, "x_bucket", "route a", "le route"},
		{`sum(rate(a_total[5m])) / sum without(code) (rate(b_total{code="1000"}[1h] offset 1h)) > bool 0`, "a_total b_total", "code", "code"},
		{`sum(increase(c[$__range])) or vector(0)`, "c", "", ""},
	} {
		q := parse(tc.expr)
		for _, check := range []struct{ name, got, want string }{
			{"metrics", strings.Join(q.metrics, " "), tc.metrics},
			{"matched", strings.Join(q.matched, " "), tc.matched},
			{"grouped", strings.Join(q.grouped, " "), tc.grouped},
		} {
			if check.got != check.want {
				t.Errorf("parse(%q) %s = %q, want %q", tc.expr, check.name, check.got, check.want)
			}
		}
	}
}

// TestDashboard checks deploy/grafana/fabric.json: a Grafana dashboard whose
// every query names metrics and labels that the gateway and the worker
// export, which charts every one of their metrics, and which takes its data
// source from a variable.
func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile("fabric.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("fabric.json: %v", err)
	}
	if d.SchemaVersion < 38 || d.UID == "" || d.Title == "" {
		t.Fatalf("schemaVersion %d, uid %q, title %q", d.SchemaVersion, d.UID, d.Title)
	}
	known := exported(t)
	const dsVar = "${datasource}"
	checkDS := func(where string, ds *datasource) {
		if ds == nil || ds.Type != "prometheus" || ds.UID != dsVar {
			t.Errorf("%s: datasource %+v, want the prometheus %s variable", where, ds, dsVar)
		}
	}

	hasDSVar := false
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			hasDSVar = hasDSVar || v.Name == "datasource"
		case "query":
			checkDS("variable "+v.Name, v.Datasource)
			var q struct{ Query string }
			if err := json.Unmarshal(v.Query, &q); err != nil {
				t.Fatalf("variable %s: query %s: %v", v.Name, v.Query, err)
			}
			m := labelValRE.FindStringSubmatch(q.Query)
			if m == nil {
				t.Errorf("variable %s: query %q is not label_values(metric, label)", v.Name, q.Query)
				continue
			}
			if _, mt, ok := resolve(known, m[1]); !ok || !slices.Contains(mt.labels, m[2]) {
				t.Errorf("variable %s: %s has no label %s (exported: %v)", v.Name, m[1], m[2], ok)
			}
		}
	}
	if !hasDSVar {
		t.Error(`no "datasource" variable of type datasource`)
	}

	charted := map[string]bool{}
	ids := map[int]string{}
	var walk func([]panel)
	walk = func(panels []panel) {
		for _, p := range panels {
			where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
			if other, dup := ids[p.ID]; dup || p.ID == 0 {
				t.Errorf("%s: id taken by %q", where, other)
			}
			ids[p.ID] = p.Title
			if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X < 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("%s: gridPos %+v outside the 24 columns", where, p.GridPos)
			}
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			checkDS(where, p.Datasource)
			if len(p.Targets) == 0 {
				t.Errorf("%s: no query", where)
			}
			refIDs := map[string]bool{}
			for _, tg := range p.Targets {
				where := where + " query " + tg.RefID
				checkDS(where, tg.Datasource)
				if refIDs[tg.RefID] || tg.RefID == "" {
					t.Errorf("%s: refId missing or repeated", where)
				}
				refIDs[tg.RefID] = true
				q := parse(tg.Expr)
				if len(q.metrics) == 0 {
					t.Errorf("%s: %q selects no metric", where, tg.Expr)
				}
				labels := slices.Clone(targetLabels)
				resolved := true
				for _, name := range q.metrics {
					family, m, ok := resolve(known, name)
					if !ok {
						t.Errorf("%s: %q: no metric %s is exported", where, tg.Expr, name)
						resolved = false
						continue
					}
					charted[family] = true
					labels = append(labels, m.labels...)
				}
				for _, l := range append(q.matched, q.grouped...) {
					if resolved && !slices.Contains(labels, l) {
						t.Errorf("%s: %q: label %s is not on its metrics", where, tg.Expr, l)
					}
				}
				for _, m := range legendRE.FindAllStringSubmatch(tg.LegendFormat, -1) {
					if !slices.Contains(q.grouped, m[1]) {
						t.Errorf("%s: legend %q shows %s, which the query does not keep", where, tg.LegendFormat, m[1])
					}
				}
			}
		}
	}
	walk(d.Panels)

	for name := range known {
		if (strings.HasPrefix(name, "fabric_gateway_") || strings.HasPrefix(name, "fabric_worker_")) && !charted[name] {
			t.Errorf("%s is on no panel", name)
		}
	}
}
