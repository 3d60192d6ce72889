package agents

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers"
)

// analyze is agent/analyze: it computes a table's statistics and says what
// stands out, as :progress while it works.
func (a *agents) analyze(ctx context.Context, p AnalyzeParams, s *workers.Stream) (Summary, error) {
	if err := p.Plan.validate(); err != nil {
		return Summary{}, err
	}
	if err := p.Table.validate(); err != nil {
		return Summary{}, err
	}
	say := func(format string, args ...any) error { return a.say(ctx, s, fmt.Sprintf(format, args...)+"\n") }
	if err := say("Reading %d rows of %s by %s.", len(p.Table.Values), p.Plan.Metric, p.Plan.Dimension); err != nil {
		return Summary{}, err
	}
	sum := summarize(p.Plan, p.Table)
	if err := say("Total %s, mean %s, standard deviation %s.", format(p.Plan.Metric, sum.Total), format(p.Plan.Metric, sum.Mean), format(p.Plan.Metric, sum.StdDev)); err != nil {
		return Summary{}, err
	}
	if err := say("Highest: %s (%s); lowest: %s (%s).", sum.Max.Label, format(p.Plan.Metric, sum.Max.Value), sum.Min.Label, format(p.Plan.Metric, sum.Min.Value)); err != nil {
		return Summary{}, err
	}
	if sum.Growth != nil {
		if err := say("From %s to %s: %+.1f%%.", p.Table.Labels[0], p.Table.Labels[len(p.Table.Labels)-1], *sum.Growth); err != nil {
			return Summary{}, err
		}
	}
	return sum, nil
}

// summarize computes the summary of a valid, non-empty table.
func summarize(plan QueryPlan, t Table) Summary {
	n := len(t.Values)
	sum := Summary{Count: n, Insights: []string{}}
	maxAt, minAt := 0, 0
	for i, v := range t.Values {
		sum.Total += v
		if v > t.Values[maxAt] {
			maxAt = i
		}
		if v < t.Values[minAt] {
			minAt = i
		}
	}
	sum.Mean = sum.Total / float64(n)
	var squares float64
	for _, v := range t.Values {
		squares += (v - sum.Mean) * (v - sum.Mean)
	}
	sum.StdDev = round2(math.Sqrt(squares / float64(n)))
	sum.Total, sum.Mean = round2(sum.Total), round2(sum.Mean)
	point := func(i int) Point {
		p := Point{Label: t.Labels[i], Value: t.Values[i]}
		if sum.Total != 0 {
			p.Share = round2(100 * t.Values[i] / sum.Total)
		}
		return p
	}
	sum.Max, sum.Min = point(maxAt), point(minAt)

	m := plan.Metric
	additive := m != "avg_order_value" // shares of an average mean nothing
	if isTime(plan.Dimension) {
		if n >= 2 && t.Values[0] != 0 {
			g := round2(100 * (t.Values[n-1] - t.Values[0]) / t.Values[0])
			sum.Growth = &g
			trend := "grew"
			if g < 0 {
				trend = "fell"
			}
			sum.Insights = append(sum.Insights, fmt.Sprintf("%s %s %.0f%% from %s to %s.", capitalize(metricNames[m]), trend, math.Abs(g), t.Labels[0], t.Labels[n-1]))
		}
		sum.Insights = append(sum.Insights, fmt.Sprintf("The peak was %s at %s; the low, %s at %s.", t.Labels[maxAt], format(m, t.Values[maxAt]), t.Labels[minAt], format(m, t.Values[minAt])))
		if n >= 8 {
			half := n / 2
			first, second := mean(t.Values[:half]), mean(t.Values[half:])
			if first != 0 {
				sum.Insights = append(sum.Insights, fmt.Sprintf("The second half averaged %+.0f%% against the first.", 100*(second-first)/first))
			}
		}
	} else {
		if additive && n > 1 {
			sum.Insights = append(sum.Insights, fmt.Sprintf("%s leads with %s, %.0f%% of the total.", sum.Max.Label, format(m, sum.Max.Value), sum.Max.Share))
		} else {
			sum.Insights = append(sum.Insights, fmt.Sprintf("%s leads with %s.", sum.Max.Label, format(m, sum.Max.Value)))
		}
		if n > 1 && sum.Min.Value != 0 {
			sum.Insights = append(sum.Insights, fmt.Sprintf("%s is %.1f× %s, the smallest.", sum.Max.Label, sum.Max.Value/sum.Min.Value, sum.Min.Label))
		}
		if sum.Mean != 0 && n > 2 {
			cv := sum.StdDev / sum.Mean
			spread := "evenly spread"
			if cv > 0.5 {
				spread = "concentrated in a few"
			} else if cv > 0.2 {
				spread = "moderately uneven"
			}
			sum.Insights = append(sum.Insights, fmt.Sprintf("The %d %s are %s (coefficient of variation %.2f).", n, plural(plan.Dimension), spread, cv))
		}
	}
	return sum
}

// validate checks a table from a client: labels and values pair up.
func (t *Table) validate() error {
	switch {
	case len(t.Values) == 0:
		return protocol.Errorf(protocol.CodeBadRequest, "table: no rows")
	case len(t.Labels) != len(t.Values):
		return protocol.Errorf(protocol.CodeBadRequest, "table: %d labels for %d values", len(t.Labels), len(t.Values))
	case len(t.Values) > MaxRows:
		return protocol.Errorf(protocol.CodeBadRequest, "table: more than %d rows", MaxRows)
	}
	for _, v := range t.Values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return protocol.Errorf(protocol.CodeBadRequest, "table: values must be finite numbers")
		}
	}
	return nil
}

// format writes a metric's value for people: money with a $ and a k or M,
// counts with thousands separators.
func format(metric string, v float64) string {
	if metric == "revenue" || metric == "avg_order_value" {
		switch a := math.Abs(v); {
		case a >= 1e6:
			return fmt.Sprintf("$%.2fM", v/1e6)
		case a >= 1e4:
			return fmt.Sprintf("$%.1fk", v/1e3)
		default:
			return fmt.Sprintf("$%.2f", v)
		}
	}
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func mean(vs []float64) float64 {
	var s float64
	for _, v := range vs {
		s += v
	}
	return s / float64(len(vs))
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

func capitalize(s string) string { return strings.ToUpper(s[:1]) + s[1:] }
