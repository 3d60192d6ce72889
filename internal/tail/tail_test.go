package tail_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/internal/tail"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers"
	"github.com/seed82ac63c1/fabric/workers/demo"
)

const (
	traceID     = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceparent = "00-" + traceID + "-00f067aa0ba902b7-01"
	waitFor     = 10 * time.Second
)

// collector keeps the records a watcher reports.
type collector struct {
	mu   sync.Mutex
	recs []tail.Record
}

func (c *collector) add(r tail.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, r)
}

func (c *collector) all() []tail.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.recs)
}

// of returns the records of request id.
func (c *collector) of(id string) []tail.Record {
	var out []tail.Record
	for _, r := range c.all() {
		if r.ID == id {
			out = append(out, r)
		}
	}
	return out
}

// waitFinish waits until the collector holds the :finish of id.
func (c *collector) waitFinish(t *testing.T, id string) []tail.Record {
	t.Helper()
	fabrictest.Eventually(t, waitFor, func() bool {
		return slices.ContainsFunc(c.of(id), func(r tail.Record) bool { return r.Finished() })
	})
	return c.of(id)
}

// watch starts a watcher on its own connection, stopped at cleanup.
func watch(t *testing.T, ns *server.Server, name string, cfg tail.Config) (*collector, *tail.Watcher) {
	t.Helper()
	c := &collector{}
	w, err := tail.Start(context.Background(), fabrictest.Connect(t, ns, name), cfg, c.add)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return c, w
}

// summary writes records as "kind route:suffix#seq", one per record.
func summary(recs []tail.Record) string {
	var b []string
	for _, r := range recs {
		switch r.Kind {
		case tail.KindEvent:
			b = append(b, fmt.Sprintf("%s:%s#%d", r.Route, r.Suffix, r.Seq))
		default:
			b = append(b, string(r.Kind)+" "+r.Route)
		}
	}
	return strings.Join(b, " ")
}

// request sends a request frame with a traceparent.
func request(ws *fabrictest.WS, typ, id string, payload any) {
	ws.Send(map[string]any{"type": typ, "id": id, "payload": payload, "traceparent": traceparent})
}

// TestRequestRecords follows one request through a real gateway and demo
// worker, in core and durable mode: its request and every event arrive in
// order, with their fields.
func TestRequestRecords(t *testing.T) {
	for _, mode := range []struct {
		name    string
		durable *gateway.DurableConfig
	}{
		{"core", nil},
		{"durable", &gateway.DurableConfig{Storage: "memory"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			ns := fabrictest.NATS(t)
			gw := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gateway"), gateway.Config{Durable: mode.durable})
			fabrictest.StartDemoWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{})
			c, _ := watch(t, ns, "tail", tail.Config{})

			ws, welcome := fabrictest.Hello(t, gw.URL)
			request(ws, "demo/count", "m1", map[string]int{"n": 3})
			if got := len(ws.Collect("m1")["m1"]); got != 5 {
				t.Fatalf("the client got %d frames, want 5", got)
			}
			recs := c.waitFinish(t, "m1")
			if got, want := summary(recs), "request demo/count demo/count:progress#1 demo/count:progress#2 demo/count:progress#3 demo/count:response#4 demo/count:finish#5"; got != want {
				t.Fatalf("records %s\nwant    %s", got, want)
			}
			req := recs[0]
			if req.Session != welcome.SessionID || req.Payload != `{"n":3}` || req.Size != 7 || req.Truncated ||
				req.TraceID != traceID || req.Subject != "fabric.req.demo.count" || req.Origin != "" || req.Time.IsZero() {
				t.Errorf("request record %+v", req)
			}
			for i, r := range recs[1:] {
				if r.Session != welcome.SessionID || r.Origin != tail.OriginWorker || r.TraceID != traceID ||
					r.Seq != uint64(i+1) || r.Time.Before(recs[i].Time) {
					t.Errorf("event record %+v", r)
				}
			}
			if p := recs[1].Payload; p != `{"i":1}` || recs[1].Size != len(p) {
				t.Errorf("progress payload %q, size %d", p, recs[1].Size)
			}
			if f := recs[5]; f.Payload != "" || f.Size != 0 || f.Subject != "fabric.evt."+welcome.SessionID+".m1.demo.count.finish" {
				t.Errorf("finish record %+v", f)
			}

			// A request without a traceparent has no trace id.
			ws.Request("demo/echo", "m2", "hi")
			ws.Collect("m2")
			for _, r := range c.waitFinish(t, "m2") {
				if r.TraceID != "" {
					t.Errorf("record %+v has a trace id", r)
				}
			}
		})
	}
}

// TestGatewayEvents: in durable mode a gateway stores the events it makes,
// and the watcher tells them from a worker's.
func TestGatewayEvents(t *testing.T) {
	ns := fabrictest.NATS(t)
	gw := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gateway"), gateway.Config{
		Durable:        &gateway.DurableConfig{Storage: "memory"},
		RequestTimeout: 300 * time.Millisecond,
	})
	fabrictest.StartDemoWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{})
	c, _ := watch(t, ns, "tail", tail.Config{})

	ws, welcome := fabrictest.Hello(t, gw.URL)
	ws.Request("demo/silent", "s1", nil)
	msgs := ws.Collect("s1")["s1"]
	if len(msgs) != 2 || !strings.Contains(string(msgs[0].Payload), `"timeout"`) {
		t.Fatalf("the client got %+v", msgs)
	}
	// The gateway's :error and :finish, its cancel, then the worker's own
	// :error{cancelled} and :finish (which the gateway drops).
	fabrictest.Eventually(t, waitFor, func() bool {
		return len(c.of("s1")) >= 6
	})
	recs := c.of("s1")
	var gatewayErr, cancel *tail.Record
	for i := range recs {
		r := &recs[i]
		switch {
		case r.Failed() && r.Origin == tail.OriginGateway:
			gatewayErr = r
		case r.Kind == tail.KindCancel:
			cancel = r
		}
	}
	if gatewayErr == nil || gatewayErr.Code != string(protocol.CodeTimeout) || gatewayErr.Seq != 1 || gatewayErr.Route != "demo/silent" {
		t.Fatalf("no gateway :error{timeout}#1 in %s: %+v", summary(recs), recs)
	}
	if cancel == nil || cancel.Session != welcome.SessionID || cancel.Route != "demo/silent" || cancel.Subject != "fabric.cancel."+welcome.SessionID+".s1" {
		t.Fatalf("cancel record %+v in %s", cancel, summary(recs))
	}
	if recs[0].Kind != tail.KindRequest {
		t.Fatalf("the request is not first: %s", summary(recs))
	}
}

// TestFilters runs watchers with different filters on the same traffic.
func TestFilters(t *testing.T) {
	ns := fabrictest.NATS(t)
	gw := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gateway"), gateway.Config{})
	fabrictest.StartDemoWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{})

	ws1, w1 := fabrictest.Hello(t, gw.URL)
	ws2, w2 := fabrictest.Hello(t, gw.URL)
	const (
		fail    = "request demo/fail demo/fail:error#1 demo/fail:finish#2 "
		echo    = "request demo/echo demo/echo:response#1 demo/echo:finish#2 "
		push    = "request demo/push demo/push:response#1 demo/push:finish#2 push demo/notice "
		failed  = "request demo/fail demo/fail:error#1 "
		evtFail = "demo/fail:error#1 demo/fail:finish#2 "
		evtEcho = "demo/echo:response#1 demo/echo:finish#2 "
	)
	cases := []struct {
		name string
		cfg  tail.Config
		want string // summary of every record, in order
		c    *collector
	}{
		{name: "everything", cfg: tail.Config{}, want: echo + fail + fail + push + echo + fail},
		{name: "route", cfg: tail.Config{Filter: tail.Filter{Route: "demo/fail"}}, want: fail + fail + fail},
		{name: "session", cfg: tail.Config{Filter: tail.Filter{Session: w2.SessionID}}, want: fail + push + echo + fail},
		{name: "id", cfg: tail.Config{Filter: tail.Filter{ID: "e1"}}, want: echo + echo},
		{name: "errors", cfg: tail.Config{Filter: tail.Filter{Errors: true}}, want: failed + failed + failed},
		{name: "errors of a session", cfg: tail.Config{Filter: tail.Filter{Errors: true, Session: w1.SessionID}}, want: failed},
		{name: "route and session", cfg: tail.Config{Filter: tail.Filter{Route: "demo/echo", Session: w2.SessionID}}, want: echo},
		{name: "no requests", cfg: tail.Config{NoRequests: true, Filter: tail.Filter{Route: "demo/echo"}}, want: evtEcho + evtEcho},
		{name: "requests of other routes only", cfg: tail.Config{RequestRoutes: []string{"demo/count"}, Filter: tail.Filter{Route: "demo/fail"}},
			want: evtFail + evtFail + evtFail},
	}
	for i := range cases {
		cases[i].c, _ = watch(t, ns, fmt.Sprintf("tail-%d", i), cases[i].cfg)
	}

	ws1.Call("demo/echo", "e1", "one")
	ws1.Call("demo/fail", "f1", map[string]string{"code": "nope"})
	ws2.Call("demo/fail", "f2", map[string]string{"code": "nope"})
	// The push comes well after the request's :finish, so that the order of
	// the records is known.
	ws2.Call("demo/push", "p1", map[string]any{"type": "demo/notice:created", "payload": map[string]int{"x": 1}, "delayMs": 200})
	if m := ws2.Read(); m.Type != "demo/notice:created" {
		t.Fatalf("push: got %+v", m)
	}
	// NATS orders a subscriber's messages per publisher only: the push
	// (the worker's) may reach a watcher after the next request (the
	// gateway's), though the client read it first. Wait until every
	// watcher that records the push has it.
	for _, tc := range cases {
		if !strings.Contains(tc.want, "push demo/notice") {
			continue
		}
		fabrictest.Eventually(t, waitFor, func() bool {
			return slices.ContainsFunc(tc.c.all(), func(r tail.Record) bool { return r.Kind == tail.KindPush })
		})
	}
	ws2.Call("demo/echo", "e1", "two")
	// Last, a request most filters see: once they have it, they have
	// everything before it.
	ws2.Call("demo/fail", "last", map[string]string{"code": "end"})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := strings.TrimSpace(tc.want)
			deadline := time.Now().Add(waitFor)
			for summary(tc.c.all()) != want && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := summary(tc.c.all()); got != want {
				t.Fatalf("records %s\nwant    %s", got, want)
			}
			for _, r := range tc.c.all() {
				if r.Kind == tail.KindPush && (r.To != "session" || r.Session != w2.SessionID || r.Suffix != "created" || r.Payload != `{"x":1}` || r.ID != "") {
					t.Errorf("push record %+v", r)
				}
			}
		})
	}
}

// TestPayloadPreview: previews are cut to PayloadBytes, at a character
// boundary, and the size is the whole payload's.
func TestPayloadPreview(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	c4, _ := watch(t, f.NATS, "tail-4", tail.Config{PayloadBytes: 4})
	cdef, _ := watch(t, f.NATS, "tail-default", tail.Config{})
	cnone, _ := watch(t, f.NATS, "tail-none", tail.Config{PayloadBytes: -1})

	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	long := strings.Repeat("x", 500)
	ws.Call("demo/echo", "long", long)
	ws.Call("demo/echo", "accents", "ééé")

	req := c4.waitFinish(t, "long")[0]
	if req.Kind != tail.KindRequest || req.Payload != `"xxx` || !req.Truncated || req.Size != 502 {
		t.Errorf("4 bytes: %+v", req)
	}
	if req := cdef.waitFinish(t, "long")[0]; req.Payload != `"`+long[:tail.DefaultPayloadBytes-1] || !req.Truncated || req.Size != 502 {
		t.Errorf("default: payload of %d bytes, truncated %v, size %d", len(req.Payload), req.Truncated, req.Size)
	}
	if req := cnone.waitFinish(t, "long")[0]; req.Payload != "" || !req.Truncated || req.Size != 502 {
		t.Errorf("none: %+v", req)
	}
	// `"é` is 3 bytes; the next é would end at byte 5.
	if req := c4.waitFinish(t, "accents")[0]; req.Payload != `"é` || !req.Truncated || req.Size != 8 {
		t.Errorf("accents: %+v", req)
	}
	if resp := cdef.waitFinish(t, "accents")[1]; resp.Payload != `"ééé"` || resp.Truncated {
		t.Errorf("accents, whole: %+v", resp)
	}
}

// TestReadOnly: a watcher publishes nothing, joins no queue group, does not
// subscribe to JetStream's API or the gateways' takeover subjects, and
// every request still runs once.
func TestReadOnly(t *testing.T) {
	ns := fabrictest.NATS(t)
	gw := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gateway"), gateway.Config{Durable: &gateway.DurableConfig{Storage: "memory"}})
	fabrictest.StartDemoWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{})
	c, w := watch(t, ns, "tail", tail.Config{})
	ws, _ := fabrictest.Hello(t, gw.URL)
	for i := range 5 {
		id := fmt.Sprintf("c%d", i)
		if got := len(ws.Call("demo/count", id, map[string]int{"n": 2})); got != 4 {
			t.Fatalf("%s: the client got %d frames", id, got)
		}
		// Each request ran once: one worker's events, numbered once.
		if got := summary(c.waitFinish(t, id)); got != "request demo/count demo/count:progress#1 demo/count:progress#2 demo/count:response#3 demo/count:finish#4" {
			t.Fatalf("%s: %s", id, got)
		}
	}
	ws.Request("demo/sleep", "z", map[string]int{"ms": 60_000})
	ws.Send(map[string]any{"type": protocol.TypeCancel, "id": "z"})
	ws.Collect("z")

	conn := connInfo(t, ns, "tail")
	if conn.InMsgs != 0 || conn.InBytes != 0 {
		t.Errorf("the watcher published %d messages (%d bytes)", conn.InMsgs, conn.InBytes)
	}
	if conn.OutMsgs == 0 {
		t.Errorf("the watcher received nothing")
	}
	var subs []string
	for _, s := range conn.SubsDetail {
		if s.Queue != "" {
			t.Errorf("subscription %s in queue group %q", s.Subject, s.Queue)
		}
		subs = append(subs, s.Subject)
	}
	slices.Sort(subs)
	if want := []string{"fabric.cancel.*.*", "fabric.evt.*.*.>", "fabric.push.>", "fabric.req.>"}; !slices.Equal(subs, want) {
		t.Errorf("subscriptions %v, want %v", subs, want)
	}
	if got := w.Subjects(); len(got) != len(subs) {
		t.Errorf("Subjects() = %v", got)
	}

	w.Stop()
	w.Stop() // twice is fine
	// Unsubscribing is asynchronous: the server hears of it soon.
	fabrictest.Eventually(t, waitFor, func() bool { return len(connInfo(t, ns, "tail").SubsDetail) == 0 })
	before := len(c.all())
	ws.Call("demo/echo", "after", 1)
	if n := len(c.all()); n != before {
		t.Errorf("%d records after Stop", n-before)
	}
}

// TestRequestRoutes: a watcher limited to the served routes leaves
// no_responders alone for the others.
func TestRequestRoutes(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{RequestTimeout: time.Minute})
	var routes []string
	for _, r := range demo.Routes() {
		routes = append(routes, r.Type)
	}
	c, w := watch(t, f.NATS, "tail", tail.Config{RequestRoutes: routes})
	if n := len(w.Subjects()); n != len(routes)+3 {
		t.Fatalf("subjects %v", w.Subjects())
	}
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	msgs := ws.Call("nobody/home", "n1", nil)
	if len(msgs) != 2 || !strings.Contains(string(msgs[0].Payload), string(protocol.CodeNoResponders)) {
		t.Fatalf("a route no worker serves: %+v", msgs)
	}
	ws.Call("demo/echo", "e1", 1)
	if got := summary(c.waitFinish(t, "e1")); got != "request demo/echo demo/echo:response#1 demo/echo:finish#2" {
		t.Fatalf("records %s", got)
	}
}

func TestStartErrors(t *testing.T) {
	ns := fabrictest.NATS(t)
	nc := fabrictest.Connect(t, ns, "tail")
	for _, cfg := range []tail.Config{
		{Prefix: "bad prefix"},
		{Filter: tail.Filter{Route: "a.b"}},
		{Filter: tail.Filter{Session: "a.b"}},
		{Filter: tail.Filter{ID: "*"}},
		{RequestRoutes: []string{"demo/count", ">"}},
	} {
		if _, err := tail.Start(context.Background(), nc, cfg, func(tail.Record) {}); !errors.Is(err, tail.ErrConfig) {
			t.Errorf("Start(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
	nc.Close()
	if _, err := tail.Start(context.Background(), nc, tail.Config{}, func(tail.Record) {}); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Errorf("Start on a closed connection: %v", err)
	}
}

// connInfo returns the server's view of the connection named name.
func connInfo(t *testing.T, ns *server.Server, name string) *server.ConnInfo {
	t.Helper()
	cz, err := ns.Connz(&server.ConnzOptions{Subscriptions: true, SubscriptionsDetail: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cz.Conns {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no connection named %s", name)
	return nil
}
