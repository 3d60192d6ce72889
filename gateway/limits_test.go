package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
)

// TestMessageRate: over the connection's message rate a request is
// answered :error{rate_limited} + :finish and never published, any other
// frame gets sys/error rate_limited, and a client refused more than
// MessageBurst frames is closed with 4002. The bucket refills one frame per
// 1000 s: within the test it only empties.
func TestMessageRate(t *testing.T) {
	const burst = 3
	f := fabrictest.Start(t, gateway.Config{MessageRate: 0.001, MessageBurst: burst})
	probe := fabrictest.Connect(t, f.NATS, "probe")
	requests, err := probe.SubscribeSync("fabric.req.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := probe.Flush(); err != nil {
		t.Fatal(err)
	}
	ws, _ := fabrictest.Hello(t, f.Gateway.URL) // sys/hello is not counted

	// The burst: three frames pass.
	ws.Request("demo/sleep", "busy", map[string]int{"ms": 60_000})
	checkEvents(t, "a", ws.Call("demo/echo", "a", 1), want{"demo/echo:response", "1"}, want{"demo/echo:finish", ""})
	checkEvents(t, "b", ws.Call("demo/echo", "b", 2), want{"demo/echo:response", "2"}, want{"demo/echo:finish", ""})

	limited := `{"code":"rate_limited","message":"more than 0.001 frames per second on this connection"}`
	// Refused 1: a request ends at once.
	checkEvents(t, "c", ws.Call("demo/echo", "c", 3), want{"demo/echo:error", limited}, want{"demo/echo:finish", ""})
	// Refused 2: any other frame gets sys/error.
	ws.Send(map[string]string{"type": protocol.TypePing})
	if m := ws.Read(); m.Type != protocol.TypeError || compact(t, m.Payload) != limited {
		t.Fatalf("ping over the rate: got %s, want sys/error rate_limited", dump([]protocol.Message{m}))
	}
	// Refused 3: a request whose id is in flight gets sys/error: an :error
	// and :finish would end the running request for the client.
	ws.Request("demo/echo", "busy", 4)
	if m := ws.Read(); m.Type != protocol.TypeError || m.ID != "busy" || compact(t, m.Payload) != limited {
		t.Fatalf("in-flight id over the rate: got %s, want sys/error rate_limited with its id", dump([]protocol.Message{m}))
	}
	// Refused 4, more than the burst: the client is closed.
	ws.Request("demo/echo", "d", 5)
	if code := ws.CloseCode(); code != int(protocol.CloseRateLimited) {
		t.Fatalf("close code %d, want %d", code, protocol.CloseRateLimited)
	}

	// Only the three frames within the rate reached NATS.
	if err := f.Gateway.NATS().Flush(); err != nil {
		t.Fatal(err)
	}
	var published []string
	for {
		m, err := requests.NextMsg(200 * time.Millisecond)
		if err != nil {
			break
		}
		published = append(published, m.Header.Get("Fabric-Id"))
	}
	if strings.Join(published, ",") != "busy,a,b" {
		t.Fatalf("published requests %q, want busy,a,b", published)
	}
	_, body := f.Gateway.HTTPGet(t, "/metrics")
	for _, metric := range []string{
		`fabric_gateway_requests_total{outcome="rate_limited",route="demo/echo"} 1`,
		"fabric_gateway_rate_limited_frames_total 4",
		`fabric_gateway_closes_total{code="4002"} 1`,
	} {
		if !strings.Contains(body, metric) {
			t.Errorf("no %q in the metrics", metric)
		}
	}
}

// TestMessageRateUnlimited: a negative MessageRate never refuses a frame,
// where the default (100/s, bursts of 200) refuses most of these.
func TestMessageRateUnlimited(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{MessageRate: -1})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	const n = 2000
	go func() {
		for range n {
			if ws.Conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"sys/ping"}`)) != nil {
				return
			}
		}
	}()
	for i := range n {
		if m := ws.Read(); m.Type != protocol.TypePong {
			t.Fatalf("frame %d: got %s, want sys/pong", i, dump([]protocol.Message{m}))
		}
	}
}

// dialStatus dials url and returns the HTTP status of the handshake's
// answer and its Retry-After, closing any connection made.
func dialStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{protocol.Subprotocol}, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(url, nil)
	if resp == nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	if c != nil {
		c.Close()
	}
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

func TestMaxConnections(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{MaxConnections: 2})
	first, _ := fabrictest.Hello(t, f.Gateway.URL)
	second, _ := fabrictest.Hello(t, f.Gateway.URL)
	if code, retry := dialStatus(t, f.Gateway.URL); code != http.StatusServiceUnavailable || retry != "5" {
		t.Fatalf("third connection: status %d, Retry-After %q; want 503, 5", code, retry)
	}
	// A connection ending makes room.
	first.Close()
	fabrictest.Eventually(t, 5*time.Second, func() bool {
		_, body := f.Gateway.HTTPGet(t, "/metrics")
		return strings.Contains(body, "fabric_gateway_connections 1\n")
	})
	third, _ := fabrictest.Hello(t, f.Gateway.URL)
	checkEvents(t, "x", third.Call("demo/echo", "x", 1), want{"demo/echo:response", "1"}, want{"demo/echo:finish", ""})
	checkEvents(t, "y", second.Call("demo/echo", "y", 2), want{"demo/echo:response", "2"}, want{"demo/echo:finish", ""})
	if _, body := f.Gateway.HTTPGet(t, "/metrics"); !strings.Contains(body, `fabric_gateway_refused_connections_total{reason="max_connections"} 1`) {
		t.Errorf("refusal not counted:\n%s", body)
	}
}

// TestConnectionRate: the bucket holds one connection and refills one per
// 1000 s, so the second upgrade is refused.
func TestConnectionRate(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{ConnectionRate: 0.001})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	if code, retry := dialStatus(t, f.Gateway.URL); code != http.StatusServiceUnavailable || retry != "1" {
		t.Fatalf("second connection: status %d, Retry-After %q; want 503, 1", code, retry)
	}
	checkEvents(t, "x", ws.Call("demo/echo", "x", 1), want{"demo/echo:response", "1"}, want{"demo/echo:finish", ""})
	if _, body := f.Gateway.HTTPGet(t, "/metrics"); !strings.Contains(body, `fabric_gateway_refused_connections_total{reason="connection_rate"} 1`) {
		t.Errorf("refusal not counted:\n%s", body)
	}
}

// TestCompressionNotNegotiated: a client offering permessage-deflate gets
// none, so MaxFrameBytes bounds what the gateway reads (a compressed frame
// is a protocol error: see TestMalformedFrames).
func TestCompressionNotNegotiated(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	d := websocket.Dialer{Subprotocols: []string{protocol.Subprotocol}, EnableCompression: true, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(f.Gateway.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("negotiated %q", ext)
	}
	ws := fabrictest.Wrap(t, c)
	ws.Hello(nil)
	payload := strings.Repeat("a", 64<<10) // would compress well
	msgs := ws.Call("demo/echo", "z", payload)
	if len(msgs) != 2 || compact(t, msgs[0].Payload) != fmt.Sprintf("%q", payload) {
		t.Fatalf("echo of a compressible payload: %d frames", len(msgs))
	}
}
