package agents

import (
	"reflect"
	"strings"
	"testing"
)

func TestUnderstand(t *testing.T) {
	west2025 := &QueryPlan{Metric: "units", Dimension: "region", Year: 2025}
	for _, tc := range []struct {
		question string
		previous *QueryPlan
		want     QueryPlan
	}{
		{"Which region had the highest revenue in 2025?", nil, QueryPlan{Metric: "revenue", Dimension: "region", Year: 2025}},
		{"How did monthly revenue trend in 2025?", nil, QueryPlan{Metric: "revenue", Dimension: "month", Year: 2025}},
		{"Top 3 products by units sold", nil, QueryPlan{Metric: "units", Dimension: "product", Top: 3}},
		{"Revenue by category in the West", nil, QueryPlan{Metric: "revenue", Dimension: "category", Region: "West"}},
		{"How is the West doing?", nil, QueryPlan{Metric: "revenue", Dimension: "month", Region: "West"}},
		{"average order value by quarter for Services", nil, QueryPlan{Metric: "avg_order_value", Dimension: "quarter", Category: "Services"}},
		{"How many orders per region in 2031?", nil, QueryPlan{Metric: "orders", Dimension: "region"}},
		{"what about the top five categories", nil, QueryPlan{Metric: "revenue", Dimension: "category", Top: 5}},
		{"and by month?", west2025, QueryPlan{Metric: "units", Dimension: "month", Year: 2025}},
		{"now for all years", west2025, QueryPlan{Metric: "units", Dimension: "region"}},
		{"tell me a joke", nil, QueryPlan{Metric: "revenue", Dimension: "region"}},
	} {
		got, notes := understand(tc.question, tc.previous)
		got.Intent, got.Steps = "", nil
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: plan %+v, want %+v", tc.question, got, tc.want)
		}
		if len(notes) == 0 || !strings.HasPrefix(notes[len(notes)-1], "Plan: ") {
			t.Errorf("%q: notes %q do not end with the plan", tc.question, notes)
		}
	}
}

func TestBuildSQLUsesOnlyTheLists(t *testing.T) {
	got := buildSQL(QueryPlan{Metric: "units", Dimension: "quarter", Year: 2024, Region: "West", Category: "Software", Top: 2})
	want := "SELECT substr(order_date, 1, 4) || '-Q' || ((CAST(substr(order_date, 6, 2) AS INTEGER) + 2) / 3) AS quarter,\n" +
		"       SUM(units) AS units\nFROM orders\n" +
		"WHERE order_date >= '2024-01-01' AND order_date < '2025-01-01'\n  AND region = 'West'\n  AND category = 'Software'\n" +
		"GROUP BY 1\nORDER BY 1\nLIMIT 2"
	if got != want {
		t.Errorf("buildSQL =\n%s\nwant\n%s", got, want)
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		metric string
		v      float64
		want   string
	}{
		{"revenue", 2975020.76, "$2.98M"}, {"revenue", 45600, "$45.6k"}, {"avg_order_value", 812.5, "$812.50"},
		{"units", 1234567, "1,234,567"}, {"orders", 999, "999"}, {"units", -1200, "-1,200"},
	} {
		if got := format(tc.metric, tc.v); got != tc.want {
			t.Errorf("format(%s, %v) = %q, want %q", tc.metric, tc.v, got, tc.want)
		}
	}
}
