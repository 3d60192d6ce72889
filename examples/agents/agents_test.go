package agents_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/seed82ac63c1/fabric/client"
	"github.com/seed82ac63c1/fabric/examples/agents"
	"github.com/seed82ac63c1/fabric/examples/agents/routes"
	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
	"github.com/seed82ac63c1/fabric/workers"
)

// fabric is an embedded NATS server, a gateway, the research agent's worker
// and a Go client connected to the gateway.
type fabric struct {
	nats *server.Server
	gw   *fabrictest.Gateway
	c    *client.Client
}

// start starts a fabric whose worker serves the research agent with cfg.
// Everything stops at cleanup.
func start(t *testing.T, cfg agents.Config) *fabric {
	t.Helper()
	ns := fabrictest.NATS(t)
	gw := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gateway"), gateway.Config{})
	w, err := workers.New(fabrictest.Connect(t, ns, "agents"), workers.Config{}, workers.WithLogger(fabrictest.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := agents.Register(w, cfg); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Shutdown(ctx); err != nil {
			t.Errorf("worker shutdown: %v", err)
		}
	})
	return &fabric{nats: ns, gw: gw, c: dial(t, gw.URL)}
}

func dial(t *testing.T, url string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, url, client.Options{NoReconnect: true, Logger: fabrictest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// event is what a test expects of one event: its type and its payload,
// decoded into the type the route declares for it.
type event struct {
	typ     string
	payload any // nil: no payload
}

func progress(step int, note string) event {
	return event{"research/ask:progress", routes.Progress{Step: step, Note: note}}
}

func tokens(answer string) []event {
	var evs []event
	for _, tok := range strings.SplitAfter(answer, " ") {
		evs = append(evs, event{"research/ask:token", routes.Token{Text: tok}})
	}
	return evs
}

// checkEvents checks that msgs are exactly want, as the events of one
// request: one id, seq 1..n without gaps.
func checkEvents(t *testing.T, msgs []protocol.Message, want []event) {
	t.Helper()
	if len(msgs) != len(want) {
		t.Errorf("got %d events, want %d", len(msgs), len(want))
	}
	for i := range min(len(msgs), len(want)) {
		m, w := msgs[i], want[i]
		if m.Type != w.typ {
			t.Errorf("event %d: type %q, want %q", i+1, m.Type, w.typ)
		}
		if m.ID == "" || m.ID != msgs[0].ID {
			t.Errorf("event %d: id %q, want %q", i+1, m.ID, msgs[0].ID)
		}
		if m.Seq != uint64(i+1) {
			t.Errorf("event %d: seq %d, want %d", i+1, m.Seq, i+1)
		}
		if w.payload == nil {
			if len(m.Payload) != 0 && string(m.Payload) != "null" {
				t.Errorf("event %d (%s): payload %s, want none", i+1, m.Type, m.Payload)
			}
			continue
		}
		got := reflect.New(reflect.TypeOf(w.payload))
		if err := m.Decode(got.Interface()); err != nil {
			t.Errorf("event %d (%s): payload %s: %v", i+1, m.Type, m.Payload, err)
		} else if !reflect.DeepEqual(got.Elem().Interface(), w.payload) {
			t.Errorf("event %d (%s): payload %s, want %+v", i+1, m.Type, m.Payload, w.payload)
		}
	}
	if t.Failed() {
		for _, m := range msgs {
			t.Logf("got %d %s %s", m.Seq, m.Type, m.Payload)
		}
	}
}

func TestAskStreamsEvents(t *testing.T) {
	f := start(t, agents.Config{})
	answer2 := `A stand-in answer to "Why is the sky blue?", drawn from 2 sources.`
	answer3 := `A stand-in answer to "Is it?", drawn from 3 sources.`
	tests := []struct {
		name   string
		params routes.AskParams
		want   []event
	}{{
		name:   "two steps",
		params: routes.AskParams{Question: "Why is the sky blue?", Steps: 2},
		want: concat(
			[]event{progress(1, "searching for sources"), progress(2, "drafting the answer")},
			tokens(answer2),
			[]event{
				{"research/ask:response", routes.AskResult{Answer: answer2, Sources: []string{
					"https://example.org/sources/1", "https://example.org/sources/2"}}},
				{"research/ask:finish", nil},
			}),
	}, {
		name:   "default steps, trimmed question",
		params: routes.AskParams{Question: "  Is it?\n"},
		want: concat(
			[]event{progress(1, "searching for sources"), progress(2, "reading the sources"), progress(3, "drafting the answer")},
			tokens(answer3),
			[]event{
				{"research/ask:response", routes.AskResult{Answer: answer3, Sources: []string{
					"https://example.org/sources/1", "https://example.org/sources/2", "https://example.org/sources/3"}}},
				{"research/ask:finish", nil},
			}),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var msgs []protocol.Message
			for m, err := range f.c.Stream(callCtx(t), routes.Ask.Type(), tt.params) {
				if err != nil {
					t.Fatalf("stream: %v", err)
				}
				msgs = append(msgs, m)
			}
			checkEvents(t, msgs, tt.want)
		})
	}
}

func concat(parts ...[]event) []event {
	var all []event
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

func TestAskInvoke(t *testing.T) {
	f := start(t, agents.Config{})
	res, err := client.Invoke(callCtx(t), f.c, routes.Ask, routes.AskParams{Question: "What is NATS?", Steps: 4})
	if err != nil {
		t.Fatal(err)
	}
	want := routes.AskResult{
		Answer: `A stand-in answer to "What is NATS?", drawn from 4 sources.`,
		Sources: []string{"https://example.org/sources/1", "https://example.org/sources/2",
			"https://example.org/sources/3", "https://example.org/sources/4"},
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("got %+v, want %+v", res, want)
	}
}

func TestAskBadRequest(t *testing.T) {
	f := start(t, agents.Config{})
	tests := []struct {
		name    string
		params  any
		message string // a part of the error's message
	}{
		{"empty question", routes.AskParams{}, "question must not be empty"},
		{"blank question", routes.AskParams{Question: " \t"}, "question must not be empty"},
		{"negative steps", routes.AskParams{Question: "q", Steps: -1}, "steps must be between 1 and 10"},
		{"too many steps", routes.AskParams{Question: "q", Steps: routes.MaxSteps + 1}, "steps must be between 1 and 10"},
		{"params of the wrong type", map[string]any{"question": 42}, "invalid params for research/ask"},
		{"no params", nil, "question must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := f.c.Call(callCtx(t), routes.Ask.Type(), tt.params)
			e, ok := protocol.AsError(err)
			if !ok {
				t.Fatalf("got error %v (%T), want a *protocol.Error", err, err)
			}
			if e.Code != protocol.CodeBadRequest || !strings.Contains(e.Message, tt.message) {
				t.Errorf("got %v, want bad_request: …%s…", e, tt.message)
			}
			if !errors.Is(err, &protocol.Error{Code: protocol.CodeBadRequest}) {
				t.Errorf("errors.Is(%v, bad_request) is false", err)
			}
			checkEvents(t, msgs, []event{
				{"research/ask:error", *e},
				{"research/ask:finish", nil},
			})
		})
	}

	// Invoke, typed end to end, reports the same error.
	_, err := client.Invoke(callCtx(t), f.c, routes.Ask, routes.AskParams{Question: ""})
	if e, ok := protocol.AsError(err); !ok || e.Code != protocol.CodeBadRequest {
		t.Errorf("Invoke: got %v, want a *protocol.Error of code bad_request", err)
	}
}

// TestAskCancelMidStream cancels the caller's ctx after the first event: the
// stream ends at once with ctx's error, and the cancel reaches the handler,
// which stops (its own :error{cancelled} and :finish, seen on NATS, are
// dropped by the gateway).
func TestAskCancelMidStream(t *testing.T) {
	// Each step takes an hour: only a cancel ends the request.
	f := start(t, agents.Config{StepDelay: time.Hour})

	// Watch the worker's events on NATS, as `nats sub` would.
	nc := fabrictest.Connect(t, f.nats, "watcher")
	space := subjects.MustSpace("")
	workerEvents := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(space.SessionEvents(f.c.Session()), workerEvents)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(callCtx(t))
	defer cancel()
	var msgs []protocol.Message
	var streamErr error
	for m, err := range f.c.Stream(ctx, routes.Ask.Type(), routes.AskParams{Question: "Will this be cancelled?", Steps: 5}) {
		if err != nil {
			streamErr = err
			break
		}
		msgs = append(msgs, m)
		if len(msgs) == 1 {
			cancel()
		}
	}
	if !errors.Is(streamErr, context.Canceled) {
		t.Errorf("the stream ended with %v, want context.Canceled", streamErr)
	}
	checkEvents(t, msgs, []event{progress(1, "searching for sources")})
	id := msgs[0].ID

	// The handler saw its ctx cancelled and returned: the SDK sent
	// :error{cancelled} and :finish after the first :progress.
	var seen []string
	deadline := time.After(10 * time.Second)
	for len(seen) == 0 || seen[len(seen)-1] != "finish" {
		select {
		case m := <-workerEvents:
			gotID, tail, ok := space.ParseEvent(f.c.Session(), m.Subject)
			if !ok || gotID != id {
				t.Fatalf("unexpected event subject %s", m.Subject)
			}
			suffix, ok := subjects.EventSuffix(tail, subjects.TypeTokens(routes.Ask.Type()))
			if !ok {
				t.Fatalf("unexpected event subject %s", m.Subject)
			}
			if want := strconv.Itoa(len(seen) + 1); m.Header.Get(subjects.HeaderSeq) != want {
				t.Errorf("%s: %s %q, want %s", suffix, subjects.HeaderSeq, m.Header.Get(subjects.HeaderSeq), want)
			}
			if suffix == protocol.SuffixError {
				var e protocol.Error
				if err := json.Unmarshal(m.Data, &e); err != nil || e.Code != protocol.CodeCancelled {
					t.Errorf("the worker's :error is %s, want code cancelled", m.Data)
				}
			}
			seen = append(seen, suffix)
		case <-deadline:
			t.Fatalf("the handler did not stop after the cancel; worker events so far: %v", seen)
		}
	}
	if want := []string{"progress", "error", "finish"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("worker events %v, want %v", seen, want)
	}
}

// TestProcesses builds the worker and caller commands and runs them as the
// README says: the worker against NATS, the caller against the gateway. Then
// it stops the worker with SIGTERM while a request is in flight: the request
// completes, and the worker exits 0.
func TestProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	if runtime.GOOS == "windows" {
		t.Skip("uses SIGTERM")
	}
	bin := build(t, "./worker", "./caller")
	ns := fabrictest.NATS(t)
	gw := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gateway"), gateway.Config{})

	// The worker takes its NATS URL from FABRIC_NATS.
	worker := fabrictest.StartProcess(t, []string{"FABRIC_NATS=" + ns.ClientURL()}, filepath.Join(bin, "worker"),
		"--step-delay", "200ms", "--shutdown-grace", "20s")
	worker.WaitOutput(regexp.MustCompile(`msg="agents worker ready"`), 20*time.Second)

	t.Run("caller", func(t *testing.T) {
		caller := fabrictest.StartProcess(t, nil, filepath.Join(bin, "caller"),
			"--url", gw.URL, "--question", "Why is the sky blue?", "--steps", "2")
		if code := caller.Wait(30 * time.Second); code != 0 {
			t.Fatalf("caller exited with %d\nstdout:\n%s", code, caller.Stdout())
		}
		answer := `A stand-in answer to "Why is the sky blue?", drawn from 2 sources.`
		checkCallerOutput(t, caller.Stdout(), concat(
			[]event{progress(1, "searching for sources"), progress(2, "drafting the answer")},
			tokens(answer),
			[]event{{"research/ask:response", nil}, {"research/ask:finish", nil}}),
			[]string{
				`invoke research/ask "Why is the sky blue?"`,
				"answer: " + answer,
				"source: https://example.org/sources/1",
				"source: https://example.org/sources/2",
			})
	})

	t.Run("caller bad request", func(t *testing.T) {
		caller := fabrictest.StartProcess(t, nil, filepath.Join(bin, "caller"), "--url", gw.URL, "--question", "")
		if code := caller.Wait(30 * time.Second); code != 1 {
			t.Fatalf("caller exited with %d, want 1\nstdout:\n%s", code, caller.Stdout())
		}
		out := caller.Stdout()
		for _, want := range []string{
			"  1 research/ask:error     bad_request: question must not be empty\n",
			"  2 research/ask:finish\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout lacks %q:\n%s", want, out)
			}
		}
		if want := "caller: bad_request: question must not be empty\n"; !strings.HasSuffix(caller.Stderr(), want) {
			t.Errorf("stderr does not end with %q:\n%s", want, caller.Stderr())
		}
	})

	// SIGTERM while a request is in flight: the worker stops taking work,
	// finishes the request, drains and exits 0.
	c := dial(t, gw.URL)
	ctx := callCtx(t)
	var msgs []protocol.Message
	for m, err := range c.Stream(ctx, routes.Ask.Type(), routes.AskParams{Question: "Still there?", Steps: 5}) {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		msgs = append(msgs, m)
		if len(msgs) == 1 {
			worker.Signal(syscall.SIGTERM) // four more steps of 200ms to go
		}
	}
	// The request in flight completed, every event of it.
	res := agents.Research("Still there?", 5)
	var want []event
	for k := 1; k <= 5; k++ {
		want = append(want, progress(k, agents.Note(k, 5)))
	}
	checkEvents(t, msgs, concat(want, tokens(res.Answer), []event{
		{"research/ask:response", res},
		{"research/ask:finish", nil},
	}))
	if code := worker.Wait(30 * time.Second); code != 0 {
		t.Fatalf("the worker exited with %d", code)
	}
	for _, want := range []string{`msg="agents worker draining"`, `msg="agents worker stopped"`} {
		if !strings.Contains(worker.Stderr(), want) {
			t.Errorf("worker stderr lacks %s:\n%s", want, worker.Stderr())
		}
	}
	// The worker left the queue group: nobody serves the route now.
	_, err := client.Invoke(ctx, c, routes.Ask, routes.AskParams{Question: "Anyone?"})
	if e, ok := protocol.AsError(err); !ok || e.Code != protocol.CodeNoResponders {
		t.Errorf("after the worker stopped: got %v, want no_responders", err)
	}
}

// checkCallerOutput checks the caller's stdout: a "stream" line, one line
// per event ("seq type detail", seq 1..n), then the lines of tail.
func checkCallerOutput(t *testing.T, out string, events []event, tail []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1+len(events)+len(tail) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), 1+len(events)+len(tail), out)
	}
	if want := `stream research/ask "Why is the sky blue?"`; lines[0] != want {
		t.Errorf("line 1: %q, want %q", lines[0], want)
	}
	for i, ev := range events {
		line := lines[1+i]
		fields := strings.Fields(line)
		if len(fields) < 2 || fields[0] != strconv.Itoa(i+1) || fields[1] != ev.typ {
			t.Errorf("line %d: %q, want seq %d and type %s", 2+i, line, i+1, ev.typ)
			continue
		}
		var want string
		switch p := ev.payload.(type) {
		case routes.Progress:
			want = fmt.Sprintf("step %d: %s", p.Step, p.Note)
		case routes.Token:
			want = strconv.Quote(p.Text)
		default:
			continue
		}
		if !strings.HasSuffix(line, " "+want) {
			t.Errorf("line %d: %q, want it to end with %q", 2+i, line, want)
		}
	}
	for i, want := range tail {
		if got := lines[1+len(events)+i]; got != want {
			t.Errorf("line %d: %q, want %q", 2+len(events)+i, got, want)
		}
	}
}

// build builds the packages into a temporary directory and returns it.
func build(t *testing.T, pkgs ...string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	dir := t.TempDir()
	cmd := exec.Command(goTool, append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
