package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed82ac63c1/fabric/internal/topology"
	"github.com/seed82ac63c1/fabric/protocol"
)

// Gateway is a `fabric gateway` process. It listens on a random port, a new
// one after each restart.
type Gateway struct {
	*Process
	Index int

	// Guarded by Process.mu.
	addr     string    // host:port of the current run
	baseline Resources // what the current run holds at rest
}

// URL returns the WebSocket URL of the gateway's current run.
func (g *Gateway) URL() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return "ws://" + g.addr + "/ws"
}

// HTTPURL returns the base http:// URL of the gateway's current run.
func (g *Gateway) HTTPURL() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return "http://" + g.addr
}

// Baseline returns what the gateway's current run held at rest after its
// first request, the reference of [Cluster.CheckResources].
func (g *Gateway) Baseline() Resources {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.baseline
}

// awaitReady waits until a fresh run listens, warms it up so that what it
// makes on first use exists, and records its baseline.
func (g *Gateway) awaitReady() error {
	addr, err := g.waitOutput(gatewayReadyRE)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.addr = addr
	g.mu.Unlock()
	if err := warmUp(g.URL()); err != nil {
		return fmt.Errorf("warm-up request: %w", err)
	}
	var base Resources
	deadline := time.Now().Add(readyTimeout)
	for {
		if base, err = g.Resources(); err == nil && base.Connections == 0 && base.Sessions == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the warm-up session did not end: %+v, %v", base, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The lowest of a few samples: the process at rest.
	for range 3 {
		time.Sleep(20 * time.Millisecond)
		if r, err := g.Resources(); err == nil {
			base.Goroutines = min(base.Goroutines, r.Goroutines)
			base.FDs = min(base.FDs, r.FDs)
		}
	}
	g.mu.Lock()
	g.baseline = base
	g.mu.Unlock()
	return nil
}

// warmUp makes on url what a gateway creates on first use: a session with
// one demo/echo request (whatever its outcome: there may be no worker),
// ended normally, then a resume of that ended session, which asks the other
// gateways for it over NATS.
func warmUp(url string) error {
	w, err := warmUpSession(url, nil)
	if err != nil {
		return err
	}
	_, err = warmUpSession(url, &protocol.Resume{SessionID: w.SessionID, ResumeToken: w.ResumeToken})
	return err
}

func warmUpSession(url string, resume *protocol.Resume) (protocol.Welcome, error) {
	var w protocol.Welcome
	d := websocket.Dialer{Subprotocols: []string{protocol.Subprotocol}, HandshakeTimeout: dialTimeout}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		return w, err
	}
	resp.Body.Close()
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(readyTimeout))
	hello := map[string]any{"type": protocol.TypeHello, "payload": protocol.Hello{Resume: resume}}
	echo := map[string]any{"type": "demo/echo", "id": "warm-up", "payload": "hi"}
	for _, f := range []map[string]any{hello, echo} {
		if err := ws.WriteJSON(f); err != nil {
			return w, err
		}
	}
	for {
		var m protocol.Message
		if err := ws.ReadJSON(&m); err != nil {
			return w, err
		}
		if m.Type == protocol.TypeWelcome {
			if err := m.Decode(&w); err != nil {
				return w, err
			}
		}
		if m.ID == "warm-up" && m.Suffix() == protocol.SuffixFinish {
			break
		}
	}
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(writeTimeout))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code == websocket.CloseNormalClosure {
				return w, nil
			}
			return w, fmt.Errorf("closing: %w", err)
		}
	}
}

// Resources is what a gateway process holds, from its /metrics.
type Resources struct {
	Goroutines  int // go_goroutines
	FDs         int // process_open_fds
	Connections int // fabric_gateway_connections
	Sessions    int // fabric_gateway_sessions
}

// Resources scrapes the gateway's /metrics.
func (g *Gateway) Resources() (Resources, error) {
	m, err := g.Metrics()
	if err != nil {
		return Resources{}, err
	}
	return Resources{
		Goroutines:  int(m["go_goroutines"]),
		FDs:         int(m["process_open_fds"]),
		Connections: int(m["fabric_gateway_connections"]),
		Sessions:    int(m["fabric_gateway_sessions"]),
	}, nil
}

// Metrics scrapes the gateway's /metrics and returns each sample by its
// name and labels as exposed (`fabric_gateway_requests_total{outcome="ok",route="demo/echo"}`).
func (g *Gateway) Metrics() (map[string]float64, error) {
	resp, err := topology.MonitorClient.Get(g.HTTPURL() + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s /metrics: %s", g.Name, resp.Status)
	}
	m := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// The slack allowed over a gateway's baseline: what its own runtime may hold
// for a moment (a timer's goroutine, a closing socket).
const (
	goroutineSlack = 3
	fdSlack        = 2
)

// CheckResources waits until every running gateway is back to its baseline:
// no connection, no session, and goroutines and open file descriptors
// within a small slack of what it held at rest after its start. Call it
// once every client is gone; sessions of dropped clients end after the
// session retention.
func (c *Cluster) CheckResources(t testing.TB) {
	t.Helper()
	for _, g := range c.Gateways {
		if !g.Running() || g.Stopped() {
			continue
		}
		base := g.Baseline()
		deadline := time.Now().Add(c.opts.SessionRetention + 15*time.Second)
		for {
			r, err := g.Resources()
			if err == nil && r.Connections == 0 && r.Sessions == 0 &&
				r.Goroutines <= base.Goroutines+goroutineSlack && r.FDs <= base.FDs+fdSlack {
				t.Logf("%s back to its baseline: %d goroutines (%d at rest), %d fds (%d)",
					g.Name, r.Goroutines, base.Goroutines, r.FDs, base.FDs)
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s not back to its baseline: holds %+v (err %v), baseline %+v (slack: %d goroutines, %d fds)",
					g.Name, r, err, base, goroutineSlack, fdSlack)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
