package agents

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers"
)

// ask is agent/ask, the orchestrator: it runs the plan, SQL, analysis and
// chart steps in turn, each by calling its agent's route, and streams each
// step's state as it changes. Steps whose output the client sent back in
// State are reused, not run.
func (a *agents) ask(ctx context.Context, p AskParams, s *workers.Stream) (Answer, error) {
	p.Question = strings.TrimSpace(p.Question)
	if err := p.validate(); err != nil {
		return Answer{}, err
	}
	state := p.State
	if state == nil {
		state = &AskState{}
	}
	r := &run{stream: s, steps: map[string]*Step{
		StepPlan:     {ID: StepPlan, Agent: Plan.Type(), Title: "Plan the analysis"},
		StepSQL:      {ID: StepSQL, Agent: SQL.Type(), Title: "Query the sales data"},
		StepAnalysis: {ID: StepAnalysis, Agent: Analyze.Type(), Title: "Analyse the numbers"},
		StepChart:    {ID: StepChart, Agent: Chart.Type(), Title: "Draw the chart"},
	}}
	for _, id := range stepOrder {
		r.steps[id].Status = StatusPending
		if err := r.send(id); err != nil {
			return Answer{}, err
		}
	}

	var ans Answer
	var err error
	if state.Plan != nil {
		ans.Plan = *state.Plan
		err = r.reuse(StepPlan, func(st *Step) { st.Plan = &ans.Plan; st.Text = "Plan: " + ans.Plan.Intent + "." })
	} else {
		ans.Plan, err = runStep[QueryPlan](ctx, r, StepPlan, PlanParams{Question: p.Question, Previous: p.Previous},
			func(st *Step, v Thought) { st.Text += v.Text },
			func(st *Step, v *QueryPlan) { st.Plan = v })
	}
	if err != nil {
		return Answer{}, err
	}

	// A table is reused only with the plan it was made from.
	if state.Plan != nil && state.Table != nil {
		ans.Table = *state.Table
		err = r.reuse(StepSQL, func(st *Step) { st.Table = &ans.Table; st.Text = ans.Table.SQL })
	} else {
		ans.Table, err = runStep[Table](ctx, r, StepSQL, SQLParams{Plan: ans.Plan},
			func(st *Step, v SQLDraft) { st.Text = v.SQL },
			func(st *Step, v *Table) { st.Table = v; st.Text = v.SQL })
	}
	if err != nil {
		return Answer{}, err
	}

	if state.Plan != nil && state.Table != nil && state.Summary != nil {
		ans.Summary = *state.Summary
		err = r.reuse(StepAnalysis, func(st *Step) { st.Summary = &ans.Summary })
	} else {
		ans.Summary, err = runStep[Summary](ctx, r, StepAnalysis, AnalyzeParams{Plan: ans.Plan, Table: ans.Table},
			func(st *Step, v Thought) { st.Text += v.Text },
			func(st *Step, v *Summary) { st.Summary = v })
	}
	if err != nil {
		return Answer{}, err
	}

	ans.Chart, err = runStep[ChartSpec](ctx, r, StepChart, ChartParams{Plan: ans.Plan, Table: ans.Table},
		func(st *Step, v Thought) { st.Text += v.Text },
		func(st *Step, v *ChartSpec) { st.Chart = v })
	if err != nil {
		return Answer{}, err
	}
	ans.Text = answerText(ans)
	return ans, nil
}

var stepOrder = []string{StepPlan, StepSQL, StepAnalysis, StepChart}

func (p *AskParams) validate() error {
	switch {
	case p.Question == "":
		return protocol.Errorf(protocol.CodeBadRequest, "ask a question about the sales data")
	case len(p.Question) > MaxQuestionBytes:
		return protocol.Errorf(protocol.CodeBadRequest, "a question has at most %d bytes", MaxQuestionBytes)
	}
	if p.Previous != nil {
		if err := p.Previous.validate(); err != nil {
			return err
		}
	}
	if st := p.State; st != nil {
		if st.Plan != nil {
			if err := st.Plan.validate(); err != nil {
				return err
			}
		}
		if st.Table != nil {
			if err := st.Table.validate(); err != nil {
				return err
			}
		}
	}
	return nil
}

// run is one agent/ask's steps and the stream they are sent on. Only the
// handler's goroutine uses it.
type run struct {
	stream *workers.Stream
	steps  map[string]*Step
}

// send sends step id's state.
func (r *run) send(id string) error {
	return r.stream.Send(SuffixStep, r.steps[id])
}

// update changes step id and sends its new state.
func (r *run) update(id string, change func(*Step)) error {
	change(r.steps[id])
	return r.send(id)
}

// reuse marks step id done with the output the client sent back.
func (r *run) reuse(id string, set func(*Step)) error {
	return r.update(id, func(st *Step) { st.Status = StatusReused; set(st) })
}

// runStep runs step id by calling its agent's route with params: its
// :progress events (of type P) update the step through progress, its
// :response (R) is the step's output, given to done. A failed call fails the
// step and the run with the agent's error.
func runStep[R, P any](ctx context.Context, r *run, id string, params any, progress func(*Step, P), done func(*Step, *R)) (R, error) {
	var result R
	start := time.Now()
	elapsed := func(st *Step) { st.ElapsedMs = time.Since(start).Milliseconds() }
	agent := r.steps[id].Agent
	if err := r.update(id, func(st *Step) { st.Status = StatusRunning; elapsed(st) }); err != nil {
		return result, err
	}
	var failure *protocol.Error
	var got bool
	for m, err := range r.stream.CallStream(ctx, agent, params) {
		if err != nil {
			if ctx.Err() != nil {
				return result, ctx.Err() // cancelled: the client sees the cancel, not a failed step
			}
			failure = &protocol.Error{Code: protocol.CodeInternal, Message: err.Error()}
			break
		}
		switch m.Suffix() {
		case protocol.SuffixProgress:
			var v P
			if err := json.Unmarshal(m.Payload, &v); err != nil {
				continue // not this agent's kind of progress: skip it
			}
			if err := r.update(id, func(st *Step) { progress(st, v); elapsed(st) }); err != nil {
				return result, err
			}
		case protocol.SuffixResponse:
			if err := json.Unmarshal(m.Payload, &result); err != nil {
				failure = protocol.Errorf(protocol.CodeInternal, "%s answered with %v", agent, err)
				continue
			}
			got = true
		case protocol.SuffixError:
			failure = &protocol.Error{}
			if err := json.Unmarshal(m.Payload, failure); err != nil || failure.Code == "" {
				failure = protocol.Errorf(protocol.CodeInternal, "%s failed", agent)
			}
		}
	}
	if failure == nil && !got {
		failure = protocol.Errorf(protocol.CodeInternal, "%s finished without an answer", agent)
	}
	if failure != nil {
		_ = r.update(id, func(st *Step) { st.Status = StatusFailed; st.Error = failure; elapsed(st) })
		return result, &protocol.Error{Code: failure.Code, Message: fmt.Sprintf("%s step: %s", id, failure.Message)}
	}
	return result, r.update(id, func(st *Step) { st.Status = StatusDone; done(st, &result); elapsed(st) })
}

// answerText writes the answer's few sentences.
func answerText(ans Answer) string {
	var b strings.Builder
	b.WriteString(ans.Plan.Intent + ": ")
	if len(ans.Summary.Insights) > 0 {
		b.WriteString(strings.Join(ans.Summary.Insights, " "))
	} else {
		fmt.Fprintf(&b, "%s is highest at %s.", ans.Summary.Max.Label, format(ans.Plan.Metric, ans.Summary.Max.Value))
	}
	if isTime(ans.Plan.Dimension) || ans.Plan.Metric == "avg_order_value" {
		return b.String()
	}
	fmt.Fprintf(&b, " In all, %s.", format(ans.Plan.Metric, ans.Summary.Total))
	return b.String()
}
