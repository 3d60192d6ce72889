package agents

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/seed82ac63c1/fabric/examples/agents/routes"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers"
)

// Config configures the research agent. The zero value answers at once.
type Config struct {
	// StepDelay is how long each research step takes, standing in for the
	// model and tool calls of a real agent. 0 means no delay.
	StepDelay time.Duration
}

// Register registers the research agent's routes on w. Call it before
// w.Start.
func Register(w *workers.Worker, cfg Config) error {
	return workers.Handle(w, routes.Ask, func(ctx context.Context, p routes.AskParams, s *workers.Stream) (routes.AskResult, error) {
		return Ask(ctx, cfg, p, s)
	})
}

// Ask serves [routes.Ask]: it validates the params, streams one ":progress"
// as each research step begins, streams the answer as ":token" events, and returns the
// result, which the SDK sends as ":response" before its ":finish".
//
// Bad params end the request with a *protocol.Error of code bad_request.
// When ctx is cancelled (the client cancelled, the gateway timed the request
// out, the worker is shutting down) Ask stops and returns ctx's error, which
// the SDK reports as cancelled or timeout.
func Ask(ctx context.Context, cfg Config, p routes.AskParams, s *workers.Stream) (routes.AskResult, error) {
	question, steps, err := Validate(p)
	if err != nil {
		return routes.AskResult{}, err
	}
	for k := 1; k <= steps; k++ {
		if err := s.Progress(routes.Progress{Step: k, Note: Note(k, steps)}); err != nil {
			return routes.AskResult{}, err
		}
		if err := pause(ctx, cfg.StepDelay); err != nil { // the step's work
			return routes.AskResult{}, err
		}
	}
	result := Research(question, steps)
	for _, tok := range Tokens(result.Answer) {
		if err := ctx.Err(); err != nil {
			return routes.AskResult{}, err
		}
		if err := s.Send(routes.SuffixToken, routes.Token{Text: tok}); err != nil {
			return routes.AskResult{}, err
		}
	}
	return result, nil
}

// Validate checks Ask's params and returns the question, trimmed, and the
// number of steps, defaulted. A bad param is a *protocol.Error of code
// bad_request: the client sees its message.
func Validate(p routes.AskParams) (question string, steps int, err error) {
	question = strings.TrimSpace(p.Question)
	if question == "" {
		return "", 0, protocol.Errorf(protocol.CodeBadRequest, "question must not be empty")
	}
	steps = p.Steps
	if steps == 0 {
		steps = routes.DefaultSteps
	}
	if steps < 0 || steps > routes.MaxSteps {
		return "", 0, protocol.Errorf(protocol.CodeBadRequest, "steps must be between 1 and %d", routes.MaxSteps)
	}
	return question, steps, nil
}

var phases = []string{"searching for sources", "reading the sources", "cross-checking the claims"}

// Note describes research step k of steps: the last step drafts the answer.
func Note(k, steps int) string {
	if k == steps {
		return "drafting the answer"
	}
	return phases[(k-1)%len(phases)]
}

// Research is the stand-in for the agent's work: a deterministic answer to
// question, with one source per step.
func Research(question string, steps int) routes.AskResult {
	sources := make([]string, steps)
	for k := range sources {
		sources[k] = fmt.Sprintf("https://example.org/sources/%d", k+1)
	}
	return routes.AskResult{
		Answer:  fmt.Sprintf("A stand-in answer to %q, drawn from %d sources.", question, steps),
		Sources: sources,
	}
}

// Tokens splits an answer into the texts of its ":token" events: words with
// their trailing space, so that the tokens joined are the answer.
func Tokens(answer string) []string { return strings.SplitAfter(answer, " ") }

// pause waits d, or until ctx is done.
func pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
