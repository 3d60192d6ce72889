package gateway_test

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
)

// gauge reads one unlabelled metric of the gateway.
func gauge(t *testing.T, g *fabrictest.Gateway, name string) int {
	t.Helper()
	_, body := g.HTTPGet(t, "/metrics")
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return int(v)
}

func awaitGauge(t *testing.T, g *fabrictest.Gateway, name string, want int) {
	t.Helper()
	fabrictest.Eventually(t, 10*time.Second, func() bool { return gauge(t, g, name) == want })
}

// TestParkedConnections parks idle connections (no reader goroutine, the
// socket watched by the gateway's poller) and checks that everything a
// client can send wakes them: requests, round after round, a WebSocket
// ping, a close, a dropped socket; and that the gateway's shutdown closes
// parked connections with 1001.
func TestParkedConnections(t *testing.T) {
	const n = 20
	f := fabrictest.Start(t, gateway.Config{ParkAfter: 20 * time.Millisecond})
	g := f.Gateway
	goroutines := runtime.NumGoroutine()
	conns := make([]*fabrictest.WS, n)
	for i := range conns {
		conns[i], _ = fabrictest.Hello(t, g.URL)
	}
	awaitGauge(t, g, "fabric_gateway_parked_connections", n)
	// The n readers have ended: fewer goroutines now than n would need
	// (the clients' own readers are not running: nothing reads them).
	if now := runtime.NumGoroutine(); now-goroutines >= n {
		t.Errorf("%d goroutines more with %d parked connections", now-goroutines, n)
	}

	for round := range 3 {
		for i, ws := range conns {
			id := fmt.Sprintf("r%d-%d", round, i)
			checkEvents(t, id, ws.Call("demo/echo", id, i), want{"demo/echo:response", strconv.Itoa(i)}, want{"demo/echo:finish", ""})
		}
		awaitGauge(t, g, "fabric_gateway_parked_connections", n)
	}

	t.Run("websocket ping", func(t *testing.T) {
		ws := conns[0]
		var pongs atomic.Int32
		ws.Conn.SetPongHandler(func(data string) error {
			if data == "are you there" {
				pongs.Add(1)
			}
			return nil
		})
		if err := ws.Conn.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		fabrictest.Eventually(t, 10*time.Second, func() bool {
			_, _ = ws.TryRead(20 * time.Millisecond) // gorilla runs the pong handler while reading
			return pongs.Load() == 1
		})
		awaitGauge(t, g, "fabric_gateway_parked_connections", n)
	})

	t.Run("client close", func(t *testing.T) {
		ws := conns[1]
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
		if err := ws.Conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
		if code := ws.CloseCode(); code != websocket.CloseNormalClosure {
			t.Fatalf("close code %d, want the gateway to answer %d", code, websocket.CloseNormalClosure)
		}
		awaitGauge(t, g, "fabric_gateway_connections", n-1)
		awaitGauge(t, g, "fabric_gateway_parked_connections", n-1)
	})

	t.Run("socket dropped", func(t *testing.T) {
		_ = conns[2].Conn.NetConn().Close()
		awaitGauge(t, g, "fabric_gateway_connections", n-2)
		awaitGauge(t, g, "fabric_gateway_parked_connections", n-2)
	})

	t.Run("shutdown", func(t *testing.T) {
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done <- g.Shutdown(ctx)
		}()
		for _, ws := range conns[3:] {
			if code := ws.CloseCode(); code != int(protocol.CloseGoingAway) {
				t.Errorf("close code %d, want %d", code, protocol.CloseGoingAway)
			}
		}
		if err := <-done; err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		if v := gauge(t, g, "fabric_gateway_parked_connections"); v != 0 {
			t.Errorf("%d connections still parked after shutdown", v)
		}
	})
}

// TestParkedSilentClient: a parked connection whose client answers no
// sys/ping is closed with 4000, as an unparked one is.
func TestParkedSilentClient(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{ParkAfter: 20 * time.Millisecond, PingInterval: 150 * time.Millisecond})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	parked := false
	start := time.Now()
	for {
		_ = ws.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := ws.Conn.ReadMessage()
		if !parked {
			parked = gauge(t, f.Gateway, "fabric_gateway_parked_connections") == 1
		}
		if err != nil {
			ce, ok := err.(*websocket.CloseError)
			if !ok || ce.Code != int(protocol.ClosePingTimeout) {
				t.Fatalf("got %v, want close %d", err, protocol.ClosePingTimeout)
			}
			break
		}
	}
	if !parked {
		t.Error("the silent connection never parked")
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("closed after %s, before two ping intervals", waited)
	}
}

// TestParkedConnectionsUnderChurn: connections park and wake many times
// over, while their clients send at random moments, drop, close, and the
// gateway finally shuts down: every request still gets its response and
// :finish, and goleak (TestMain) finds every goroutine returned.
func TestParkedConnectionsUnderChurn(t *testing.T) {
	const conns, rounds = 40, 15
	f := fabrictest.Start(t, gateway.Config{ParkAfter: 2 * time.Millisecond})
	g := f.Gateway
	errs := make(chan error, conns)
	for c := range conns {
		go func() {
			errs <- func() error {
				ws, _, err := fabrictest.TryDial(t, g.URL, nil) // closed at cleanup
				if err != nil {
					return err
				}
				if err := ws.Conn.WriteJSON(map[string]any{"type": "sys/hello"}); err != nil {
					return err
				}
				if _, err := ws.TryRead(10 * time.Second); err != nil { // the welcome
					return err
				}
				for i := range rounds {
					// Often long enough to park, sometimes not.
					time.Sleep(time.Duration((c*7+i*13)%6) * time.Millisecond)
					id := fmt.Sprintf("c%d-%d", c, i)
					if err := ws.Conn.WriteJSON(map[string]any{"type": "demo/echo", "id": id, "payload": i}); err != nil {
						return err
					}
					for _, want := range []string{"demo/echo:response", "demo/echo:finish"} {
						m, err := ws.TryRead(10 * time.Second)
						if err != nil {
							return fmt.Errorf("%s: %w", id, err)
						}
						if m.ID != id || m.Type != want {
							return fmt.Errorf("%s: got %s %s, want %s", id, m.Type, m.ID, want)
						}
					}
				}
				switch c % 3 {
				case 0: // a normal close, perhaps while parked
					time.Sleep(5 * time.Millisecond)
					msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
					return ws.Conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second))
				case 1: // the socket dropped
					return ws.Conn.NetConn().Close()
				default: // left open, parked, for the shutdown to close
					return nil
				}
			}()
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	awaitGauge(t, g, "fabric_gateway_connections", conns/3) // the third left open, parked
	if err := g.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if v := gauge(t, g, "fabric_gateway_connections"); v != 0 {
		t.Errorf("%d connections after shutdown", v)
	}
	if v := gauge(t, g, "fabric_gateway_parked_connections"); v != 0 {
		t.Errorf("%d parked after shutdown", v)
	}
}

// TestParkAfterBoundsOnlyTheWait: ParkAfter bounds the wait for a client's
// first byte, not the reading of a frame that has begun: a frame arriving
// in two parts, further apart than ParkAfter, is read whole.
func TestParkAfterBoundsOnlyTheWait(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{ParkAfter: 50 * time.Millisecond})
	r := rawDial(t, f.Gateway.URL)
	r.hello()
	b := frame(finBit|opText, []byte(`{"type":"demo/echo","id":"slow","payload":"half and half"}`))
	r.write(b[:20])
	time.Sleep(300 * time.Millisecond)
	r.write(b[20:])
	for _, want := range []string{"demo/echo:response", "demo/echo:finish"} {
		op, p, err := r.next()
		if err != nil || op != opText || !strings.Contains(string(p), want) {
			t.Fatalf("want %s: opcode %d %q %v", want, op, p, err)
		}
	}
}
