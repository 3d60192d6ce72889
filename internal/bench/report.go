package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// Targets of a latency row: the fabric and the baselines it is compared to.
const (
	TargetFabric = "fabric"
	// TargetFabricEmbedded is the fabric with the NATS node inside the
	// gateway (--embed-nats), its worker connected to that node.
	TargetFabricEmbedded = "fabric-embedded"
	TargetNATSTCP        = "nats-tcp" // nats.go request/reply over TCP
	TargetNATSWS         = "nats-ws"  // nats.go request/reply over NATS's WebSocket listener
	TargetWSEcho         = "ws-echo"  // a plain gorilla/websocket echo server: the floor
	TargetWSRelay        = "ws-relay" // a bare WebSocket-to-NATS relay in front of the responder: a gateway's floor
	// TargetWSRelayEmbedded is the same relay running the NATS node its
	// responder connects to: the floor of fabric-embedded.
	TargetWSRelayEmbedded = "ws-relay-embedded"
)

// Report is what a scenario measured, how, and where.
type Report struct {
	Scenario string            `json:"scenario"`
	Mode     string            `json:"mode"` // "core" or "durable"
	Machine  Machine           `json:"machine"`
	Settings map[string]string `json:"settings"` // the scenario's settings, as flags
	// GatewayArgs is the gateway child's command line.
	GatewayArgs []string     `json:"gatewayArgs,omitempty"`
	Latencies   []LatencyRow `json:"latencies,omitempty"`
	Values      []Value      `json:"values,omitempty"`
	// Errors counts operations that failed: a dial, a request ending in
	// :error, a connection dropped while it should have stayed open.
	Errors int64    `json:"errors"`
	Notes  []string `json:"notes,omitempty"`
}

// LatencyRow is one distribution: Case (what was asked: "1 event") and
// Which moment of it ("first" event, "last" event) against Target.
type LatencyRow struct {
	Case   string `json:"case"`
	Which  string `json:"which"`
	Target string `json:"target"`
	Summary
	// Ratios are this row's percentiles divided by those of the same case
	// and moment on each baseline: set on the fabric's rows.
	Ratios []Ratio `json:"ratios,omitempty"`
}

// Ratio is a fabric row's percentiles over a baseline's.
type Ratio struct {
	Baseline string  `json:"baseline"`
	P50      float64 `json:"p50"`
	P99      float64 `json:"p99"`
	P999     float64 `json:"p999"`
}

// Value is one measured number.
type Value struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// AddValue appends a value.
func (r *Report) AddValue(name string, v float64, unit string) {
	r.Values = append(r.Values, Value{Name: name, Value: v, Unit: unit})
}

// Value returns the value named name, and whether there is one.
func (r *Report) Value(name string) (float64, bool) {
	for _, v := range r.Values {
		if v.Name == name {
			return v.Value, true
		}
	}
	return 0, false
}

// AddLatency appends a distribution and counts its errors in the report's.
func (r *Report) AddLatency(c, which, target string, s Summary) {
	r.Latencies = append(r.Latencies, LatencyRow{Case: c, Which: which, Target: target, Summary: s})
	r.Errors += s.Errors
}

// ComputeRatios sets the ratios of every fabric row to the baseline rows
// of the same case and moment.
func (r *Report) ComputeRatios() {
	for i := range r.Latencies {
		f := &r.Latencies[i]
		if !isFabric(f.Target) {
			continue
		}
		f.Ratios = nil
		for _, b := range r.Latencies {
			if isFabric(b.Target) || b.Case != f.Case || b.Which != f.Which {
				continue
			}
			f.Ratios = append(f.Ratios, Ratio{Baseline: b.Target,
				P50: ratio(f.P50, b.P50), P99: ratio(f.P99, b.P99), P999: ratio(f.P999, b.P999)})
		}
	}
}

// isFabric reports whether target is one of the fabric's: a row that is
// compared, not a baseline.
func isFabric(target string) bool {
	return target == TargetFabric || target == TargetFabricEmbedded
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round(a/b*100) / 100
}

// WriteTable prints the report for people: a header with the machine, the
// latency distributions, the fabric's ratios to the baselines, the values
// and the notes.
func (r *Report) WriteTable(w io.Writer) error {
	m := r.Machine
	fmt.Fprintf(w, "fabric bench %s (%s mode), %s\n", r.Scenario, r.Mode, m.Date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "machine: %s, %d CPUs, %s memory, %s %s, %s/%s\n", orDash(m.CPUModel), m.CPUs,
		formatBytes(float64(m.MemoryBytes)), m.OS, orDash(m.Kernel), m.GoVersion, m.Arch)
	fmt.Fprintf(w, "settings: %s\n", formatSettings(r.Settings))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(r.Latencies) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "case\tevent\ttarget\tcount\terrors\tp50 µs\tp90 µs\tp99 µs\tp99.9 µs\tmax µs\t")
		for _, l := range r.Latencies {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t\n",
				l.Case, l.Which, l.Target, l.Count, l.Errors, l.P50, l.P90, l.P99, l.P999, l.Max)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		var ratios bool
		for _, l := range r.Latencies {
			for _, x := range l.Ratios {
				if !ratios {
					fmt.Fprintln(w, "\nfabric ÷ baseline, same case and event:")
					fmt.Fprintln(tw, "case\tevent\ttarget\tbaseline\tp50\tp99\tp99.9\t")
					ratios = true
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f×\t%.2f×\t%.2f×\t\n", l.Case, l.Which, l.Target, x.Baseline, x.P50, x.P99, x.P999)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Values) > 0 {
		fmt.Fprintln(w)
		vw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, v := range r.Values {
			fmt.Fprintf(vw, "%s\t%s\n", v.Name, formatValue(v))
		}
		if err := vw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nerrors: %d\n", r.Errors)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func formatSettings(s map[string]string) string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = "--" + k + " " + s[k]
	}
	return strings.Join(parts, " ")
}

// formatValue prints a value in its unit, bytes in KiB, MiB or GiB.
func formatValue(v Value) string {
	switch v.Unit {
	case "bytes":
		return formatBytes(v.Value)
	case "":
		return trimFloat(v.Value)
	default:
		return trimFloat(v.Value) + " " + v.Unit
	}
}

func formatBytes(b float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for math.Abs(b) >= 1024 && i < len(units)-1 {
		b /= 1024
		i++
	}
	if i == 0 {
		return trimFloat(b) + " B"
	}
	return fmt.Sprintf("%.2f %s", b, units[i])
}

// trimFloat prints integers as integers and others with up to 2 decimals.
func trimFloat(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return fmt.Sprintf("%.0f", f)
	}
	if math.Abs(f) >= 100 {
		return fmt.Sprintf("%.1f", f)
	}
	return fmt.Sprintf("%.2f", f)
}
