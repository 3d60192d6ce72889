// Package fabrictest starts real fabrics for tests: an embedded NATS server
// on a random port, gateways on real sockets, demo workers. Everything it
// starts is stopped by t.Cleanup.
package fabrictest

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/embeddednats"
	"github.com/seed82ac63c1/fabric/workers"
	"github.com/seed82ac63c1/fabric/workers/demo"
)

// NATS starts an embedded NATS server with JetStream in t.TempDir().
func NATS(t testing.TB) *server.Server {
	t.Helper()
	s, err := embeddednats.Start(embeddednats.Config{JetStream: true, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// Connect opens a NATS connection to s, closed at cleanup.
func Connect(t testing.TB, s *server.Server, name string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Logger returns a logger for tests. Its lines at Info and above are kept
// in memory, the last logTail bytes of them, and printed with t.Log only if
// the test fails: a failure in CI comes with what the fabric said. With
// FABRIC_TEST_LOG=1 every line, Debug included, goes to stderr as it is
// written.
func Logger(t testing.TB) *slog.Logger {
	if os.Getenv("FABRIC_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	b := &tailBuffer{max: logTail}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the fabric's log (Info and above, last %d bytes):\n%s", logTail, b.String())
		}
	})
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// logTail is how much of a test's log Logger keeps.
const logTail = 32 << 10

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	if over := len(b.b) - b.max; over > 0 {
		b.b = append(b.b[:0], b.b[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}

// Gateway is a gateway served on a real loopback socket.
type Gateway struct {
	*gateway.Gateway
	Server *httptest.Server
	URL    string // ws://127.0.0.1:port/ws
	nc     *nats.Conn
}

// NATS returns the gateway's NATS connection.
func (g *Gateway) NATS() *nats.Conn { return g.nc }

// StartGateway starts a gateway on nc; cfg's zero fields take defaults,
// except HandoffTimeout and DrainPeriod: tests that want a shutdown to wait
// for session handoff, or to spread its closes, set them.
func StartGateway(t testing.TB, nc *nats.Conn, cfg gateway.Config, opts ...gateway.Option) *Gateway {
	t.Helper()
	if cfg.HandoffTimeout == 0 {
		cfg.HandoffTimeout = -1
	}
	if cfg.DrainPeriod == 0 {
		cfg.DrainPeriod = -1
	}
	g, err := gateway.New(nc, cfg, append([]gateway.Option{gateway.WithLogger(Logger(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g.Handler())
	srv.Config.ReadHeaderTimeout = 5 * time.Second
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
		srv.Close()
	})
	return &Gateway{Gateway: g, Server: srv, URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws", nc: nc}
}

// StartWorker starts a worker on nc whose routes register adds, and shuts
// it down at cleanup.
func StartWorker(t testing.TB, nc *nats.Conn, cfg workers.Config, register func(*workers.Worker) error, opts ...workers.Option) *workers.Worker {
	t.Helper()
	w, err := workers.New(nc, cfg, append([]workers.Option{workers.WithLogger(Logger(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := register(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Shutdown(ctx)
	})
	return w
}

// StartDemoWorker starts a worker serving the demo routes on nc.
func StartDemoWorker(t testing.TB, nc *nats.Conn, cfg workers.Config, opts ...workers.Option) *workers.Worker {
	t.Helper()
	return StartWorker(t, nc, cfg, demo.Register, opts...)
}

// Fabric is a running fabric: NATS, one gateway, one demo worker.
type Fabric struct {
	NATS    *server.Server
	Gateway *Gateway
	Worker  *workers.Worker
}

// Start starts a fabric with the given gateway config.
func Start(t testing.TB, cfg gateway.Config) *Fabric {
	t.Helper()
	ns := NATS(t)
	gw := StartGateway(t, Connect(t, ns, "gateway"), cfg)
	w := StartDemoWorker(t, Connect(t, ns, "worker"), workers.Config{})
	return &Fabric{NATS: ns, Gateway: gw, Worker: w}
}

// HTTPGet fetches path from the gateway and returns status and body.
func (g *Gateway) HTTPGet(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(g.Server.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, sb.String()
}

// Eventually polls cond every 10ms until it holds, failing the test after d.
func Eventually(t testing.TB, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
