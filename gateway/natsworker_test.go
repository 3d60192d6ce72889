package gateway_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
)

// This file proves that the NATS contract (docs/nats.md) is enough to write a
// worker in another language: plainWorker uses nats.go and nothing else of
// Fabric. Every subject and header name below is spelled out as the contract
// spells it, on purpose not taken from package subjects, so that a change to
// the wire breaks this test rather than following along silently.
const (
	plainHelloSubject = "fabric.req.plain.hello" // request for route plain/hello
	plainSlowSubject  = "fabric.req.plain.slow"  // request for route plain/slow
	plainQueueGroup   = "fabric"                 // every worker of every language joins it
	plainCancels      = "fabric.cancel.>"        // fabric.cancel.<sessionId>.<id>
	plainPushSession  = "fabric.push.session."   // + <sessionId>
	plainEventsPrefix = "fabric.evt."            // reply subject R = fabric.evt.<sessionId>.<id>

	plainHeaderID          = "Fabric-Id"
	plainHeaderSession     = "Fabric-Session"
	plainHeaderUser        = "Fabric-User"
	plainHeaderSeq         = "Fabric-Seq"
	plainHeaderType        = "Fabric-Type"
	plainHeaderTraceparent = "traceparent"
)

// plainRequest is a request as the plain worker received it.
type plainRequest struct {
	subject string
	reply   string
	header  nats.Header
	data    []byte
}

// plainWorker serves two routes with nats.go alone:
//
//	plain/hello {name} → :progress {"step":1} (twice, the same seq) → :progress {"step":2}
//	                     → :response {"greeting":"hello, <name>"} → :finish
//	plain/slow         → :progress {"started":true}, then waits for its cancel, and
//	                     answers it with its own :error {code:"cancelled"} + :finish
type plainWorker struct {
	nc       *nats.Conn
	requests chan plainRequest // every request received
	cancels  chan string       // the subject of every cancel received
	stopped  chan string       // ids of plain/slow requests stopped by their cancel

	mu   sync.Mutex
	slow map[string]plainRequest // plain/slow requests in flight, by "<sessionId>.<id>"
}

func startPlainWorker(t *testing.T, url string) *plainWorker {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name("plain-worker"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	w := &plainWorker{
		nc:       nc,
		requests: make(chan plainRequest, 64),
		cancels:  make(chan string, 64),
		stopped:  make(chan string, 64),
		slow:     make(map[string]plainRequest),
	}
	if _, err := nc.QueueSubscribe(plainHelloSubject, plainQueueGroup, w.hello); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.QueueSubscribe(plainSlowSubject, plainQueueGroup, w.slowStart); err != nil {
		t.Fatal(err)
	}
	// No queue group for cancels: every worker sees every cancel.
	if _, err := nc.Subscribe(plainCancels, w.cancel); err != nil {
		t.Fatal(err)
	}
	// The server has the subscriptions before any request.
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *plainWorker) record(m *nats.Msg) plainRequest {
	r := plainRequest{subject: m.Subject, reply: m.Reply, header: m.Header, data: m.Data}
	w.requests <- r
	return r
}

// publish sends event <typeTokens>.<suffix> of request r: subject
// R.<typeTokens>.<suffix>, headers Fabric-Id, Fabric-Seq and the request's
// traceparent, if it had one. A failed publish shows in the test as a
// missing frame.
func (w *plainWorker) publish(r plainRequest, typeTokens, suffix string, seq int, body string) {
	h := nats.Header{plainHeaderID: {r.header.Get(plainHeaderID)}, plainHeaderSeq: {strconv.Itoa(seq)}}
	if tp, ok := r.header[plainHeaderTraceparent]; ok {
		h[plainHeaderTraceparent] = tp
	}
	_ = w.nc.PublishMsg(&nats.Msg{Subject: r.reply + "." + typeTokens + "." + suffix, Header: h, Data: []byte(body)})
}

func (w *plainWorker) hello(m *nats.Msg) {
	r := w.record(m)
	var p struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(r.data, &p)
	greeting, _ := json.Marshal(map[string]string{"greeting": "hello, " + p.Name})
	w.publish(r, "plain.hello", "progress", 1, `{"step":1}`)
	// A duplicate, as a worker retrying a publish might send: the gateway
	// drops it by its Fabric-Seq.
	w.publish(r, "plain.hello", "progress", 1, `{"step":1}`)
	w.publish(r, "plain.hello", "progress", 2, `{"step":2}`)
	w.publish(r, "plain.hello", "response", 3, string(greeting))
	w.publish(r, "plain.hello", "finish", 4, "")
}

func (w *plainWorker) slowStart(m *nats.Msg) {
	r := w.record(m)
	id := r.header.Get(plainHeaderID)
	w.mu.Lock()
	w.slow[r.header.Get(plainHeaderSession)+"."+id] = r
	w.mu.Unlock()
	w.publish(r, "plain.slow", "progress", 1, `{"started":true}`)
}

// cancel stops a plain/slow request in flight. Like any worker, it may still
// send events after the cancel; the gateway must drop them.
func (w *plainWorker) cancel(m *nats.Msg) {
	w.cancels <- m.Subject
	tokens := strings.Split(m.Subject, ".") // fabric cancel <sessionId> <id>
	if len(tokens) != 4 {
		return
	}
	w.mu.Lock()
	r, ok := w.slow[tokens[2]+"."+tokens[3]]
	delete(w.slow, tokens[2]+"."+tokens[3])
	w.mu.Unlock()
	if !ok {
		return
	}
	w.publish(r, "plain.slow", "error", 2, `{"code":"cancelled","message":"stopped by the plain worker"}`)
	w.publish(r, "plain.slow", "finish", 3, "")
	_ = w.nc.Flush() // the late events are on their way before stopped says so
	w.stopped <- tokens[3]
}

func receivePlain[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// plainFrame is a server frame as a test expects it: payload is the exact
// JSON the worker sent ("" for none).
type plainFrame struct {
	typ     string
	id      string
	seq     uint64
	payload string
}

func checkPlainFrames(t *testing.T, got []plainFrame, want []plainFrame) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("frames:\n got %+v\nwant %+v", got, want)
	}
}

// startPlain starts NATS, a gateway and the plain worker, and connects a raw
// client; it returns the worker, the client and its session id.
func startPlain(t *testing.T) (*plainWorker, *fabrictest.WS, string) {
	t.Helper()
	ns := fabrictest.NATS(t)
	gw := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gateway"), gateway.Config{})
	pw := startPlainWorker(t, ns.ClientURL())
	ws, welcome := fabrictest.Hello(t, gw.URL)
	t.Cleanup(func() {
		if n := len(pw.requests); n != 0 {
			t.Errorf("the plain worker got %d requests more than the test expected", n)
		}
	})
	return pw, ws, welcome.SessionID
}

// helloFrames are the frames of a plain/hello request id for name.
func helloFrames(id, name string) []plainFrame {
	return []plainFrame{
		{"plain/hello:progress", id, 1, `{"step":1}`},
		{"plain/hello:progress", id, 2, `{"step":2}`},
		{"plain/hello:response", id, 3, `{"greeting":"hello, ` + name + `"}`},
		{"plain/hello:finish", id, 4, ""},
	}
}

// TestPlainWorkerEvents: a request reaches the plain worker as the contract
// says, and its events reach the client as the worker sent them.
func TestPlainWorkerEvents(t *testing.T) {
	pw, ws, sid := startPlain(t)
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ws.Send(map[string]any{"type": "plain/hello", "id": "m1", "payload": map[string]string{"name": "Ada"}, "traceparent": traceparent})
	checkPlainFrames(t, plainFrames(ws.Collect("m1")["m1"]), helloFrames("m1", "Ada"))

	// What the worker saw, key by key: NATS headers are case-sensitive.
	r := receivePlain(t, pw.requests, "the plain/hello request")
	if r.subject != plainHelloSubject {
		t.Errorf("subject %q, want %q", r.subject, plainHelloSubject)
	}
	if want := plainEventsPrefix + sid + ".m1"; r.reply != want {
		t.Errorf("reply subject %q, want %q", r.reply, want)
	}
	if got := r.header[plainHeaderSession]; !slices.Equal(got, []string{sid}) {
		t.Errorf("%s %q, want the welcome's sessionId %q", plainHeaderSession, got, sid)
	}
	if got := r.header[plainHeaderID]; !slices.Equal(got, []string{"m1"}) {
		t.Errorf("%s %q, want the request id m1", plainHeaderID, got)
	}
	if got := r.header[plainHeaderTraceparent]; !slices.Equal(got, []string{traceparent}) {
		t.Errorf("%s %q, want the client's %q", plainHeaderTraceparent, got, traceparent)
	}
	if got, ok := r.header[plainHeaderUser]; ok {
		t.Errorf("%s %q on an anonymous session", plainHeaderUser, got)
	}
	if keys, want := slices.Sorted(maps.Keys(r.header)), []string{plainHeaderID, plainHeaderSession, plainHeaderTraceparent}; !slices.Equal(keys, want) {
		t.Errorf("headers %q, want exactly %q", keys, want)
	}
	if string(r.data) != `{"name":"Ada"}` {
		t.Errorf("body %s, want the payload {\"name\":\"Ada\"}", r.data)
	}
}

// TestPlainWorkerCancel: sys/cancel reaches the plain worker's cancel
// subscription; the gateway answers the client itself and drops the
// worker's late events.
func TestPlainWorkerCancel(t *testing.T) {
	pw, ws, sid := startPlain(t)
	ws.Request("plain/slow", "m2", nil)
	checkPlainFrames(t, plainFrames([]protocol.Message{ws.Read()}), []plainFrame{{"plain/slow:progress", "m2", 1, `{"started":true}`}})
	receivePlain(t, pw.requests, "the plain/slow request")

	ws.Send(map[string]any{"type": "sys/cancel", "id": "m2"})
	msgs := ws.Collect("m2")["m2"]
	if len(msgs) != 2 {
		t.Fatalf("got %+v after sys/cancel, want :error and :finish", msgs)
	}
	checkPlainFrames(t, plainFrames(msgs), []plainFrame{
		{"plain/slow:error", "m2", 2, string(msgs[0].Payload)},
		{"plain/slow:finish", "m2", 3, ""},
	})
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(msgs[0].Payload, &e); err != nil || e.Code != "cancelled" {
		t.Errorf(":error payload %s, want code cancelled", msgs[0].Payload)
	}
	if e.Message == "stopped by the plain worker" {
		t.Errorf("the client got the worker's :error; the gateway makes its own at once")
	}

	if got, want := receivePlain(t, pw.cancels, "the cancel"), "fabric.cancel."+sid+".m2"; got != want {
		t.Errorf("cancel subject %q, want %q", got, want)
	}
	// The worker stopped, sending its own :error and :finish. The gateway
	// drops them: the frames of the next request, which the same worker
	// publishes later, come first, and no frame of m2 comes (Collect fails
	// on a frame of an unexpected id).
	if id := receivePlain(t, pw.stopped, "the plain worker to stop m2"); id != "m2" {
		t.Fatalf("stopped %q, want m2", id)
	}
	checkPlainFrames(t, plainFrames(ws.Call("plain/hello", "m3", map[string]string{"name": "Bob"})), helloFrames("m3", "Bob"))
	receivePlain(t, pw.requests, "the plain/hello request")
}

// TestPlainPush: a push published with plain NATS reaches the session.
func TestPlainPush(t *testing.T) {
	pw, ws, sid := startPlain(t)
	// The gateway subscribed to the session's pushes right after its events,
	// before sys/welcome: once events have flowed, the server has both.
	checkPlainFrames(t, plainFrames(ws.Call("plain/hello", "m1", map[string]string{"name": "Ada"})), helloFrames("m1", "Ada"))
	receivePlain(t, pw.requests, "the plain/hello request")

	err := pw.nc.PublishMsg(&nats.Msg{
		Subject: plainPushSession + sid,
		Header:  nats.Header{plainHeaderType: {"plain/notice"}},
		Data:    []byte(`{"text":"from plain NATS"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	raw := readRawFrame(t, ws)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatalf("push frame %s: %v", raw, err)
	}
	if keys := slices.Sorted(maps.Keys(fields)); !slices.Equal(keys, []string{"payload", "type"}) {
		t.Errorf("push frame %s has fields %q, want exactly type and payload (no id, no seq)", raw, keys)
	}
	if string(fields["type"]) != `"plain/notice"` || string(fields["payload"]) != `{"text":"from plain NATS"}` {
		t.Errorf("push frame %s, want type plain/notice and the published payload", raw)
	}
}

func plainFrames(msgs []protocol.Message) []plainFrame {
	out := make([]plainFrame, len(msgs))
	for i, m := range msgs {
		out[i] = plainFrame{m.Type, m.ID, m.Seq, string(m.Payload)}
	}
	return out
}

// readRawFrame reads the next frame other than sys/ping, as the bytes the
// gateway sent.
func readRawFrame(t *testing.T, ws *fabrictest.WS) []byte {
	t.Helper()
	for {
		_ = ws.Conn.SetReadDeadline(time.Now().Add(fabrictest.ReadTimeout))
		_, b, err := ws.Conn.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if !bytes.HasPrefix(b, []byte(`{"type":"sys/ping"`)) {
			return b
		}
	}
}
