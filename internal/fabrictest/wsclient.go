package fabrictest

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed82ac63c1/fabric/protocol"
)

// WS is a raw WebSocket client for tests: it speaks the wire contract by
// hand, frame by frame, so tests see exactly what a client sees.
type WS struct {
	t    testing.TB
	Conn *websocket.Conn
	Resp *http.Response
}

// Dial opens a WebSocket to url offering the fabric.v1 subprotocol.
func Dial(t testing.TB, url string) *WS {
	t.Helper()
	return DialHeader(t, url, nil)
}

// DialHeader is Dial with extra upgrade request headers (Authorization,
// Origin…).
func DialHeader(t testing.TB, url string, h http.Header) *WS {
	t.Helper()
	ws, resp, err := TryDial(t, url, h)
	if err != nil {
		t.Fatalf("dial %s: %v (response %v)", url, err, resp)
	}
	return ws
}

// TryDial is DialHeader returning the error, and the response of a refused
// upgrade.
func TryDial(t testing.TB, url string, h http.Header) (*WS, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: []string{protocol.Subprotocol}, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(url, h)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { c.Close() })
	return &WS{t: t, Conn: c, Resp: resp}, resp, nil
}

// Hello dials and says hello; it returns the client and the welcome.
func Hello(t testing.TB, url string) (*WS, protocol.Welcome) {
	t.Helper()
	ws := Dial(t, url)
	return ws, ws.Hello(nil)
}

// Hello sends sys/hello with payload (nil for none) and returns the welcome.
func (ws *WS) Hello(payload any) protocol.Welcome {
	ws.t.Helper()
	ws.Send(map[string]any{"type": protocol.TypeHello, "payload": payload})
	m := ws.Read()
	if m.Type != protocol.TypeWelcome {
		ws.t.Fatalf("want sys/welcome, got %+v", m)
	}
	var w protocol.Welcome
	if err := m.Decode(&w); err != nil {
		ws.t.Fatal(err)
	}
	return w
}

// Send writes v as one JSON text frame.
func (ws *WS) Send(v any) {
	ws.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		ws.t.Fatal(err)
	}
	ws.SendRaw(b)
}

// SendRaw writes b as one text frame.
func (ws *WS) SendRaw(b []byte) {
	ws.t.Helper()
	if err := ws.Conn.WriteMessage(websocket.TextMessage, b); err != nil {
		ws.t.Fatalf("write: %v", err)
	}
}

// Request sends a request frame.
func (ws *WS) Request(typ, id string, payload any) {
	ws.t.Helper()
	ws.Send(map[string]any{"type": typ, "id": id, "payload": payload})
}

// ReadTimeout bounds each Read.
const ReadTimeout = 10 * time.Second

// Read reads the next frame, skipping sys/ping, and fails the test on error.
func (ws *WS) Read() protocol.Message {
	ws.t.Helper()
	m, err := ws.TryRead(ReadTimeout)
	if err != nil {
		ws.t.Fatalf("read: %v", err)
	}
	return m
}

// TryRead reads the next frame other than sys/ping within d.
func (ws *WS) TryRead(d time.Duration) (protocol.Message, error) {
	for {
		_ = ws.Conn.SetReadDeadline(time.Now().Add(d))
		mt, b, err := ws.Conn.ReadMessage()
		if err != nil {
			return protocol.Message{}, err
		}
		if mt != websocket.TextMessage {
			return protocol.Message{}, errors.New("binary frame from the gateway")
		}
		var m protocol.Message
		if err := json.Unmarshal(b, &m); err != nil {
			return protocol.Message{}, err
		}
		if m.Type == protocol.TypePing {
			continue
		}
		return m, nil
	}
}

// Collect reads frames until the :finish of every id in ids, and returns the
// frames of each id in arrival order. Frames of other ids or without id fail
// the test unless they are pushes (no id), which are returned under "".
func (ws *WS) Collect(ids ...string) map[string][]protocol.Message {
	ws.t.Helper()
	out := make(map[string][]protocol.Message)
	open := make(map[string]bool)
	for _, id := range ids {
		open[id] = true
	}
	for len(open) > 0 {
		m := ws.Read()
		out[m.ID] = append(out[m.ID], m)
		if m.ID != "" && !open[m.ID] {
			ws.t.Fatalf("frame for unexpected id: %+v", m)
		}
		if m.ID != "" && m.Suffix() == protocol.SuffixFinish {
			delete(open, m.ID)
		}
	}
	return out
}

// Call sends one request and returns its frames through :finish.
func (ws *WS) Call(typ, id string, payload any) []protocol.Message {
	ws.t.Helper()
	ws.Request(typ, id, payload)
	return ws.Collect(id)[id]
}

// CloseCode reads until the connection closes and returns the close code
// (0 if it ended without a close frame).
func (ws *WS) CloseCode() int {
	ws.t.Helper()
	for {
		_ = ws.Conn.SetReadDeadline(time.Now().Add(ReadTimeout))
		_, _, err := ws.Conn.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		ws.t.Logf("connection ended without close frame: %v", err)
		return 0
	}
}

// Close closes the connection normally (1000), which ends the session, and
// waits for the gateway's close frame.
func (ws *WS) Close() {
	ws.t.Helper()
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := ws.Conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(ReadTimeout)); err != nil {
		ws.t.Fatalf("close: %v", err)
	}
	ws.CloseCode()
}

// Wrap wraps an open connection as a WS.
func Wrap(t testing.TB, c *websocket.Conn) *WS {
	t.Cleanup(func() { c.Close() })
	return &WS{t: t, Conn: c}
}
