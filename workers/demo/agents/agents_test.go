package agents_test

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/csv"
	"errors"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/seed82ac63c1/fabric/client"
	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers"
	"github.com/seed82ac63c1/fabric/workers/demo/agents"
)

// noPause runs the agents as fast as they go.
var noPause = agents.Config{Pace: -1}

// startFabric starts NATS, a gateway and one worker per group of agent
// routes (each group its own worker pool, as in a cluster), and returns a
// client of the gateway.
func startFabric(t *testing.T, cfg agents.Config, pools ...[]string) (*client.Client, *server.Server) {
	t.Helper()
	ns := fabrictest.NATS(t)
	gw := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gateway"), gateway.Config{})
	for i, routes := range pools {
		fabrictest.StartWorker(t, fabrictest.Connect(t, ns, "agents-"+strconv.Itoa(i)), workers.Config{}, func(w *workers.Worker) error {
			return agents.Register(w, cfg, routes...)
		})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, gw.URL, client.Options{NoReconnect: true, Logger: fabrictest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, ns
}

// all is every agent in one pool, as `fabric dev` runs them.
var all = []string(nil)

// ask calls agent/ask and returns the latest state of each step, the answer
// and the error event, if any.
func ask(t *testing.T, c *client.Client, p agents.AskParams) (map[string][]agents.Step, agents.Answer, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	msgs, err := c.Call(ctx, agents.Ask.Type(), p)
	steps := map[string][]agents.Step{}
	var ans agents.Answer
	for _, m := range msgs {
		switch m.Suffix() {
		case agents.SuffixStep:
			var st agents.Step
			if err := m.Decode(&st); err != nil {
				t.Fatal(err)
			}
			steps[st.ID] = append(steps[st.ID], st)
		case protocol.SuffixResponse:
			if err := m.Decode(&ans); err != nil {
				t.Fatal(err)
			}
		}
	}
	return steps, ans, err
}

func last(steps []agents.Step) agents.Step { return steps[len(steps)-1] }

// revenueByRegion2025 adds up sales.csv without SQL, to check the SQL agent.
func revenueByRegion2025(t *testing.T) map[string]float64 {
	data, err := os.ReadFile("sales.csv")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]float64{}
	for _, r := range rows[1:] {
		if strings.HasPrefix(r[1], "2025-") {
			v, err := strconv.ParseFloat(r[6], 64)
			if err != nil {
				t.Fatal(err)
			}
			sums[r[2]] += v
		}
	}
	return sums
}

func TestAskRunsEveryStepOnTheData(t *testing.T) {
	c, _ := startFabric(t, noPause, all)
	steps, ans, err := ask(t, c, agents.AskParams{Question: "Which region had the highest revenue in 2025?"})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{agents.StepPlan, agents.StepSQL, agents.StepAnalysis, agents.StepChart} {
		var statuses []string
		for _, st := range steps[id] {
			if len(statuses) == 0 || statuses[len(statuses)-1] != st.Status {
				statuses = append(statuses, st.Status)
			}
		}
		if want := []string{"pending", "running", "done"}; !slices.Equal(statuses, want) {
			t.Errorf("step %s went through %v, want %v", id, statuses, want)
		}
	}
	if p := ans.Plan; p.Metric != "revenue" || p.Dimension != "region" || p.Year != 2025 {
		t.Errorf("plan = %+v, want revenue by region in 2025", p)
	}
	if !strings.Contains(last(steps[agents.StepPlan]).Text, "Only 2025 counts.") {
		t.Errorf("the planner's thoughts were not streamed: %q", last(steps[agents.StepPlan]).Text)
	}

	want := revenueByRegion2025(t)
	if len(ans.Table.Labels) != len(want) {
		t.Fatalf("table has %d rows, want %d: %+v", len(ans.Table.Labels), len(want), ans.Table)
	}
	for i, label := range ans.Table.Labels {
		if math.Abs(ans.Table.Values[i]-want[label]) > 0.01 {
			t.Errorf("revenue of %s = %.2f, want %.2f", label, ans.Table.Values[i], want[label])
		}
		if i > 0 && ans.Table.Values[i] > ans.Table.Values[i-1] {
			t.Errorf("rows are not largest first: %v", ans.Table.Values)
		}
	}
	if sql := last(steps[agents.StepSQL]).Text; sql != ans.Table.SQL || !strings.Contains(sql, "FROM orders") {
		t.Errorf("the SQL step shows %q, the table was made by %q", sql, ans.Table.SQL)
	}

	var total float64
	for _, v := range want {
		total += v
	}
	s := ans.Summary
	if s.Count != 4 || math.Abs(s.Total-total) > 0.05 || s.Max.Label != ans.Table.Labels[0] || s.Growth != nil {
		t.Errorf("summary = %+v, want 4 regions totalling %.2f led by %s", s, total, ans.Table.Labels[0])
	}
	if math.Abs(s.Max.Share-100*s.Max.Value/s.Total) > 0.01 || len(s.Insights) == 0 {
		t.Errorf("summary's share or insights are wrong: %+v", s)
	}

	ch := ans.Chart
	if ch.Schema != agents.VegaLiteSchema || ch.Mark.Type != "bar" || len(ch.Data.Values) != 4 ||
		ch.Encoding.X.Field != "label" || ch.Encoding.Y.Field != "value" || ch.Encoding.Y.Type != "quantitative" {
		t.Errorf("chart spec = %+v", ch)
	}
	if !strings.Contains(ans.Text, ans.Table.Labels[0]) {
		t.Errorf("answer %q does not name the leader %s", ans.Text, ans.Table.Labels[0])
	}
}

func TestAskOverTimeDrawsALineWithGrowth(t *testing.T) {
	c, _ := startFabric(t, noPause, all)
	_, ans, err := ask(t, c, agents.AskParams{Question: "How did monthly revenue trend in the West in 2025?"})
	if err != nil {
		t.Fatal(err)
	}
	if p := ans.Plan; p.Dimension != "month" || p.Region != "West" || p.Year != 2025 {
		t.Fatalf("plan = %+v", p)
	}
	if len(ans.Table.Labels) != 12 || ans.Table.Labels[0] != "2025-01" || ans.Table.Labels[11] != "2025-12" {
		t.Fatalf("months = %v", ans.Table.Labels)
	}
	if ans.Summary.Growth == nil || ans.Chart.Mark.Type != "line" || ans.Chart.Encoding.X.Sort != nil {
		t.Errorf("want growth and an unsorted line chart: summary %+v, chart %+v", ans.Summary, ans.Chart)
	}
}

// Each agent in its own pool, as a cluster runs them: the orchestrator
// reaches the others over NATS.
func TestAgentsInSeparatePools(t *testing.T) {
	var pools [][]string
	for _, r := range agents.Routes() {
		pools = append(pools, []string{r.Type})
	}
	c, _ := startFabric(t, noPause, pools...)
	_, ans, err := ask(t, c, agents.AskParams{Question: "Top 3 products by units sold"})
	if err != nil {
		t.Fatal(err)
	}
	if ans.Plan.Metric != "units" || ans.Plan.Dimension != "product" || ans.Plan.Top != 3 || len(ans.Table.Labels) != 3 {
		t.Errorf("plan %+v, table %+v", ans.Plan, ans.Table)
	}
}

// A client's state is reused: with plan and table sent back, the planner and
// the SQL agent are not called, so no worker needs to serve them.
func TestAskReusesTheClientsState(t *testing.T) {
	full, _ := startFabric(t, noPause, all)
	_, first, err := ask(t, full, agents.AskParams{Question: "Revenue by category"})
	if err != nil {
		t.Fatal(err)
	}

	c, _ := startFabric(t, noPause, []string{agents.Ask.Type(), agents.Analyze.Type(), agents.Chart.Type()})
	steps, ans, err := ask(t, c, agents.AskParams{
		Question: "Revenue by category",
		State:    &agents.AskState{Plan: &first.Plan, Table: &first.Table},
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{agents.StepPlan: "reused", agents.StepSQL: "reused", agents.StepAnalysis: "done", agents.StepChart: "done"} {
		if got := last(steps[id]).Status; got != want {
			t.Errorf("step %s ended %s, want %s", id, got, want)
		}
	}
	if !slices.Equal(ans.Table.Values, first.Table.Values) || ans.Summary.Total != first.Summary.Total {
		t.Errorf("the reused run's numbers differ: %+v vs %+v", ans.Summary, first.Summary)
	}

	// An edited plan runs everything after it again: here, without an SQL
	// agent, that fails in the SQL step, and says so.
	edited := first.Plan
	edited.Dimension = "region"
	steps, _, err = ask(t, c, agents.AskParams{Question: "Revenue by category", State: &agents.AskState{Plan: &edited}})
	var perr *protocol.Error
	if !errors.As(err, &perr) || perr.Code != protocol.CodeNoResponders {
		t.Fatalf("err = %v, want no_responders from the SQL step", err)
	}
	if st := last(steps[agents.StepSQL]); st.Status != "failed" || st.Error == nil || st.Error.Code != protocol.CodeNoResponders {
		t.Errorf("SQL step = %+v, want failed with no_responders", st)
	}
	if st := last(steps[agents.StepAnalysis]); st.Status != "pending" {
		t.Errorf("analysis step = %+v, want still pending", st)
	}
}

func TestAskFollowsUpOnAPreviousPlan(t *testing.T) {
	c, _ := startFabric(t, noPause, all)
	_, first, err := ask(t, c, agents.AskParams{Question: "Revenue by region in 2024"})
	if err != nil {
		t.Fatal(err)
	}
	_, next, err := ask(t, c, agents.AskParams{Question: "and by quarter?", Previous: &first.Plan})
	if err != nil {
		t.Fatal(err)
	}
	if p := next.Plan; p.Dimension != "quarter" || p.Year != 2024 || p.Metric != "revenue" {
		t.Errorf("follow-up plan = %+v, want revenue by quarter in 2024", p)
	}
	if want := []string{"2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"}; !slices.Equal(next.Table.Labels, want) {
		t.Errorf("quarters = %v, want %v", next.Table.Labels, want)
	}
}

func TestAskRejectsBadInput(t *testing.T) {
	c, _ := startFabric(t, noPause, all)
	bad := agents.QueryPlan{Metric: "revenue; DROP TABLE orders", Dimension: "region"}
	for name, p := range map[string]agents.AskParams{
		"empty question":    {Question: "  "},
		"long question":     {Question: strings.Repeat("why ", 200)},
		"injected metric":   {Question: "q", State: &agents.AskState{Plan: &bad}},
		"unknown region":    {Question: "q", Previous: &agents.QueryPlan{Metric: "revenue", Dimension: "region", Region: "Mars"}},
		"labels and values": {Question: "q", State: &agents.AskState{Plan: &agents.QueryPlan{Metric: "units", Dimension: "region"}, Table: &agents.Table{Labels: []string{"a"}, Values: []float64{1, 2}}}},
	} {
		_, _, err := ask(t, c, p)
		var perr *protocol.Error
		if !errors.As(err, &perr) || perr.Code != protocol.CodeBadRequest {
			t.Errorf("%s: err = %v, want bad_request", name, err)
		}
	}
	// The dataset is untouched.
	if _, ans, err := ask(t, c, agents.AskParams{Question: "orders by region"}); err != nil || ans.Summary.Total == 0 {
		t.Errorf("after bad input: %v, %+v", err, ans.Summary)
	}
}

// Cancelling agent/ask cancels the agent it is waiting on: the planner's
// handler ends, and the worker is idle again.
func TestCancelStopsTheRun(t *testing.T) {
	c, _ := startFabric(t, agents.Config{Pace: 50 * time.Millisecond}, all)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var steps []agents.Step
	var sawCancel bool
	for m, err := range c.Stream(ctx, agents.Ask.Type(), agents.AskParams{Question: "Top 5 products by revenue"}) {
		if err != nil {
			sawCancel = errors.Is(err, context.Canceled)
			break
		}
		if m.Suffix() != agents.SuffixStep {
			continue
		}
		var st agents.Step
		if err := m.Decode(&st); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, st)
		if st.ID == agents.StepSQL && st.Status == "running" {
			cancel()
		}
	}
	if !sawCancel {
		t.Fatalf("the stream did not end with the cancel; steps: %+v", steps)
	}
	for _, st := range steps {
		if st.ID == agents.StepChart && st.Status != "pending" {
			t.Errorf("the chart step ran after the cancel: %+v", st)
		}
	}
}

func TestRegisterRejectsUnknownAgents(t *testing.T) {
	ns := fabrictest.NATS(t)
	w, err := workers.New(fabrictest.Connect(t, ns, "w"), workers.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := agents.Register(w, noPause, "agent/sql", "agent/poet"); !errors.Is(err, agents.ErrUnknownAgent) {
		t.Errorf("err = %v, want ErrUnknownAgent", err)
	}
}
