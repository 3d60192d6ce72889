package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers/demo"
)

// Timeouts of a client's own I/O. They bound a stuck gateway; nothing is
// asserted against them.
const (
	dialTimeout      = 5 * time.Second
	writeTimeout     = 5 * time.Second
	helloTimeout     = 10 * time.Second
	readIdle         = 60 * time.Second // more than two of the gateway's ping intervals
	reconnectTimeout = 30 * time.Second // an automatic resume gives up after this
)

// Client is a raw WebSocket client that records every frame it gets. It
// speaks the wire contract by hand: hello, requests with ids unique to it
// ("c3-17"), pongs, and resume on another gateway with the unfinished
// requests re-sent with "after" (docs/protocol.md §9). [Check] judges the
// recording.
//
// Its methods may be called from any goroutine, except those that take a
// testing.TB, which fail the test and belong to the test's goroutine.
type Client struct {
	Name string

	c   *Cluster
	gws []*Gateway // the gateways an automatic resume may use

	wmu sync.Mutex // one writer at a time

	mu       sync.Mutex
	conn     *wsConn // nil between a drop and the next connection
	gw       int     // the gateway of the last connection
	welcomes []protocol.Welcome
	closes   []int // how each connection ended: its close code, 1006 for a drop
	reqs     map[string]*Request
	order    []string // ids, in the order sent
	next     int
	stray    []protocol.Message // events of ids this client never sent
	rejected []protocol.Message // sys/error frames
	errs     []error            // what went wrong on the client's side
	auto     bool
	closing  bool
	changed  chan struct{} // closed and replaced on every change
	wg       sync.WaitGroup
}

// wsConn is one connection of a client.
type wsConn struct {
	ws   *websocket.Conn
	done chan struct{} // closed when its reader has ended
	code int           // how it ended
}

// Request is one request as a client sent it, with every event it got for
// its id.
type Request struct {
	ID     string
	Type   string
	Params json.RawMessage
	Events []protocol.Message // in arrival order, across connections
	Resent []uint64           // the "after" of each re-send, in order
	// Abandoned says why the client ended the request itself, as the Go
	// client does ("resume rejected": the new session knows nothing of it).
	Abandoned string

	written bool // sent on a connection (else it waits for the next one)
}

// Finished reports whether a :finish arrived.
func (r *Request) Finished() bool {
	for _, m := range r.Events {
		if m.Suffix() == protocol.SuffixFinish {
			return true
		}
	}
	return false
}

func (r *Request) ended() bool { return r.Abandoned != "" || r.Finished() }

// lastSeq is the highest seq received: a re-send's "after".
func (r *Request) lastSeq() uint64 {
	var seq uint64
	for _, m := range r.Events {
		seq = max(seq, m.Seq)
	}
	return seq
}

// Outcome sums up how the request ended: "ok" (a :response), the code of
// its :error ("timeout", "interrupted"…), "abandoned", or "unfinished".
func (r *Request) Outcome() string {
	switch {
	case r.Abandoned != "":
		return "abandoned"
	case !r.Finished():
		return "unfinished"
	}
	outcome := "finished"
	for _, m := range r.Events {
		switch m.Suffix() {
		case protocol.SuffixResponse:
			outcome = "ok"
		case protocol.SuffixError:
			var e protocol.Error
			_ = m.Decode(&e)
			return string(e.Code)
		}
	}
	return outcome
}

// NewClient connects a new client to gateway gw and says hello. The client
// is closed at cleanup, without a normal close: its session stays for the
// retention.
func (c *Cluster) NewClient(t testing.TB, gw int) *Client {
	t.Helper()
	c.mu.Lock()
	c.clients++
	name := fmt.Sprintf("c%d", c.clients)
	c.mu.Unlock()
	cl := &Client{Name: name, c: c, gws: append([]*Gateway(nil), c.Gateways...),
		reqs: make(map[string]*Request), changed: make(chan struct{})}
	t.Cleanup(cl.drop)
	if _, err := cl.connect(gw, false); err != nil {
		t.Fatalf("%s: connect to gw%d: %v", name, gw, err)
	}
	return cl
}

// connect opens a connection to gateway gw, says hello (resuming the
// session if resume), then sends what the new connection owes: requests
// sent while there was none, and, after a resume, every unfinished request
// again with "after". When the session is not resumed, unfinished requests
// are abandoned.
func (cl *Client) connect(gw int, resume bool) (protocol.Welcome, error) {
	var w protocol.Welcome
	d := websocket.Dialer{Subprotocols: []string{protocol.Subprotocol}, HandshakeTimeout: dialTimeout}
	cl.mu.Lock()
	g := cl.gws[gw]
	cl.mu.Unlock()
	ws, resp, err := d.Dial(g.URL(), nil)
	if err != nil {
		return w, err
	}
	resp.Body.Close()
	hello := protocol.Hello{Client: cl.Name}
	if resume {
		cl.mu.Lock()
		last := cl.welcomes[len(cl.welcomes)-1]
		cl.mu.Unlock()
		hello.Resume = &protocol.Resume{SessionID: last.SessionID, ResumeToken: last.ResumeToken}
	}
	_ = ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := ws.WriteJSON(map[string]any{"type": protocol.TypeHello, "payload": hello}); err != nil {
		ws.Close()
		return w, err
	}
	_ = ws.SetReadDeadline(time.Now().Add(helloTimeout))
	var m protocol.Message
	if err := ws.ReadJSON(&m); err != nil {
		ws.Close()
		return w, err
	}
	if m.Type != protocol.TypeWelcome {
		ws.Close()
		return w, fmt.Errorf("want sys/welcome, got %s", m.Type)
	}
	if err := m.Decode(&w); err != nil {
		ws.Close()
		return w, err
	}

	conn := &wsConn{ws: ws, done: make(chan struct{})}
	var owed []map[string]any
	cl.mu.Lock()
	if cl.closing {
		cl.mu.Unlock()
		ws.Close()
		return w, errors.New("client closed")
	}
	cl.conn, cl.gw = conn, gw
	cl.welcomes = append(cl.welcomes, w)
	for _, id := range cl.order {
		switch r := cl.reqs[id]; {
		case r.ended():
		case !r.written:
			r.written = true
			owed = append(owed, r.frame(nil))
		case w.Resumed:
			after := r.lastSeq()
			r.Resent = append(r.Resent, after)
			owed = append(owed, r.frame(&after))
		default:
			r.Abandoned = "resume rejected"
		}
	}
	cl.notifyLocked()
	cl.wg.Add(1)
	go cl.read(conn)
	cl.mu.Unlock()
	for _, f := range owed {
		cl.write(conn, f)
	}
	return w, nil
}

// frame is the request's frame, with after when it is a re-send.
func (r *Request) frame(after *uint64) map[string]any {
	f := map[string]any{"type": r.Type, "id": r.ID, "payload": r.Params}
	if after != nil {
		f["after"] = *after
	}
	return f
}

// read records every frame of conn until it ends, then, if the client
// resumes automatically, resumes on another gateway.
func (cl *Client) read(conn *wsConn) {
	defer cl.wg.Done()
	code := websocket.CloseAbnormalClosure
	for {
		_ = conn.ws.SetReadDeadline(time.Now().Add(readIdle))
		_, b, err := conn.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code = ce.Code
			}
			break
		}
		var m protocol.Message
		if err := json.Unmarshal(b, &m); err != nil {
			cl.fail(fmt.Errorf("a frame that is not JSON: %q", b))
			continue
		}
		if m.Type == protocol.TypePing {
			cl.write(conn, map[string]any{"type": protocol.TypePong})
			continue
		}
		cl.record(m)
	}
	conn.ws.Close()
	cl.mu.Lock()
	conn.code = code
	cl.closes = append(cl.closes, code)
	if cl.conn == conn {
		cl.conn = nil
	}
	allowed, _ := protocol.CloseCode(code).Reconnect()
	again := cl.auto && !cl.closing && allowed
	if cl.auto && !cl.closing && !allowed {
		cl.errs = append(cl.errs, fmt.Errorf("%s: closed with %d, which forbids a reconnect", cl.Name, code))
	}
	cl.notifyLocked()
	cl.mu.Unlock()
	close(conn.done)
	if again {
		cl.wg.Add(1)
		go cl.resumeAnywhere()
	}
}

func (cl *Client) record(m protocol.Message) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	switch {
	case m.Type == protocol.TypeError:
		cl.rejected = append(cl.rejected, m)
	case m.ID == "":
		// A push: at most once, not judged.
	case cl.reqs[m.ID] == nil:
		cl.stray = append(cl.stray, m)
	default:
		r := cl.reqs[m.ID]
		r.Events = append(r.Events, m)
	}
	cl.notifyLocked()
}

// resumeAnywhere resumes the session on the next gateway that takes it,
// trying each running one in turn, until reconnectTimeout.
func (cl *Client) resumeAnywhere() {
	defer cl.wg.Done()
	cl.mu.Lock()
	from, gws := cl.gw, cl.gws
	cl.mu.Unlock()
	deadline := time.Now().Add(reconnectTimeout)
	var errs []error
	for round := 0; ; round++ {
		for i := range gws {
			cl.mu.Lock()
			closing := cl.closing
			cl.mu.Unlock()
			if closing {
				return
			}
			gw := (from + 1 + i) % len(gws)
			if g := gws[gw]; !g.Running() || g.Stopped() {
				continue
			}
			_, err := cl.connect(gw, true)
			if err == nil {
				return
			}
			errs = append(errs, fmt.Errorf("gw%d: %w", gw, err))
		}
		if time.Now().After(deadline) {
			cl.fail(fmt.Errorf("no gateway took the resume within %s: %w", reconnectTimeout, errors.Join(errs...)))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// write writes one frame on conn; a failed write drops the connection,
// whose reader then ends.
func (cl *Client) write(conn *wsConn, f map[string]any) {
	b, err := json.Marshal(f)
	if err != nil {
		panic(err) // frames are built here, from JSON values
	}
	cl.wmu.Lock()
	defer cl.wmu.Unlock()
	_ = conn.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := conn.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		conn.ws.Close()
	}
}

func (cl *Client) fail(err error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.errs = append(cl.errs, fmt.Errorf("%s: %w", cl.Name, err))
	cl.notifyLocked()
}

func (cl *Client) notifyLocked() {
	close(cl.changed)
	cl.changed = make(chan struct{})
}

// SetAutoResume makes the client resume by itself, on the next running
// gateway, whenever its connection ends with a close code that allows a
// reconnect (a drop, 1001, 4000…); one that forbids it (1000, 45xx) is
// reported by [Check].
func (cl *Client) SetAutoResume(on bool) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.auto = on
}

// Send sends a request with a fresh id and returns the id. params is
// marshalled as the payload. Without a connection, the request waits for
// the next one (it is recorded either way).
func (cl *Client) Send(typ string, params any) string {
	p, err := json.Marshal(params)
	if err != nil {
		panic(err)
	}
	cl.mu.Lock()
	cl.next++
	r := &Request{ID: fmt.Sprintf("%s-%d", cl.Name, cl.next), Type: typ, Params: p}
	cl.reqs[r.ID] = r
	cl.order = append(cl.order, r.ID)
	conn := cl.conn
	r.written = conn != nil
	cl.notifyLocked()
	cl.mu.Unlock()
	if conn != nil {
		cl.write(conn, r.frame(nil))
	}
	return r.ID
}

// Count sends demo/count: n progress events, intervalMs apart, then the
// response.
func (cl *Client) Count(n, intervalMs int) string {
	return cl.Send(demo.Count.Type(), demo.CountParams{N: n, IntervalMs: intervalMs})
}

// Cancel sends sys/cancel for id.
func (cl *Client) Cancel(id string) {
	cl.mu.Lock()
	conn := cl.conn
	cl.mu.Unlock()
	if conn != nil {
		cl.write(conn, map[string]any{"type": protocol.TypeCancel, "id": id})
	}
}

// waitFor waits until cond, called under the client's lock, holds, for at
// most d. It reports whether it held.
func (cl *Client) waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		cl.mu.Lock()
		ok, changed := cond(), cl.changed
		cl.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return false
		}
	}
}

// Wait waits up to d until each of ids (every request sent, if none) has
// ended: finished or abandoned.
func (cl *Client) Wait(t testing.TB, d time.Duration, ids ...string) {
	t.Helper()
	if !cl.Await(d, ids...) {
		var pending []string
		cl.mu.Lock()
		for _, id := range cl.idsLocked(ids) {
			if r := cl.reqs[id]; !r.ended() {
				pending = append(pending, id+" "+formatEvents(r.Events))
			}
		}
		cl.mu.Unlock()
		t.Fatalf("%s: requests not ended within %s: %s", cl.Name, d, strings.Join(pending, ", "))
	}
}

// Await is Wait for any goroutine: it reports whether each of ids (every
// request, if none) ended within d.
func (cl *Client) Await(d time.Duration, ids ...string) bool {
	return cl.waitFor(d, func() bool {
		for _, id := range cl.idsLocked(ids) {
			if !cl.reqs[id].ended() {
				return false
			}
		}
		return true
	})
}

func (cl *Client) idsLocked(ids []string) []string {
	if len(ids) == 0 {
		return cl.order
	}
	for _, id := range ids {
		if cl.reqs[id] == nil {
			panic(fmt.Sprintf("%s: no request %s", cl.Name, id))
		}
	}
	return ids
}

// WaitEvents waits until request id has at least n events.
func (cl *Client) WaitEvents(t testing.TB, id string, n int) {
	t.Helper()
	if !cl.waitFor(30*time.Second, func() bool { return len(cl.reqs[id].Events) >= n }) {
		t.Fatalf("%s: fewer than %d events for %s: %+v", cl.Name, n, id, cl.Request(id).Events)
	}
}

// WaitDropped waits until the client's current connection ends and returns
// how: the close code the gateway sent, or 1006 when the connection ended
// without one. Automatic resume must be off.
func (cl *Client) WaitDropped(t testing.TB) int {
	t.Helper()
	cl.mu.Lock()
	conn := cl.conn
	last := 0
	if len(cl.closes) > 0 {
		last = cl.closes[len(cl.closes)-1]
	}
	cl.mu.Unlock()
	if conn == nil {
		return last
	}
	select {
	case <-conn.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: connection still open", cl.Name)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return conn.code
}

// Resume reconnects to gateway gw with the session of the last welcome and
// returns the new welcome. After "resumed": true the unfinished requests
// are re-sent with "after"; otherwise they are abandoned.
func (cl *Client) Resume(t testing.TB, gw int) protocol.Welcome {
	t.Helper()
	cl.mu.Lock()
	open := cl.conn != nil
	cl.gws = append([]*Gateway(nil), cl.c.Gateways...) // gateways added since
	cl.mu.Unlock()
	if open {
		t.Fatalf("%s: resume while connected", cl.Name)
	}
	w, err := cl.connect(gw, true)
	if err != nil {
		t.Fatalf("%s: resume on gw%d: %v", cl.Name, gw, err)
	}
	return w
}

// Close ends the session normally (1000) and waits for the gateway's close.
func (cl *Client) Close(t testing.TB) {
	t.Helper()
	cl.mu.Lock()
	cl.closing = true
	conn := cl.conn
	cl.mu.Unlock()
	if conn == nil {
		return
	}
	cl.wmu.Lock()
	err := conn.ws.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(writeTimeout))
	cl.wmu.Unlock()
	if err != nil {
		conn.ws.Close()
	}
	select {
	case <-conn.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s: the gateway did not answer the close", cl.Name)
		conn.ws.Close()
	}
}

// drop ends the client at cleanup: its connection is cut, and its
// goroutines are waited for.
func (cl *Client) drop() {
	cl.mu.Lock()
	cl.closing = true
	conn := cl.conn
	cl.mu.Unlock()
	if conn != nil {
		conn.ws.Close()
	}
	cl.wg.Wait()
}

// Connected reports whether the client has a connection.
func (cl *Client) Connected() bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.conn != nil
}

// Welcome returns the last welcome.
func (cl *Client) Welcome() protocol.Welcome {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.welcomes[len(cl.welcomes)-1]
}

// Welcomes returns every welcome, one per connection.
func (cl *Client) Welcomes() []protocol.Welcome {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return append([]protocol.Welcome(nil), cl.welcomes...)
}

// Request returns a copy of request id as recorded so far.
func (cl *Client) Request(id string) Request {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.reqs[id].clone()
}

// Outcome returns how request id ended (see [Request.Outcome]).
func (cl *Client) Outcome(id string) string {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.reqs[id].Outcome()
}

// Requests returns a copy of every request, in the order sent.
func (cl *Client) Requests() []Request {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	rs := make([]Request, len(cl.order))
	for i, id := range cl.order {
		rs[i] = cl.reqs[id].clone()
	}
	return rs
}

func (r *Request) clone() Request {
	c := *r
	c.Events = append([]protocol.Message(nil), r.Events...)
	c.Resent = append([]uint64(nil), r.Resent...)
	return c
}
