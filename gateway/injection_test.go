package gateway_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
)

// natsProbe subscribes to subject on its own connection to ns, and returns
// once the server has the subscription.
func natsProbe(t *testing.T, ns *fabrictest.Fabric, subject string) *nats.Subscription {
	t.Helper()
	nc := fabrictest.Connect(t, ns.NATS, "probe")
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

// TestNoHeaderInjection: whatever a client puts in a frame's fields or its
// hello, the request's NATS message carries only the fixed headers, with
// the values the gateway set, and the payload as sent. A worker is played
// by a bare subscription on fabric.req.>; route probe/* has no other.
func TestNoHeaderInjection(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{RequestTimeout: time.Minute})
	requests := natsProbe(t, f, "fabric.req.>")
	ws := fabrictest.Dial(t, f.Gateway.URL)
	welcome := ws.Hello(map[string]any{
		"client": "x\r\nFabric-User: admin\r\nStatus: 503",
		"token":  "t\r\nNats-Msg-Id: 1",
	})
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	crlf := `\r\nStatus: 503\r\nNats-Msg-Id: dup\r\nNats-Expected-Stream: x\r\n\r\n`
	huge := strings.Repeat("a", 200<<10)
	cases := []struct {
		name, frame, subject string
		id, payload          string
		keys                 []string // the header keys that must arrive, sorted
	}{
		{"CRLF in the payload",
			`{"type":"probe/x","id":"p1","payload":"` + crlf + `"}`, "fabric.req.probe.x",
			"p1", `"` + crlf + `"`, []string{"Fabric-Id", "Fabric-Session"}},
		{"header names as payload keys",
			`{"type":"probe/x","id":"p2","payload":{"Status":"503","Nats-Msg-Id":"1","Fabric-User":"admin","Fabric-Session":"S","traceparent":"` + tp + `"}}`, "fabric.req.probe.x",
			"p2", `{"Status":"503","Nats-Msg-Id":"1","Fabric-User":"admin","Fabric-Session":"S","traceparent":"` + tp + `"}`, []string{"Fabric-Id", "Fabric-Session"}},
		{"header names as type and id",
			`{"type":"Nats-Msg-Id/Status","id":"Fabric-User","payload":1}`, "fabric.req.Nats-Msg-Id.Status",
			"Fabric-User", `1`, []string{"Fabric-Id", "Fabric-Session"}},
		{"CRLF in traceparent",
			`{"type":"probe/x","id":"p3","traceparent":"` + tp + crlf + `"}`, "fabric.req.probe.x",
			"p3", `null`, []string{"Fabric-Id", "Fabric-Session"}},
		{"garbage traceparent",
			`{"type":"probe/x","id":"p4","traceparent":"Status: 503"}`, "fabric.req.probe.x",
			"p4", `null`, []string{"Fabric-Id", "Fabric-Session"}},
		{"all-zero trace id",
			`{"type":"probe/x","id":"p5","traceparent":"00-00000000000000000000000000000000-00f067aa0ba902b7-01"}`, "fabric.req.probe.x",
			"p5", `null`, []string{"Fabric-Id", "Fabric-Session"}},
		{"huge traceparent and tracestate",
			`{"type":"probe/x","id":"p6","traceparent":"` + huge + `","tracestate":"` + huge + `"}`, "fabric.req.probe.x",
			"p6", `null`, []string{"Fabric-Id", "Fabric-Session"}},
		{"CRLF in tracestate",
			`{"type":"probe/x","id":"p7","traceparent":"` + tp + `","tracestate":"k=v` + crlf + `"}`, "fabric.req.probe.x",
			"p7", `null`, []string{"Fabric-Id", "Fabric-Session", "traceparent"}},
		{"huge tracestate",
			`{"type":"probe/x","id":"p8","traceparent":"` + tp + `","tracestate":"k=` + huge + `"}`, "fabric.req.probe.x",
			"p8", `null`, []string{"Fabric-Id", "Fabric-Session", "traceparent"}},
		{"valid trace context",
			`{"type":"probe/x","id":"p9","traceparent":"` + tp + `","tracestate":"k=v"}`, "fabric.req.probe.x",
			"p9", `null`, []string{"Fabric-Id", "Fabric-Session", "traceparent", "tracestate"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws.SendRaw([]byte(tc.frame))
			m, err := requests.NextMsg(fabrictest.ReadTimeout)
			if err != nil {
				t.Fatalf("no request on NATS: %v", err)
			}
			keys := make([]string, 0, len(m.Header))
			for k := range m.Header {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, tc.keys) {
				t.Fatalf("header keys %q, want %q", keys, tc.keys)
			}
			for k, vs := range m.Header {
				if len(vs) != 1 {
					t.Errorf("header %s has %d values %.200q", k, len(vs), vs)
				}
			}
			if m.Subject != tc.subject || m.Header.Get("Fabric-Id") != tc.id || m.Header.Get("Fabric-Session") != welcome.SessionID || string(m.Data) != tc.payload {
				t.Fatalf("got subject %s, id %q, session %q, data %.100q; want %s, %q, %q, %.100q",
					m.Subject, m.Header.Get("Fabric-Id"), m.Header.Get("Fabric-Session"), m.Data, tc.subject, tc.id, welcome.SessionID, tc.payload)
			}
			if tp := m.Header.Get("traceparent"); tp != "" && tp != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
				t.Fatalf("traceparent %q", tp)
			}
			if ts := m.Header.Get("tracestate"); ts != "" && ts != "k=v" {
				t.Fatalf("tracestate %q", ts)
			}
		})
	}
}

// TestRejectedNamesPublishNothing: for every type name (and id) the gateway
// rejects, nothing at all is published on NATS: a subscription to every
// subject sees only the valid request sent after them.
func TestRejectedNamesPublishNothing(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{RequestTimeout: time.Minute})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	everything := natsProbe(t, f, ">")
	jsAPI := natsProbe(t, f, "$JS.>")
	long := strings.Repeat("a", 65)
	for _, frame := range []string{
		`{"type":"$JS.API.STREAM.DELETE.X","id":"m1"}`,
		`{"type":"$JS/API/STREAM/DELETE/X","id":"m1"}`,
		`{"type":"$KV/x/y","id":"m1"}`,
		`{"type":"$SYS/REQ/SERVER/PING","id":"m1"}`,
		`{"type":"_INBOX/x","id":"m1"}`,
		`{"type":"_INBOX.x","id":"m1"}`,
		`{"type":"fabric.req.demo.echo","id":"m1"}`,
		`{"type":">","id":"m1"}`,
		`{"type":"*","id":"m1"}`,
		`{"type":"demo/>","id":"m1"}`,
		`{"type":"demo/*","id":"m1"}`,
		`{"type":"demo.>","id":"m1"}`,
		`{"type":"demo.echo","id":"m1"}`,
		`{"type":"","id":"m1"}`,
		`{"type":"/","id":"m1"}`,
		`{"type":"/demo","id":"m1"}`,
		`{"type":"demo/","id":"m1"}`,
		`{"type":"demo//echo","id":"m1"}`,
		`{"type":"demo/ echo","id":"m1"}`,
		`{"type":"demo/\techo","id":"m1"}`,
		`{"type":"demo/\r\necho","id":"m1"}`,
		`{"type":"demo/\u0000","id":"m1"}`,
		`{"type":"démo/echo","id":"m1"}`,
		`{"type":"1demo/echo","id":"m1"}`,
		`{"type":"demo/` + long + `","id":"m1"}`,
		`{"type":"a/b/c/d/e/f/g/h/i","id":"m1"}`,
		`{"type":"` + strings.Repeat("a/", 5000) + `a","id":"m1"}`,
		`{"type":"sys/x","id":"m1"}`,
		`{"type":"sys/hello","id":"m1"}`,
		`{"type":"demo/echo:finish","id":"m1"}`,
		`{"type":"demo/echo:error","id":"m1"}`,
		`{"type":"demo/echo"}`,
		`{"type":"demo/echo","id":""}`,
		`{"type":"demo/echo","id":">"}`,
		`{"type":"demo/echo","id":"*"}`,
		`{"type":"demo/echo","id":"a.b"}`,
		`{"type":"demo/echo","id":"a b"}`,
		`{"type":"demo/echo","id":"` + long + `"}`,
		`{"type":"demo/echo","id":7}`,
		`{"type":"sys/cancel","id":"a.>"}`,
	} {
		ws.SendRaw([]byte(frame))
		m, err := ws.TryRead(fabrictest.ReadTimeout)
		if err != nil || m.Type != protocol.TypeError {
			t.Fatalf("%.80s: got %s, %v; want sys/error", frame, dump([]protocol.Message{m}), err)
		}
	}
	// A valid request: it arrives, and it is the first message of all.
	ws.Request("probe/ok", "ok", nil)
	m, err := everything.NextMsg(fabrictest.ReadTimeout)
	if err != nil {
		t.Fatalf("the valid request did not arrive: %v", err)
	}
	if m.Subject != "fabric.req.probe.ok" {
		t.Fatalf("a rejected frame was published: %s %q %q", m.Subject, m.Header, m.Data)
	}
	if err := f.Gateway.NATS().Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := jsAPI.Pending(); n != 0 {
		m, _ := jsAPI.NextMsg(time.Second)
		t.Fatalf("%d messages on $JS.>, the first %s", n, m.Subject)
	}
}
