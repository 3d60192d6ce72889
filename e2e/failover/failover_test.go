package failover

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers"
)

var fabricBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fabric-failover-")
	if err != nil {
		panic(err)
	}
	if fabricBin, err = fabrictest.BuildFabric(dir); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Each client streams demo/count with these params: long enough that the
// kill lands mid-stream. 1,000 clients make 10,000 events/s.
const (
	countN        = 40
	countInterval = 100 // ms: a stream lasts 4 s
)

var listeningRE = regexp.MustCompile(`"msg":"gateway listening","addr":"([^"]+)"`)

// result is what one client saw.
type result struct {
	affected  bool          // its gateway was killed
	reconnect time.Duration // kill → the new welcome
	resume    time.Duration // kill → the first event after the re-send
	events    int           // events received, :finish included
	lost, dup int
	err       error
}

// run starts the fabric, streams with clients clients spread over two
// gateways, SIGKILLs the first gateway once every stream is under way, and
// returns what each client saw.
func run(t testing.TB, clients int) []result {
	ns := fabrictest.NATS(t)
	fabrictest.StartDemoWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{MaxConcurrent: 2 * clients})
	var urls [2]string
	var gws [2]*fabrictest.Process
	for i := range gws {
		gws[i] = fabrictest.StartProcess(t, nil, fabricBin, "gateway", "--listen", "127.0.0.1:0", "--nats", ns.ClientURL(),
			"--durable", "--durable-storage", "memory", "--resume-secret", "failover-secret", "--id", fmt.Sprintf("gw%d", i))
		urls[i] = "ws://" + gws[i].WaitOutput(listeningRE, 30*time.Second) + "/ws"
	}
	var (
		wg      sync.WaitGroup
		started sync.WaitGroup
		killed  atomic.Int64 // when the gateway was killed, in UnixNano
		results = make([]result, clients)
	)
	started.Add(clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = stream(urls[i%2], urls[1], i%2 == 0, fmt.Sprintf("c%d", i), &started, &killed)
		}()
	}
	started.Wait()
	time.Sleep(300 * time.Millisecond) // every stream has events in flight
	killed.Store(time.Now().UnixNano())
	gws[0].Signal(syscall.SIGKILL)
	wg.Wait()
	return results
}

// stream is one client: it streams demo/count on url; if its connection
// drops it resumes on other and re-sends with after.
func stream(url, other string, willDrop bool, id string, started *sync.WaitGroup, killed *atomic.Int64) result {
	var r result
	ws, w, err := hello(url, nil)
	if err != nil {
		started.Done()
		r.err = err
		return r
	}
	defer func() { ws.Close() }()
	params := map[string]int{"n": countN, "intervalMs": countInterval}
	if err := ws.WriteJSON(map[string]any{"type": "demo/count", "id": id, "payload": params}); err != nil {
		started.Done()
		r.err = err
		return r
	}
	started.Done()
	var last uint64
	seen := map[uint64]bool{}
	for {
		_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		var m protocol.Message
		_, data, err := ws.ReadMessage()
		if err == nil {
			err = json.Unmarshal(data, &m)
		}
		if err != nil {
			if r.affected || !willDrop {
				r.err = fmt.Errorf("%s: read after %d events: %w", id, r.events, err)
				return r
			}
			// The gateway is gone: resume on the other, at once.
			r.affected = true
			at := time.Unix(0, killed.Load())
			ws.Close()
			for attempt := 0; ; attempt++ {
				ws, w, err = hello(other, &protocol.Resume{SessionID: w.SessionID, ResumeToken: w.ResumeToken})
				if err == nil {
					break
				}
				if attempt == 50 {
					r.err = fmt.Errorf("%s: resume: %w", id, err)
					return r
				}
				time.Sleep(20 * time.Millisecond)
			}
			r.reconnect = time.Since(at)
			if !w.Resumed {
				r.err = fmt.Errorf("%s: not resumed", id)
				return r
			}
			if err := ws.WriteJSON(map[string]any{"type": "demo/count", "id": id, "payload": params, "after": last}); err != nil {
				r.err = err
				return r
			}
			continue
		}
		if m.ID != id {
			continue
		}
		if r.affected && r.resume == 0 {
			r.resume = time.Since(time.Unix(0, killed.Load()))
		}
		r.events++
		switch {
		case seen[m.Seq]:
			r.dup++
		case m.Seq != last+1:
			r.lost += int(m.Seq - last - 1)
		}
		seen[m.Seq] = true
		last = max(last, m.Seq)
		if m.Type == "demo/count:finish" {
			r.lost += countN + 2 - len(seen)
			return r
		}
	}
}

func hello(url string, resume *protocol.Resume) (*websocket.Conn, protocol.Welcome, error) {
	var w protocol.Welcome
	d := websocket.Dialer{Subprotocols: []string{protocol.Subprotocol}, HandshakeTimeout: 5 * time.Second}
	ws, resp, err := d.Dial(url, http.Header{})
	if err != nil {
		return nil, w, err
	}
	resp.Body.Close()
	if err := ws.WriteJSON(map[string]any{"type": "sys/hello", "payload": protocol.Hello{Resume: resume}}); err != nil {
		ws.Close()
		return nil, w, err
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m protocol.Message
	if err := ws.ReadJSON(&m); err != nil {
		ws.Close()
		return nil, w, err
	}
	if m.Type != protocol.TypeWelcome {
		ws.Close()
		return nil, w, errors.New("no welcome: " + m.Type)
	}
	err = json.Unmarshal(m.Payload, &w)
	return ws, w, err
}

func TestFailoverLosesNothing(t *testing.T) {
	results := run(t, 20)
	affected := 0
	for _, r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.lost != 0 || r.dup != 0 || r.events != countN+2 {
			t.Fatalf("a client got %d events, %d lost, %d duplicated", r.events, r.lost, r.dup)
		}
		if r.affected {
			affected++
		}
	}
	if affected != 10 {
		t.Fatalf("%d clients moved gateway, want 10", affected)
	}
}

func BenchmarkFailover(b *testing.B) {
	const clients = 1000
	for b.Loop() {
		results := run(b, clients)
		var reconnect, resume []time.Duration
		lost, dup, failed := 0, 0, 0
		for _, r := range results {
			if r.err != nil {
				failed++
				b.Log(r.err)
				continue
			}
			lost += r.lost
			dup += r.dup
			if r.affected {
				reconnect = append(reconnect, r.reconnect)
				resume = append(resume, r.resume)
			}
		}
		slices.Sort(reconnect)
		slices.Sort(resume)
		pct := func(ds []time.Duration, p float64) float64 {
			if len(ds) == 0 {
				return 0
			}
			return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000
		}
		b.ReportMetric(float64(len(reconnect)), "moved")
		b.ReportMetric(pct(reconnect, 0.5), "reconnect-p50-ms")
		b.ReportMetric(pct(reconnect, 0.99), "reconnect-p99-ms")
		b.ReportMetric(pct(resume, 0.5), "resume-p50-ms")
		b.ReportMetric(pct(resume, 0.99), "resume-p99-ms")
		b.ReportMetric(float64(lost), "lost")
		b.ReportMetric(float64(dup), "dup")
		b.ReportMetric(float64(failed), "failed")
	}
}
