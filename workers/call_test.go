package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers"
	"github.com/seed82ac63c1/fabric/workers/demo"
)

// agents starts a fabric (gateway + demo worker) and a second worker whose
// handlers call other routes.
func agents(t *testing.T, cfg workers.Config, register func(w *workers.Worker)) *fabrictest.Fabric {
	t.Helper()
	f := fabrictest.Start(t, gateway.Config{})
	fabrictest.StartWorker(t, fabrictest.Connect(t, f.NATS, "agents"), cfg, func(w *workers.Worker) error { register(w); return nil })
	return f
}

func frames(msgs []protocol.Message) string {
	var parts []string
	for _, m := range msgs {
		parts = append(parts, fmt.Sprintf("%s#%d:%s", m.Type, m.Seq, m.Payload))
	}
	return strings.Join(parts, " ")
}

func TestHandlerCallsOtherRoutes(t *testing.T) {
	f := agents(t, workers.Config{}, func(w *workers.Worker) {
		err := w.HandleRaw("agent/plan", workers.HandlerFunc(func(ctx context.Context, _ *workers.Request, s *workers.Stream) error {
			// Forward a child's progress to our own client as steps.
			for m, err := range s.CallStream(ctx, "demo/count", demo.CountParams{N: 2}) {
				if err != nil {
					return err
				}
				if m.Suffix() == protocol.SuffixProgress {
					if err := s.Send("step", m.Payload); err != nil {
						return err
					}
				}
			}
			res, err := workers.Invoke(ctx, s, demo.Count, demo.CountParams{N: 5})
			if err != nil {
				return err
			}
			return s.Respond(map[string]int{"counted": res.N})
		}))
		if err != nil {
			t.Fatal(err)
		}
	})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	got := frames(ws.Call("agent/plan", "p1", nil))
	want := `agent/plan:step#1:{"i":1} agent/plan:step#2:{"i":2} agent/plan:response#3:{"counted":5} agent/plan:finish#4:`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestCallErrors(t *testing.T) {
	f := agents(t, workers.Config{CallTimeout: 300 * time.Millisecond}, func(w *workers.Worker) {
		_ = w.HandleRaw("agent/try", workers.HandlerFunc(func(ctx context.Context, req *workers.Request, s *workers.Stream) error {
			var p struct{ Route string }
			_ = json.Unmarshal(req.Payload, &p)
			var payload any
			if p.Route == "demo/fail" {
				payload = demo.FailParams{Code: "child_failed", Message: "the child failed"}
			}
			msgs, err := s.Call(ctx, p.Route, payload)
			var e *protocol.Error
			if !errors.As(err, &e) {
				return fmt.Errorf("want a *protocol.Error, got %v", err)
			}
			// Every child ends with exactly one finish, numbered on.
			if last := msgs[len(msgs)-1]; last.Suffix() != protocol.SuffixFinish || last.Seq != uint64(len(msgs)) {
				return fmt.Errorf("child messages %s", frames(msgs))
			}
			return e // passes the child's code on to our client
		}))
	})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	for route, code := range map[string]string{
		"demo/fail":     "child_failed",
		"nobody/serves": "no_responders",
		"demo/silent":   "timeout",
		"demo/panic":    "internal",
	} {
		msgs := ws.Call("agent/try", "t-"+strings.ReplaceAll(route, "/", "-"), map[string]string{"route": route})
		if len(msgs) != 2 || !strings.Contains(string(msgs[0].Payload), `"code":"`+code+`"`) {
			t.Errorf("%s: got %s, want code %s", route, frames(msgs), code)
		}
	}
}

// TestCancelFlowsDown: cancelling the client's request cancels the parent
// handler's ctx, which cancels the child on its own worker.
func TestCancelFlowsDown(t *testing.T) {
	childCancelled := make(chan struct{}, 1)
	childStarted := make(chan struct{}, 1)
	f := agents(t, workers.Config{}, func(w *workers.Worker) {
		_ = w.HandleRaw("agent/parent", workers.HandlerFunc(func(ctx context.Context, _ *workers.Request, s *workers.Stream) error {
			_, err := s.Call(ctx, "agent/child", nil)
			return err
		}))
		_ = w.HandleRaw("agent/child", workers.HandlerFunc(func(ctx context.Context, _ *workers.Request, _ *workers.Stream) error {
			childStarted <- struct{}{}
			<-ctx.Done()
			childCancelled <- struct{}{}
			return ctx.Err()
		}))
	})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	ws.Request("agent/parent", "c1", nil)
	<-childStarted
	ws.Send(map[string]string{"type": "sys/cancel", "id": "c1"})
	select {
	case <-childCancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the child was not cancelled")
	}
	if msgs := ws.Collect("c1")["c1"]; len(msgs) != 2 || !strings.Contains(string(msgs[0].Payload), `"cancelled"`) {
		t.Fatalf("got %s", frames(msgs))
	}
}

// TestCallCarriesUserAndTrace: a child sees the parent request's trace
// context, and answers the worker's own session, not the client's.
func TestCallCarriesTrace(t *testing.T) {
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	f := agents(t, workers.Config{}, func(w *workers.Worker) {
		_ = w.HandleRaw("agent/parent", workers.HandlerFunc(func(ctx context.Context, req *workers.Request, s *workers.Stream) error {
			msgs, err := s.Call(ctx, "agent/child", nil)
			if err != nil {
				return err
			}
			return s.Respond(msgs[0].Payload)
		}))
		_ = w.HandleRaw("agent/child", workers.HandlerFunc(func(_ context.Context, req *workers.Request, s *workers.Stream) error {
			return s.Respond(map[string]string{"traceparent": req.Header.Get("traceparent"), "session": req.Session})
		}))
	})
	ws, welcome := fabrictest.Hello(t, f.Gateway.URL)
	ws.Send(map[string]any{"type": "agent/parent", "id": "tr", "traceparent": traceparent})
	msgs := ws.Collect("tr")["tr"]
	var child struct{ Traceparent, Session string }
	if len(msgs) != 2 || msgs[0].Decode(&child) != nil || child.Traceparent != traceparent || child.Session == welcome.SessionID || child.Session == "" {
		t.Fatalf("got %s", frames(msgs))
	}
}
