package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/gorilla/websocket"
)

// wsConn is one fabric connection of the load generator: one request at a
// time, read by the goroutine that sent it.
type wsConn struct {
	ws *websocket.Conn
}

var (
	helloFrame = []byte(`{"type":"sys/hello","payload":{"client":"fabric-bench"}}`)
	pongFrame  = []byte(`{"type":"sys/pong"}`)
)

// dialer returns a WebSocket dialer whose connections leave from local (nil
// means any address): spreading connections over 127.0.0.x sources gives
// each its own range of ephemeral ports.
func dialer(local net.IP, subprotocols ...string) *websocket.Dialer {
	nd := &net.Dialer{Timeout: 10 * time.Second}
	if local != nil {
		nd.LocalAddr = &net.TCPAddr{IP: local}
	}
	return &websocket.Dialer{
		NetDialContext:   nd.DialContext,
		HandshakeTimeout: 10 * time.Second,
		Subprotocols:     subprotocols,
		// Small buffers: the load generator's memory stays small at 10k
		// connections; frames here are small.
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
	}
}

// dialFabric connects to a gateway's url from local, sends sys/hello and
// reads the welcome.
func dialFabric(ctx context.Context, url string, local net.IP) (*wsConn, error) {
	c, _, err := dialHello(ctx, url, local, helloFrame)
	return c, err
}

// dialHello connects to a gateway's url from local, sends hello and
// returns the sys/welcome frame.
func dialHello(ctx context.Context, url string, local net.IP, hello []byte) (*wsConn, []byte, error) {
	ws, resp, err := dialer(local, "fabric.v1").DialContext(ctx, url, nil)
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %s)", err, resp.Status)
		}
		return nil, nil, err
	}
	c := &wsConn{ws: ws}
	if dl, ok := ctx.Deadline(); ok {
		_ = ws.SetReadDeadline(dl)
	}
	if err := ws.WriteMessage(websocket.TextMessage, hello); err != nil {
		c.close()
		return nil, nil, err
	}
	_, msg, err := ws.ReadMessage()
	if err == nil && frameType(msg) != "sys/welcome" {
		err = fmt.Errorf("bench: first frame %.200q, want sys/welcome", msg)
	}
	_ = ws.SetReadDeadline(time.Time{})
	if err != nil {
		c.close()
		return nil, nil, err
	}
	return c, msg, nil
}

// roundTripResult is when a request's first and last frames arrived after
// it was sent, and whether one was an :error.
type roundTripResult struct {
	first, last time.Duration
	frames      int
	failed      bool
}

// roundTrip sends one request frame and reads frames until its :finish,
// answering the gateway's pings meanwhile. The connection has no other
// request in flight.
func (c *wsConn) roundTrip(frame []byte) (roundTripResult, error) {
	var r roundTripResult
	start := time.Now()
	if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		return r, err
	}
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return r, err
		}
		t := frameType(msg)
		switch {
		case t == "sys/ping":
			if err := c.ws.WriteMessage(websocket.TextMessage, pongFrame); err != nil {
				return r, err
			}
			continue
		case len(t) > 4 && t[:4] == "sys/":
			if t == "sys/error" {
				return r, fmt.Errorf("bench: %.300s", msg)
			}
			continue
		}
		r.frames++
		if r.frames == 1 {
			r.first = time.Since(start)
		}
		if bytes.HasSuffix([]byte(t), []byte(":error")) {
			r.failed = true
		}
		if bytes.HasSuffix([]byte(t), []byte(":finish")) {
			r.last = time.Since(start)
			return r, nil
		}
	}
}

// idle reads frames until the connection ends, answering pings; it
// returns the error that ended it.
func (c *wsConn) idle() error {
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return err
		}
		if frameType(msg) == "sys/ping" {
			if err := c.ws.WriteMessage(websocket.TextMessage, pongFrame); err != nil {
				return err
			}
		}
	}
}

// closeNormal sends a normal close (1000, which ends the session) and
// closes the socket.
func (c *wsConn) closeNormal() {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.close()
}

func (c *wsConn) close() { _ = c.ws.Close() }

// frameID returns the "id" of a frame of type typ, which the gateway
// writes right after the type; "" if it does not.
func frameID(msg []byte, typ string) string {
	const prefix = `{"type":"`
	const sep = `","id":"`
	if len(msg) < len(prefix)+len(typ) {
		return ""
	}
	rest := msg[len(prefix)+len(typ):]
	if !bytes.HasPrefix(rest, []byte(sep)) {
		return ""
	}
	rest = rest[len(sep):]
	i := bytes.IndexByte(rest, '"')
	if i < 0 {
		return ""
	}
	return string(rest[:i])
}

// frameType returns a frame's "type". The gateway writes it first; a
// frame that does not start with it is not one of the gateway's.
func frameType(msg []byte) string {
	const prefix = `{"type":"`
	if !bytes.HasPrefix(msg, []byte(prefix)) {
		return ""
	}
	rest := msg[len(prefix):]
	i := bytes.IndexByte(rest, '"')
	if i < 0 {
		return ""
	}
	return string(rest[:i])
}
