package inspector_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/internal/inspector"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers/demo"
)

const (
	traceID     = "0af7651916cd43dd8448eb211c80319c"
	traceparent = "00-" + traceID + "-b7ad6b7169203331-01"
	jaeger      = "http://jaeger.test:16686"
	waitFor     = 10 * time.Second
)

type body struct {
	Requests  []inspector.Request `json:"requests"`
	Capacity  int                 `json:"capacity"`
	JaegerURL string              `json:"jaegerUrl"`
}

// setup starts a fabric (gateway cfg, demo worker) and an inspector served
// on a test server.
func setup(t *testing.T, gcfg gateway.Config, cfg inspector.Config) (*fabrictest.Fabric, *inspector.Inspector, *httptest.Server) {
	t.Helper()
	f := fabrictest.Start(t, gcfg)
	in, err := inspector.Start(context.Background(), fabrictest.Connect(t, f.NATS, "inspector"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)
	srv := httptest.NewServer(http.StripPrefix("/inspector/api", in.Handler()))
	t.Cleanup(srv.Close)
	return f, in, srv
}

func get(t *testing.T, srv *httptest.Server, query string) body {
	t.Helper()
	resp, err := http.Get(srv.URL + "/inspector/api/requests?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var b body
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

// waitRequest waits until the inspector has request id in a state other
// than in flight, and returns it.
func waitRequest(t *testing.T, in *inspector.Inspector, id string, done func(*inspector.Request) bool) inspector.Request {
	t.Helper()
	var last []inspector.Request
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		last = in.Requests(inspector.Filter{ID: id})
		if len(last) == 1 && done(&last[0]) {
			return last[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("request %s: %+v", id, last)
	return inspector.Request{}
}

func ended(r *inspector.Request) bool { return r.End != nil }

func timeline(r inspector.Request) string {
	var b []string
	for _, e := range r.Events {
		if e.Kind == "cancel" {
			b = append(b, "cancel")
			continue
		}
		s := fmt.Sprintf("%s#%d", e.Suffix, e.Seq)
		if e.Origin == "gateway" {
			s += "(gateway)"
		}
		b = append(b, s)
	}
	return strings.Join(b, " ")
}

func TestRequests(t *testing.T) {
	f, in, srv := setup(t, gateway.Config{}, inspector.Config{JaegerURL: jaeger + "/"})
	ws, welcome := fabrictest.Hello(t, f.Gateway.URL)
	ws.Send(map[string]any{"type": "demo/count", "id": "c1", "payload": map[string]int{"n": 2}, "traceparent": traceparent})
	ws.Collect("c1")
	ws.Call("demo/fail", "f1", map[string]string{"code": "quota_exceeded", "message": "later"})
	ws.Request("demo/sleep", "s1", map[string]int{"ms": 60_000})

	c1 := waitRequest(t, in, "c1", ended)
	if c1.Route != "demo/count" || c1.Session != welcome.SessionID || !c1.Seen || c1.Payload != `{"n":2}` || c1.Size != 7 ||
		c1.State != inspector.StateFinished || c1.Code != "" || c1.TraceID != traceID || c1.TraceURL != jaeger+"/trace/"+traceID ||
		c1.End.Before(c1.Time) || c1.Last.Before(*c1.End) {
		t.Errorf("c1 %+v", c1)
	}
	if got := timeline(c1); got != "progress#1 progress#2 response#3 finish#4" {
		t.Errorf("c1 timeline %s", got)
	}
	for i, e := range c1.Events {
		if e.TraceID != traceID || e.Origin != "worker" || e.Time.Before(c1.Time) || (i > 0 && e.Time.Before(c1.Events[i-1].Time)) {
			t.Errorf("c1 event %d: %+v", i, e)
		}
	}
	if e := c1.Events[2]; e.Payload != `{"n":2}` || e.Size != 7 {
		t.Errorf("c1 response %+v", e)
	}

	f1 := waitRequest(t, in, "f1", ended)
	if f1.State != inspector.StateError || f1.Code != "quota_exceeded" || f1.TraceID != "" || f1.TraceURL != "" || timeline(f1) != "error#1 finish#2" {
		t.Errorf("f1 %+v", f1)
	}

	// In flight until cancelled; then the worker's :error{cancelled}.
	s1 := waitRequest(t, in, "s1", func(r *inspector.Request) bool { return r.Seen })
	if s1.State != inspector.StateInFlight || s1.End != nil {
		t.Errorf("s1 before cancel %+v", s1)
	}
	ws.Send(map[string]any{"type": protocol.TypeCancel, "id": "s1"})
	ws.Collect("s1")
	s1 = waitRequest(t, in, "s1", ended)
	if s1.State != inspector.StateCancelled || !s1.Cancelled || !strings.HasPrefix(timeline(s1), "cancel ") {
		t.Errorf("s1 %+v: %s", s1, timeline(s1))
	}

	// The API, newest first, and its filters.
	for _, tc := range []struct{ query, want string }{
		{"", "s1 f1 c1"},
		{"route=demo/count", "c1"},
		{"errors=1", "s1 f1"},
		{"id=s1", "s1"},
		{"session=" + welcome.SessionID, "s1 f1 c1"},
		{"session=other", ""},
		{"q=" + url.QueryEscape(welcome.SessionID[3:9]), "s1 f1 c1"},
		{"q=count", "c1"},
		{"q=fail", "f1"},
		{"q=nothing", ""},
	} {
		b := get(t, srv, tc.query)
		var ids []string
		for _, r := range b.Requests {
			ids = append(ids, r.ID)
		}
		if got := strings.Join(ids, " "); got != tc.want {
			t.Errorf("?%s: %q, want %q", tc.query, got, tc.want)
		}
		if b.Capacity != inspector.DefaultCapacity || b.JaegerURL != jaeger || b.Requests == nil {
			t.Errorf("?%s: capacity %d, jaegerUrl %q, requests %v", tc.query, b.Capacity, b.JaegerURL, b.Requests)
		}
	}
}

// TestDurableGatewayErrors: in durable mode the gateway's own :error (a
// timeout, no_responders) is stored, so the inspector sees it and its code
// wins. Watching only the served routes' requests leaves no_responders to
// the others.
func TestDurableGatewayErrors(t *testing.T) {
	var routes []string
	for _, r := range demo.Routes() {
		routes = append(routes, r.Type)
	}
	f, in, srv := setup(t, gateway.Config{Durable: &gateway.DurableConfig{Storage: "memory"}, RequestTimeout: 300 * time.Millisecond},
		inspector.Config{RequestRoutes: routes})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	ws.Call("demo/silent", "t1", nil)
	if msgs := ws.Call("nobody/home", "n1", nil); !strings.Contains(string(msgs[0].Payload), string(protocol.CodeNoResponders)) {
		t.Fatalf("a route no worker serves: %+v", msgs)
	}
	t1 := waitRequest(t, in, "t1", func(r *inspector.Request) bool { return r.End != nil && r.Cancelled })
	if t1.State != inspector.StateError || t1.Code != string(protocol.CodeTimeout) || !t1.Seen || !strings.Contains(timeline(t1), "error#1(gateway) ") {
		t.Errorf("t1 %+v: %s", t1, timeline(t1))
	}
	// The gateway's no_responders is stored too: the inspector learns of the
	// request from it.
	n1 := waitRequest(t, in, "n1", ended)
	if n1.State != inspector.StateError || n1.Code != string(protocol.CodeNoResponders) || n1.Route != "nobody/home" || n1.Seen ||
		timeline(n1) != "error#1(gateway) finish#2(gateway)" {
		t.Errorf("n1 %+v: %s", n1, timeline(n1))
	}
	if b := get(t, srv, "errors=true"); len(b.Requests) != 2 {
		t.Errorf("errors: %+v", b.Requests)
	}
}

// TestBounds: the ring keeps the newest requests, and a request's events
// are capped while its end is still known.
func TestBounds(t *testing.T) {
	f, in, _ := setup(t, gateway.Config{}, inspector.Config{Capacity: 3, MaxEvents: 2, PayloadBytes: 3})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	for i := range 5 {
		ws.Call("demo/count", fmt.Sprintf("r%d", i), map[string]int{"n": 3})
	}
	waitRequest(t, in, "r4", ended)
	var ids []string
	for i, r := range in.Requests(inspector.Filter{}) {
		ids = append(ids, r.ID)
		if r.Number != uint64(5-i) {
			t.Errorf("%s: number %d, want %d", r.ID, r.Number, 5-i)
		}
		if r.State != inspector.StateFinished || len(r.Events) != 2 || r.Omitted != 3 || r.End == nil || r.Payload != `{"n` || !r.Truncated {
			t.Errorf("%s: %+v", r.ID, r)
		}
	}
	if got := strings.Join(ids, " "); got != "r4 r3 r2" {
		t.Fatalf("requests %s, want r4 r3 r2", got)
	}
}

// TestStream reads the Server-Sent Events: a snapshot, then updates, until
// the inspector closes.
func TestStream(t *testing.T) {
	f, in, srv := setup(t, gateway.Config{}, inspector.Config{})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	ws.Call("demo/echo", "before", 1)
	waitRequest(t, in, "before", ended)

	resp, err := http.Get(srv.URL + "/inspector/api/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	events := make(chan [2]string, 100)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		var name string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				events <- [2]string{name, strings.TrimPrefix(line, "data: ")}
			}
		}
	}()
	next := func() (string, string) {
		t.Helper()
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("the stream ended")
			}
			return e[0], e[1]
		case <-time.After(waitFor):
			t.Fatal("no event")
		}
		return "", ""
	}

	name, data := next()
	var snap body
	if err := json.Unmarshal([]byte(data), &snap); err != nil || name != "snapshot" || len(snap.Requests) != 1 || snap.Requests[0].ID != "before" {
		t.Fatalf("first event %s %s: %v", name, data, err)
	}
	ws.Call("demo/count", "live", map[string]int{"n": 2, "intervalMs": 20})
	for {
		name, data := next()
		var r inspector.Request
		if err := json.Unmarshal([]byte(data), &r); err != nil || name != "update" || r.ID != "live" {
			t.Fatalf("event %s %s: %v", name, data, err)
		}
		if r.State == inspector.StateFinished {
			if got := timeline(r); got != "progress#1 progress#2 response#3 finish#4" {
				t.Fatalf("live timeline %s", got)
			}
			break
		}
	}

	in.Close()
	in.Close()
	select {
	case _, ok := <-events:
		if ok {
			t.Fatal("an event after Close")
		}
	case <-time.After(waitFor):
		t.Fatal("the stream is still open after Close")
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Logf("read after close: %v", err)
	}
}

func TestStartError(t *testing.T) {
	ns := fabrictest.NATS(t)
	if _, err := inspector.Start(context.Background(), fabrictest.Connect(t, ns, "inspector"), inspector.Config{Prefix: "a..b"}); err == nil {
		t.Fatal("a bad prefix was accepted")
	}
}
