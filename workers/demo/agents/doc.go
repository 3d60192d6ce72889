// Package agents is the multi-agent demo: a question about a sales dataset
// answered by five agents, each a route that its own worker pool may serve.
//
//	agent/ask      the orchestrator: calls the four below, in turn, and
//	               streams each step's state as agent/ask:step
//	agent/plan     the planner: question → QueryPlan (scripted, not an LLM)
//	agent/sql      plan → SQL, run on SQLite over the embedded sales.csv → Table
//	agent/analyze  table → Summary: totals, spread, extremes, growth, insights
//	agent/chart    table → a Vega-Lite v5 chart specification
//
// The agents really do the work (the SQL runs, the numbers are computed, the
// chart spec is valid Vega-Lite); only the planner's understanding of
// English is a script. They pace their output like language models would,
// so that a page shows steps updating live; Config.Pace scales that.
//
// `fabric dev` serves them all in one process; `fabric worker --agents`
// serves them in a cluster, and --routes picks which.
package agents

//go:generate go run gen_dataset.go
