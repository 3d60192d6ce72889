package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
)

// MaxRequestDuration ends a request that keeps sending.
func TestMaxRequestDuration(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{MaxRequestDuration: 200 * time.Millisecond})
	ws, _ := fabrictest.Hello(t, f.Gateway.URL)
	msgs := ws.Call("demo/count", "long", map[string]int{"n": 100_000, "intervalMs": 5})
	last, errEv := msgs[len(msgs)-1], msgs[len(msgs)-2]
	if last.Type != "demo/count:finish" || errEv.Type != "demo/count:error" || !strings.Contains(string(errEv.Payload), `"code":"timeout"`) ||
		!strings.Contains(string(errEv.Payload), "ran longer than 200ms") || last.Seq != uint64(len(msgs)) {
		t.Fatalf("ended with %s", dump(msgs[len(msgs)-2:]))
	}
}

// A shutting-down gateway closes its clients one by one over DrainPeriod,
// not all at once.
func TestShutdownSpreadsCloses(t *testing.T) {
	ns := fabrictest.NATS(t)
	g := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gw"), gateway.Config{DrainPeriod: 800 * time.Millisecond})
	const clients = 4
	for range clients {
		fabrictest.Hello(t, g.URL)
	}
	waitMetric(t, g, fmt.Sprintf("fabric_gateway_connections %d", clients))
	done := make(chan error, 1)
	go func() { done <- g.Shutdown(context.Background()) }()
	seen := map[string]bool{}
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if !seen["fabric_gateway_connections 2"] && !seen["fabric_gateway_connections 3"] {
				t.Fatalf("never saw some clients closed and others not: %v", seen)
			}
			return
		default:
		}
		_, body := g.HTTPGet(t, "/metrics")
		for i := 1; i < clients; i++ {
			if line := fmt.Sprintf("fabric_gateway_connections %d", i); strings.Contains(body, line+"\n") {
				seen[line] = true
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// With NATS unreachable a request fails at once with a clear error, rather
// than waiting in nats.go's reconnect buffer for its timeout.
func TestNATSUnreachableFailsFast(t *testing.T) {
	ns := fabrictest.NATS(t)
	g := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gw"), gateway.Config{RequestTimeout: time.Minute})
	ws, _ := fabrictest.Hello(t, g.URL)
	ns.Shutdown()
	fabrictest.Eventually(t, 10*time.Second, func() bool { return !g.NATS().IsConnected() })
	msgs := ws.Call("demo/echo", "e1", 1)
	if len(msgs) != 2 || !strings.Contains(string(msgs[0].Payload), "message bus is unreachable") {
		t.Fatalf("got %s", dump(msgs))
	}
}
