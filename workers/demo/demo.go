// Package demo declares and serves the demo routes that `fabric dev` and
// `fabric worker --demo` run. Tests inside and outside this repository use
// them to exercise every path of the wire contract.
//
//	demo/echo    any → :response (the same payload)
//	demo/count   {n, intervalMs} → n × :progress {"i":k} → :response {"n":n}
//	demo/fail    {code, message} → :error {code, message}
//	demo/sleep   {ms} → waits, honouring cancel → :response {"sleptMs"}
//	demo/silent  → sends nothing until cancelled
//	demo/panic   → panics → :error {code:"internal"}
//	demo/push    {type, payload, delayMs} → :response {}; after delayMs, a push to the session
//	demo/whoami  → :response {"user","session"}
//
// Every request ends with :finish, sent by the SDK.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
	"github.com/seed82ac63c1/fabric/workers"
)

// Params and results of the demo routes.
type (
	CountParams struct {
		N          int `json:"n"`
		IntervalMs int `json:"intervalMs"`
	}
	CountProgress struct {
		I int `json:"i"`
	}
	CountResult struct {
		N int `json:"n"`
	}
	FailParams struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	SleepParams struct {
		Ms int `json:"ms"`
	}
	SleepResult struct {
		SleptMs int64 `json:"sleptMs"`
	}
	PushParams struct {
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload"`
		DelayMs int             `json:"delayMs"`
	}
	WhoamiResult struct {
		User    string `json:"user"`
		Session string `json:"session"`
	}
	// Empty is a payload with no fields: {}.
	Empty struct{}
)

// The demo routes.
var (
	Echo  = protocol.NewRoute[json.RawMessage, json.RawMessage]("demo/echo")
	Count = protocol.NewRoute[CountParams, CountResult]("demo/count").
		WithEvents(protocol.Event[CountProgress](protocol.SuffixProgress))
	Fail   = protocol.NewRoute[FailParams, Empty]("demo/fail")
	Sleep  = protocol.NewRoute[SleepParams, SleepResult]("demo/sleep")
	Silent = protocol.NewRoute[json.RawMessage, Empty]("demo/silent")
	Panic  = protocol.NewRoute[json.RawMessage, Empty]("demo/panic")
	Push   = protocol.NewRoute[PushParams, Empty]("demo/push")
	Whoami = protocol.NewRoute[json.RawMessage, WhoamiResult]("demo/whoami")
)

// Routes describes every demo route, for code generators.
func Routes() []protocol.RouteInfo {
	return []protocol.RouteInfo{
		Echo.Info(), Count.Info(), Fail.Info(), Sleep.Info(),
		Silent.Info(), Panic.Info(), Push.Info(), Whoami.Info(),
	}
}

// Limits that keep a demo request from holding a worker for long.
const (
	MaxCount    = 100_000
	MaxDuration = 10 * time.Minute
)

// Register registers every demo route on w.
func Register(w *workers.Worker) error {
	return errors.Join(
		workers.Handle(w, Echo, echo),
		workers.Handle(w, Count, count),
		workers.Handle(w, Fail, fail),
		workers.Handle(w, Sleep, sleep),
		workers.Handle(w, Silent, silent),
		workers.Handle(w, Panic, panicking),
		workers.Handle(w, Push, func(ctx context.Context, p PushParams, s *workers.Stream) (Empty, error) {
			return push(w, p, s)
		}),
		workers.Handle(w, Whoami, whoami),
	)
}

func echo(_ context.Context, p json.RawMessage, _ *workers.Stream) (json.RawMessage, error) {
	return p, nil
}

func count(ctx context.Context, p CountParams, s *workers.Stream) (CountResult, error) {
	if p.N < 0 || p.N > MaxCount {
		return CountResult{}, protocol.Errorf(protocol.CodeBadRequest, "n must be between 0 and %d", MaxCount)
	}
	interval := time.Duration(p.IntervalMs) * time.Millisecond
	for i := 1; i <= p.N; i++ {
		if i > 1 && interval > 0 {
			if err := wait(ctx, interval); err != nil {
				return CountResult{}, err
			}
		} else if err := ctx.Err(); err != nil {
			return CountResult{}, err
		}
		if err := s.Progress(CountProgress{I: i}); err != nil {
			return CountResult{}, err
		}
	}
	return CountResult{N: p.N}, nil
}

func fail(_ context.Context, p FailParams, _ *workers.Stream) (Empty, error) {
	if p.Code == "" {
		p.Code = "failed"
	}
	return Empty{}, &protocol.Error{Code: protocol.Code(p.Code), Message: p.Message}
}

func sleep(ctx context.Context, p SleepParams, _ *workers.Stream) (SleepResult, error) {
	d := time.Duration(p.Ms) * time.Millisecond
	if d < 0 || d > MaxDuration {
		return SleepResult{}, protocol.Errorf(protocol.CodeBadRequest, "ms must be between 0 and %d", MaxDuration.Milliseconds())
	}
	start := time.Now()
	if err := wait(ctx, d); err != nil {
		return SleepResult{}, err
	}
	return SleepResult{SleptMs: time.Since(start).Milliseconds()}, nil
}

func silent(ctx context.Context, _ json.RawMessage, _ *workers.Stream) (Empty, error) {
	<-ctx.Done()
	return Empty{}, ctx.Err()
}

func panicking(context.Context, json.RawMessage, *workers.Stream) (Empty, error) {
	panic("demo/panic: the handler panicked on purpose")
}

func push(w *workers.Worker, p PushParams, s *workers.Stream) (Empty, error) {
	if p.DelayMs < 0 || time.Duration(p.DelayMs)*time.Millisecond > MaxDuration {
		return Empty{}, protocol.Errorf(protocol.CodeBadRequest, "delayMs must be between 0 and %d", MaxDuration.Milliseconds())
	}
	var payload any = p.Payload
	if len(p.Payload) == 0 {
		payload = nil
	}
	session := s.Session()
	// Check the type now, so that a bad one fails the request.
	if err := subjects.ValidatePushType(p.Type); err != nil {
		return Empty{}, protocol.Errorf(protocol.CodeBadRequest, "type: %v", err)
	}
	time.AfterFunc(time.Duration(p.DelayMs)*time.Millisecond, func() {
		_ = w.Push(context.Background(), workers.ToSession(session), p.Type, payload)
	})
	return Empty{}, nil
}

func whoami(_ context.Context, _ json.RawMessage, s *workers.Stream) (WhoamiResult, error) {
	return WhoamiResult{User: s.User(), Session: s.Session()}, nil
}

func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
