package agents

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers"
)

// MaxRows bounds a query's result.
const MaxRows = 200

// The SQL for each dimension's label and each metric's value.
var (
	labelSQL = map[string]string{
		"region":   "region",
		"category": "category",
		"product":  "product",
		"month":    "substr(order_date, 1, 7)",
		"quarter":  "substr(order_date, 1, 4) || '-Q' || ((CAST(substr(order_date, 6, 2) AS INTEGER) + 2) / 3)",
	}
	valueSQL = map[string]string{
		"revenue":         "ROUND(SUM(revenue), 2)",
		"units":           "SUM(units)",
		"orders":          "COUNT(*)",
		"avg_order_value": "ROUND(AVG(revenue), 2)",
	}
)

// sql is agent/sql: it writes the plan's query, showing it as it goes
// (:progress), runs it on the dataset and answers with the rows.
func (a *agents) sql(ctx context.Context, p SQLParams, s *workers.Stream) (Table, error) {
	if err := p.Plan.validate(); err != nil {
		return Table{}, err
	}
	db, err := openDataset()
	if err != nil {
		return Table{}, err
	}
	query := buildSQL(p.Plan)
	// Write it out a token at a time, as a model would.
	var written strings.Builder
	for i, line := range strings.SplitAfter(query, "\n") {
		for j, word := range strings.SplitAfter(line, " ") {
			written.WriteString(word)
			if (i+j)%2 == 1 || strings.HasSuffix(word, "\n") {
				if err := a.pause(ctx, 1); err != nil {
					return Table{}, err
				}
				if err := s.Progress(SQLDraft{SQL: written.String()}); err != nil {
					return Table{}, err
				}
			}
		}
	}
	if err := s.Progress(SQLDraft{SQL: query}); err != nil {
		return Table{}, err
	}

	start := time.Now()
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		if ctx.Err() != nil {
			return Table{}, ctx.Err()
		}
		return Table{}, fmt.Errorf("agents: run %q: %w", query, err)
	}
	defer rows.Close()
	t := Table{SQL: query, Columns: []string{p.Plan.Dimension, p.Plan.Metric}, Labels: []string{}, Values: []float64{}}
	for rows.Next() {
		var label string
		var value float64
		if err := rows.Scan(&label, &value); err != nil {
			return Table{}, fmt.Errorf("agents: read a row of %q: %w", query, err)
		}
		t.Labels = append(t.Labels, label)
		t.Values = append(t.Values, value)
		if len(t.Labels) == MaxRows {
			break
		}
	}
	if err := rows.Err(); err != nil {
		if ctx.Err() != nil {
			return Table{}, ctx.Err()
		}
		return Table{}, fmt.Errorf("agents: run %q: %w", query, err)
	}
	t.ElapsedMs = float64(time.Since(start).Microseconds()) / 1000
	if len(t.Labels) == 0 {
		return Table{}, protocol.Errorf("no_data", "no orders match: %s", p.Plan.Intent)
	}
	// A query takes a database a moment; let the page show it running.
	return t, a.pause(ctx, 6)
}

// buildSQL writes the plan's query. Every name and value in it comes from a
// validated plan, that is from the fixed lists of this package, so it is
// safe to run as it is shown.
func buildSQL(p QueryPlan) string {
	var where []string
	if p.Year != 0 {
		where = append(where, fmt.Sprintf("order_date >= '%d-01-01' AND order_date < '%d-01-01'", p.Year, p.Year+1))
	}
	if p.Region != "" {
		where = append(where, "region = "+quote(p.Region))
	}
	if p.Category != "" {
		where = append(where, "category = "+quote(p.Category))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s AS %s,\n       %s AS %s\nFROM orders\n", labelSQL[p.Dimension], p.Dimension, valueSQL[p.Metric], p.Metric)
	if len(where) > 0 {
		b.WriteString("WHERE " + strings.Join(where, "\n  AND ") + "\n")
	}
	b.WriteString("GROUP BY 1\n")
	if isTime(p.Dimension) {
		b.WriteString("ORDER BY 1")
	} else {
		b.WriteString("ORDER BY 2 DESC")
	}
	if p.Top > 0 {
		fmt.Fprintf(&b, "\nLIMIT %d", p.Top)
	}
	return b.String()
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
