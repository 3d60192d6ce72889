package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/internal/inspector"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers"
)

// inspected fetches the inspector's requests.
func inspected(t *testing.T, base, query string) []inspector.Request {
	t.Helper()
	resp, err := http.Get(base + "/inspector/api/requests?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b struct {
		Requests  []inspector.Request `json:"requests"`
		JaegerURL string              `json:"jaegerUrl"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatal(err)
	}
	return b.Requests
}

// waitInspected waits until the inspector has request id finished.
func waitInspected(t *testing.T, base, id string) inspector.Request {
	t.Helper()
	var got []inspector.Request
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if got = inspected(t, base, "id="+id); len(got) == 1 && got[0].End != nil {
			return got[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("request %s: %+v", id, got)
	return inspector.Request{}
}

// TestDevInspector: `fabric dev` serves the inspector, which sees the
// demo's requests and leaves no_responders alone for other routes.
func TestDevInspector(t *testing.T) {
	dev := fabrictest.StartProcess(t, nil, fabricBin, "dev", "--listen", "127.0.0.1:0", "--jaeger-url", "http://jaeger.example:16686")
	base := strings.TrimSuffix(dev.WaitOutput(regexp.MustCompile(`the request inspector is at (http://\S+)`), 30*time.Second), "/inspector")
	url := dev.WaitOutput(regexp.MustCompile(`gateway listening on (ws://\S+)`), 30*time.Second)
	if page := httpGet(t, base+"/inspector"); !strings.Contains(page, "request inspector") {
		t.Fatalf("/inspector: %q", page)
	}
	if page := httpGet(t, base+"/"); !strings.Contains(page, "multi-agent demo") {
		t.Fatalf("/ is no longer the demo: %q", page)
	}
	ws, _ := fabrictest.Hello(t, url)
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	ws.Send(map[string]any{"type": "demo/count", "id": "c1", "payload": map[string]int{"n": 1}, "traceparent": "00-" + traceID + "-b7ad6b7169203331-01"})
	ws.Collect("c1")
	r := waitInspected(t, base, "c1")
	if r.Route != "demo/count" || !r.Seen || r.State != inspector.StateFinished || len(r.Events) != 3 ||
		r.TraceURL != "http://jaeger.example:16686/trace/"+traceID {
		t.Errorf("c1 %+v", r)
	}
	// The inspector watches the served routes' requests only: another
	// route still fails at once.
	msgs := ws.Call("nobody/home", "n1", nil)
	if len(msgs) != 2 || !strings.Contains(string(msgs[0].Payload), string(protocol.CodeNoResponders)) {
		t.Fatalf("nobody/home: %+v", msgs)
	}
	if r := waitInspected(t, base, "n1"); r.Seen || r.Code != string(protocol.CodeNoResponders) {
		t.Errorf("n1 %+v", r)
	}

	// An open event stream does not hold up the shutdown.
	resp, err := http.Get(base + "/inspector/api/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dev.Signal(syscall.SIGINT)
	if code := dev.Wait(30 * time.Second); code != 0 {
		t.Fatalf("fabric dev exit %d", code)
	}
}

// TestGatewayInspector: `fabric gateway --inspector` serves the inspector,
// which learns of requests from their events; without the flag there is
// none.
func TestGatewayInspector(t *testing.T) {
	ns := fabrictest.NATS(t)
	gw := fabrictest.StartProcess(t, nil, fabricBin, "gateway", "--listen", "127.0.0.1:0", "--nats", ns.ClientURL(), "--inspector")
	addr := gw.WaitOutput(listeningRE, 20*time.Second)
	plain := fabrictest.StartProcess(t, nil, fabricBin, "gateway", "--listen", "127.0.0.1:0", "--nats", ns.ClientURL())
	plainAddr := plain.WaitOutput(listeningRE, 20*time.Second)
	fabrictest.StartDemoWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{})

	ws, _ := fabrictest.Hello(t, "ws://"+addr+"/ws")
	ws.Call("demo/echo", "e1", 1)
	if r := waitInspected(t, "http://"+addr, "e1"); r.Seen || r.Route != "demo/echo" || r.State != inspector.StateFinished {
		t.Errorf("e1 %+v", r)
	}
	if msgs := ws.Call("nobody/home", "n1", nil); !strings.Contains(string(msgs[0].Payload), string(protocol.CodeNoResponders)) {
		t.Fatalf("nobody/home: %+v", msgs)
	}
	// Requests through the other gateway too: the inspector sees the fabric.
	other, _ := fabrictest.Hello(t, "ws://"+plainAddr+"/ws")
	other.Call("demo/echo", "e2", 2)
	waitInspected(t, "http://"+addr, "e2")

	resp, err := http.Get("http://" + plainAddr + "/inspector")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a gateway without --inspector: /inspector status %d", resp.StatusCode)
	}
	gw.Signal(syscall.SIGTERM)
	if code := gw.Wait(20 * time.Second); code != 0 {
		t.Fatalf("gateway exit %d", code)
	}
}
