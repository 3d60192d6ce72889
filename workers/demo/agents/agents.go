package agents

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/seed82ac63c1/fabric/workers"
)

// Config configures the agents. The zero value selects the defaults.
type Config struct {
	// Pace is the pause between two pieces of an agent's output (a few
	// words of its thinking, a line of SQL), so that a page shows the steps
	// progress like a language model's. 0 means 100ms, which makes a run
	// last about 5 s; a negative Pace means no pauses (tests).
	Pace time.Duration
}

// DefaultPace is Config.Pace's default.
const DefaultPace = 100 * time.Millisecond

// ErrUnknownAgent is returned by Register for a route that is not an agent's.
var ErrUnknownAgent = errors.New("agents: unknown route")

type agents struct {
	pace time.Duration
}

// Register makes w serve the agents' routes: the ones named (see Routes),
// or all of them when none is. A cluster runs each agent in its own worker
// pool by giving each pool its own names; `fabric dev` runs them all in one.
func Register(w *workers.Worker, cfg Config, names ...string) error {
	a := &agents{pace: cfg.Pace}
	if a.pace == 0 {
		a.pace = DefaultPace
	}
	handlers := map[string]func() error{
		Ask.Type():     func() error { return workers.Handle(w, Ask, a.ask) },
		Plan.Type():    func() error { return workers.Handle(w, Plan, a.plan) },
		SQL.Type():     func() error { return workers.Handle(w, SQL, a.sql) },
		Analyze.Type(): func() error { return workers.Handle(w, Analyze, a.analyze) },
		Chart.Type():   func() error { return workers.Handle(w, Chart, a.chart) },
	}
	if len(names) == 0 {
		for _, r := range Routes() {
			names = append(names, r.Type)
		}
	}
	for _, name := range names {
		if handlers[name] == nil {
			return fmt.Errorf("%w %q (the agents are %s)", ErrUnknownAgent, name, strings.Join(slices.Sorted(maps.Keys(handlers)), ", "))
		}
	}
	if slices.Contains(names, SQL.Type()) {
		if _, err := openDataset(); err != nil {
			return err
		}
	}
	var errs []error
	for _, name := range names {
		errs = append(errs, handlers[name]())
	}
	return errors.Join(errs...)
}

// say sends text as a Thought, a few words at a time, pausing between them.
func (a *agents) say(ctx context.Context, s *workers.Stream, text string) error {
	words := strings.SplitAfter(text, " ")
	if words[len(words)-1] == "" {
		words = words[:len(words)-1]
	}
	for i := 0; i < len(words); i += 3 {
		if err := a.pause(ctx, 1); err != nil {
			return err
		}
		if err := s.Progress(Thought{Text: strings.Join(words[i:min(i+3, len(words))], "")}); err != nil {
			return err
		}
	}
	return nil
}

// pause waits n paces, or until ctx ends.
func (a *agents) pause(ctx context.Context, n int) error {
	if a.pace < 0 {
		return ctx.Err()
	}
	t := time.NewTimer(time.Duration(n) * a.pace)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
