package agents

import (
	"context"
	"fmt"

	"github.com/seed82ac63c1/fabric/workers"
)

// VegaLiteSchema is the JSON schema of the chart specs.
const VegaLiteSchema = "https://vega.github.io/schema/vega-lite/v5.json"

// chart is agent/chart: it picks a chart for the table and writes its
// Vega-Lite specification.
func (a *agents) chart(ctx context.Context, p ChartParams, s *workers.Stream) (ChartSpec, error) {
	if err := p.Plan.validate(); err != nil {
		return ChartSpec{}, err
	}
	if err := p.Table.validate(); err != nil {
		return ChartSpec{}, err
	}
	spec := chartSpec(p.Plan, p.Table)
	why := "categories compare best as bars, largest first"
	if spec.Mark.Type == "line" {
		why = "a series over time reads best as a line"
	}
	if err := a.say(ctx, s, fmt.Sprintf("%d points; %s. ", len(p.Table.Values), why)); err != nil {
		return ChartSpec{}, err
	}
	return spec, a.pause(ctx, 4)
}

func chartSpec(plan QueryPlan, t Table) ChartSpec {
	spec := ChartSpec{
		Schema:      VegaLiteSchema,
		Title:       plan.Intent,
		Description: fmt.Sprintf("%s: %d rows from agent/sql", plan.Intent, len(t.Values)),
		Width:       "container",
		Height:      260,
		Mark:        ChartMark{Type: chartMark(plan), Tooltip: true},
		Encoding: ChartEncoding{
			X: ChartChannel{Field: "label", Type: "nominal", Title: plan.Dimension},
			Y: ChartChannel{Field: "value", Type: "quantitative", Title: metricNames[plan.Metric]},
		},
	}
	if spec.Mark.Type == "line" {
		spec.Mark.Point = true
		spec.Encoding.X.Type = "ordinal"
	} else {
		sort := "-y"
		spec.Encoding.X.Sort = &sort
	}
	spec.Data.Values = make([]ChartDatum, len(t.Values))
	for i := range t.Values {
		spec.Data.Values[i] = ChartDatum{Label: t.Labels[i], Value: t.Values[i]}
	}
	return spec
}
