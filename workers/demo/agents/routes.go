package agents

import (
	"github.com/seed82ac63c1/fabric/protocol"
)

// The agents' routes. agent/ask is the one a client calls; it calls the
// others, each of which may be served by its own worker pool.
var (
	Ask = protocol.NewRoute[AskParams, Answer]("agent/ask").
		WithEvents(protocol.Event[Step](SuffixStep))
	Plan = protocol.NewRoute[PlanParams, QueryPlan]("agent/plan").
		WithEvents(protocol.Event[Thought](protocol.SuffixProgress))
	SQL = protocol.NewRoute[SQLParams, Table]("agent/sql").
		WithEvents(protocol.Event[SQLDraft](protocol.SuffixProgress))
	Analyze = protocol.NewRoute[AnalyzeParams, Summary]("agent/analyze").
		WithEvents(protocol.Event[Thought](protocol.SuffixProgress))
	Chart = protocol.NewRoute[ChartParams, ChartSpec]("agent/chart").
		WithEvents(protocol.Event[Thought](protocol.SuffixProgress))
)

// SuffixStep is agent/ask's event: one step's whole state, each time it changes.
const SuffixStep = "step"

// Routes describes the agents' routes, for code generators.
func Routes() []protocol.RouteInfo {
	return []protocol.RouteInfo{Ask.Info(), Plan.Info(), SQL.Info(), Analyze.Info(), Chart.Info()}
}

// AskParams are agent/ask's params.
type AskParams struct {
	// Question is asked of the sales dataset, in English.
	Question string `json:"question"`
	// Previous is the plan of the answer this question follows up on
	// ("continue from here"): what the question leaves out is taken from it.
	Previous *QueryPlan `json:"previous,omitempty"`
	// State holds the outputs of steps that already ran, as the client keeps
	// them: the orchestrator reuses them instead of running the steps again.
	// A client that lost a run (a session that could not be resumed) sends
	// what it had and the run continues where it stopped; a client that
	// edited the plan sends only the plan, and the steps after it run again.
	State *AskState `json:"state,omitempty"`
}

// AskState is what a client kept of a run: each step's output, if it has it.
type AskState struct {
	Plan    *QueryPlan `json:"plan,omitempty"`
	Table   *Table     `json:"table,omitempty"`
	Summary *Summary   `json:"summary,omitempty"`
}

// Step is the state of one step of agent/ask, sent whole as agent/ask:step
// each time it changes; a client shows the latest of each ID.
type Step struct {
	// ID is the step: "plan", "sql", "analysis" or "chart".
	ID string `json:"id"`
	// Agent is the route that runs the step.
	Agent string `json:"agent"`
	// Title says what the step does, for people.
	Title string `json:"title"`
	// Status is "pending", "running", "done", "reused" (from the client's
	// state) or "failed".
	Status string `json:"status"`
	// Text is what the agent has said so far: its thinking, the SQL as it
	// writes it.
	Text string `json:"text,omitempty"`
	// Output: the step's result, once done. Plan for "plan", Table for
	// "sql", Summary for "analysis", Chart for "chart".
	Plan    *QueryPlan `json:"plan,omitempty"`
	Table   *Table     `json:"table,omitempty"`
	Summary *Summary   `json:"summary,omitempty"`
	Chart   *ChartSpec `json:"chart,omitempty"`
	// Error is why the step failed.
	Error *protocol.Error `json:"error,omitempty"`
	// ElapsedMs is how long the step has run.
	ElapsedMs int64 `json:"elapsedMs"`
}

// Step IDs and statuses.
const (
	StepPlan     = "plan"
	StepSQL      = "sql"
	StepAnalysis = "analysis"
	StepChart    = "chart"

	StatusPending = "pending"
	StatusRunning = "running"
	StatusDone    = "done"
	StatusReused  = "reused"
	StatusFailed  = "failed"
)

// Answer is agent/ask's :response.
type Answer struct {
	// Text answers the question in a few sentences.
	Text    string    `json:"text"`
	Plan    QueryPlan `json:"plan"`
	Table   Table     `json:"table"`
	Summary Summary   `json:"summary"`
	Chart   ChartSpec `json:"chart"`
}

// PlanParams are agent/plan's params.
type PlanParams struct {
	Question string     `json:"question"`
	Previous *QueryPlan `json:"previous,omitempty"`
}

// Thought is a :progress event of the planner, the analyst and the chart
// agent: the next words of what they are doing.
type Thought struct {
	Text string `json:"text"`
}

// QueryPlan is the planner's answer: which measure, grouped how, filtered
// how. The SQL agent turns it into SQL; every field is checked against the
// dataset's columns and values, so a plan from a client is safe to run.
type QueryPlan struct {
	// Intent restates the question as the plan understood it.
	Intent string `json:"intent"`
	// Metric: "revenue", "units", "orders" or "avg_order_value".
	Metric string `json:"metric"`
	// Dimension groups the rows: "region", "category", "product", "month"
	// or "quarter".
	Dimension string `json:"dimension"`
	// Filters; zero or "" means all.
	Year     int    `json:"year,omitempty"`
	Region   string `json:"region,omitempty"`
	Category string `json:"category,omitempty"`
	// Top keeps the N largest groups; 0 keeps all.
	Top int `json:"top,omitempty"`
	// Steps lists what the other agents will do, for people.
	Steps []string `json:"steps"`
}

// SQLParams are agent/sql's params.
type SQLParams struct {
	Plan QueryPlan `json:"plan"`
}

// SQLDraft is agent/sql's :progress: the SQL written so far, whole.
type SQLDraft struct {
	SQL string `json:"sql"`
}

// Table is agent/sql's result: the query and its rows. The first column is
// the group's label, the second the metric.
type Table struct {
	SQL     string    `json:"sql"`
	Columns []string  `json:"columns"`
	Labels  []string  `json:"labels"`
	Values  []float64 `json:"values"`
	// ElapsedMs is the time the query took in SQLite.
	ElapsedMs float64 `json:"elapsedMs"`
}

// AnalyzeParams are agent/analyze's params.
type AnalyzeParams struct {
	Plan  QueryPlan `json:"plan"`
	Table Table     `json:"table"`
}

// Summary is agent/analyze's result.
type Summary struct {
	Count int     `json:"count"`
	Total float64 `json:"total"`
	Mean  float64 `json:"mean"`
	// StdDev is the population standard deviation of the values.
	StdDev float64 `json:"stdDev"`
	Max    Point   `json:"max"`
	Min    Point   `json:"min"`
	// Growth is the change from the first to the last group, in percent,
	// for a time dimension (month, quarter); null otherwise.
	Growth *float64 `json:"growth"`
	// Insights are sentences about the numbers.
	Insights []string `json:"insights"`
}

// Point is a labelled value and its share of the total, in percent.
type Point struct {
	Label string  `json:"label"`
	Value float64 `json:"value"`
	Share float64 `json:"share"`
}

// ChartParams are agent/chart's params.
type ChartParams struct {
	Plan  QueryPlan `json:"plan"`
	Table Table     `json:"table"`
}

// ChartSpec is a Vega-Lite v5 specification (https://vega.github.io/vega-lite/):
// the chart agent writes a real one, which any Vega-Lite renderer draws.
type ChartSpec struct {
	Schema      string        `json:"$schema"`
	Title       string        `json:"title"`
	Description string        `json:"description"`
	Width       string        `json:"width"`
	Height      int           `json:"height"`
	Data        ChartData     `json:"data"`
	Mark        ChartMark     `json:"mark"`
	Encoding    ChartEncoding `json:"encoding"`
}

// ChartData holds the chart's rows inline: {"label": …, "value": …}.
type ChartData struct {
	Values []ChartDatum `json:"values"`
}

// ChartDatum is one row of a chart.
type ChartDatum struct {
	Label string  `json:"label"`
	Value float64 `json:"value"`
}

// ChartMark is the mark: "bar" or "line".
type ChartMark struct {
	Type    string `json:"type"`
	Tooltip bool   `json:"tooltip"`
	Point   bool   `json:"point,omitempty"`
}

// ChartEncoding maps the fields onto the axes.
type ChartEncoding struct {
	X ChartChannel `json:"x"`
	Y ChartChannel `json:"y"`
}

// ChartChannel is one axis.
type ChartChannel struct {
	Field string `json:"field"`
	// Type is Vega-Lite's: "nominal", "ordinal" or "quantitative".
	Type  string `json:"type"`
	Title string `json:"title"`
	// Sort is "-y" (largest first) for ranked bars, null to keep the order.
	Sort *string `json:"sort,omitempty"`
}
