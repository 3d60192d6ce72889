package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed82ac63c1/fabric/codegen"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
)

var fabricBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fabric-bin-")
	if err != nil {
		panic(err)
	}
	fabricBin, err = fabrictest.BuildFabric(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "build fabric:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var listeningRE = regexp.MustCompile(`"msg":"gateway listening","addr":"([^"]+)"`)

// call runs `fabric call` and returns its exit code and the events it
// printed.
func call(t *testing.T, url string, args ...string) (int, []protocol.Message) {
	t.Helper()
	p := fabrictest.StartProcess(t, nil, fabricBin, append([]string{"call"}, append(args, "--url", url)...)...)
	code := p.Wait(30 * time.Second)
	var msgs []protocol.Message
	for _, line := range strings.Split(strings.TrimSpace(p.Stdout()), "\n") {
		if line == "" {
			continue
		}
		var m protocol.Message
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("fabric call printed a line that is not JSON: %q", line)
		}
		msgs = append(msgs, m)
	}
	return code, msgs
}

func eventTypes(msgs []protocol.Message) string {
	var b []string
	for _, m := range msgs {
		b = append(b, fmt.Sprintf("%s#%d", m.Type, m.Seq))
	}
	return strings.Join(b, " ")
}

// TestSeparateProcesses runs `fabric gateway` and `fabric worker --demo` as
// processes against a NATS server, calls through them with `fabric call`,
// and stops both with SIGTERM.
func TestSeparateProcesses(t *testing.T) {
	ns := fabrictest.NATS(t)
	gw := fabrictest.StartProcess(t, []string{"FABRIC_REQUEST_TIMEOUT=1s"}, fabricBin,
		"gateway", "--listen", "127.0.0.1:0", "--nats", ns.ClientURL())
	addr := gw.WaitOutput(listeningRE, 20*time.Second)
	url := "ws://" + addr + "/ws"
	// The worker takes its NATS URL from the environment.
	worker := fabrictest.StartProcess(t, []string{"FABRIC_NATS=" + ns.ClientURL()}, fabricBin, "worker", "--demo")
	worker.WaitOutput(regexp.MustCompile(`worker serving`), 20*time.Second)

	code, msgs := call(t, url, "demo/count", `{"n":3}`)
	if want := "demo/count:progress#1 demo/count:progress#2 demo/count:progress#3 demo/count:response#4 demo/count:finish#5"; code != 0 || eventTypes(msgs) != want {
		t.Fatalf("exit %d, events %s; want %s", code, eventTypes(msgs), want)
	}
	if code, msgs := call(t, url, "demo/fail", `{"code":"nope","message":"m"}`); code != 1 || eventTypes(msgs) != "demo/fail:error#1 demo/fail:finish#2" {
		t.Fatalf("fail: exit %d, events %s", code, eventTypes(msgs))
	}
	// FABRIC_REQUEST_TIMEOUT reached the gateway.
	if code, msgs := call(t, url, "demo/silent"); code != 1 || len(msgs) != 2 || !strings.Contains(string(msgs[0].Payload), `"timeout"`) {
		t.Fatalf("silent: exit %d, events %s", code, eventTypes(msgs))
	}

	// A worker SIGTERMed mid-request finishes it before exiting.
	streaming := fabrictest.StartProcess(t, nil, fabricBin, "call", "demo/count", `{"n":5,"intervalMs":150}`, "--url", url)
	streaming.WaitOutput(regexp.MustCompile(`"seq":1`), 20*time.Second)
	worker.Signal(syscall.SIGTERM)
	if code := streaming.Wait(20 * time.Second); code != 0 || strings.Count(streaming.Stdout(), "\n") != 7 ||
		!strings.Contains(streaming.Stdout(), `"type":"demo/count:response","id"`) {
		t.Fatalf("count across worker SIGTERM: exit %d\n%s", code, streaming.Stdout())
	}
	if code := worker.Wait(20 * time.Second); code != 0 {
		t.Fatalf("worker exit %d", code)
	}
	// With no worker left: no_responders, at once.
	if code, msgs := call(t, url, "demo/echo", `1`); code != 1 || !strings.Contains(string(msgs[0].Payload), "no_responders") {
		t.Fatalf("no worker: exit %d, events %s", code, eventTypes(msgs))
	}
	if body := httpGet(t, "http://"+addr+"/healthz"); !strings.Contains(body, "ok") {
		t.Fatalf("healthz: %q", body)
	}
	gw.Signal(syscall.SIGTERM)
	if code := gw.Wait(20 * time.Second); code != 0 {
		t.Fatalf("gateway exit %d", code)
	}
}

// TestAgentPools runs the multi-agent demo as a cluster would: each group
// of agents in its own worker process, found by the orchestrator over NATS.
func TestAgentPools(t *testing.T) {
	ns := fabrictest.NATS(t)
	gw := fabrictest.StartProcess(t, nil, fabricBin, "gateway", "--listen", "127.0.0.1:0", "--nats", ns.ClientURL())
	url := "ws://" + gw.WaitOutput(listeningRE, 20*time.Second) + "/ws"
	for _, routes := range []string{"agent/ask", "agent/plan,agent/sql", "agent/analyze,agent/chart"} {
		w := fabrictest.StartProcess(t, []string{"FABRIC_AGENT_PACE=0"}, fabricBin,
			"worker", "--agents", "--agent-routes", routes, "--nats", ns.ClientURL())
		w.WaitOutput(regexp.MustCompile(`worker serving`), 20*time.Second)
	}
	code, msgs := call(t, url, "agent/ask", `{"question":"top 3 products by revenue in 2024"}`)
	if code != 0 || len(msgs) < 2 || msgs[len(msgs)-2].Type != "agent/ask:response" {
		t.Fatalf("exit %d, events %s", code, eventTypes(msgs))
	}
	var ans struct {
		Table struct{ Labels []string }
	}
	if err := json.Unmarshal(msgs[len(msgs)-2].Payload, &ans); err != nil || len(ans.Table.Labels) != 3 {
		t.Fatalf("answer %s: %v", msgs[len(msgs)-2].Payload, err)
	}
	// An unknown agent is refused at start.
	bad := fabrictest.StartProcess(t, nil, fabricBin, "worker", "--agents", "--agent-routes", "agent/poet", "--nats", ns.ClientURL())
	if code := bad.Wait(20 * time.Second); code == 0 || !strings.Contains(bad.Stderr(), `unknown route "agent/poet"`) {
		t.Fatalf("worker with an unknown agent: exit %d, %s", code, bad.Stderr())
	}
}

// TestDev runs `fabric dev` and speaks the wire protocol to it by hand.
func TestDev(t *testing.T) {
	dev := fabrictest.StartProcess(t, nil, fabricBin, "dev", "--listen", "127.0.0.1:0")
	url := dev.WaitOutput(regexp.MustCompile(`gateway listening on (ws://\S+)`), 30*time.Second)
	ws, w := fabrictest.Hello(t, url)
	if w.SessionID == "" || w.Resumed {
		t.Fatalf("welcome %+v", w)
	}
	msgs := ws.Call("demo/count", "m1", map[string]int{"n": 3})
	if got := eventTypes(msgs); got != "demo/count:progress#1 demo/count:progress#2 demo/count:progress#3 demo/count:response#4 demo/count:finish#5" {
		t.Fatalf("got %s", got)
	}
	dev.Signal(syscall.SIGINT)
	if code := ws.CloseCode(); code != int(protocol.CloseGoingAway) {
		t.Fatalf("close code on Ctrl-C: %d", code)
	}
	if code := dev.Wait(30 * time.Second); code != 0 {
		t.Fatalf("fabric dev exit %d", code)
	}
}

func TestCallUsage(t *testing.T) {
	p := fabrictest.StartProcess(t, nil, fabricBin, "call")
	if code := p.Wait(10 * time.Second); code != 2 || !strings.Contains(p.Stderr(), "Usage: fabric call TYPE") {
		t.Fatalf("exit %d, stderr %q", code, p.Stderr())
	}
	p = fabrictest.StartProcess(t, nil, fabricBin, "call", "demo/echo", "{not json")
	if code := p.Wait(10 * time.Second); code != 1 || !strings.Contains(p.Stderr(), "not valid JSON") {
		t.Fatalf("exit %d, stderr %q", code, p.Stderr())
	}
}

func TestEnvName(t *testing.T) {
	for flag, env := range map[string]string{"nats": "FABRIC_NATS", "request-timeout": "FABRIC_REQUEST_TIMEOUT"} {
		if got := envName(flag); got != env {
			t.Errorf("envName(%q) = %q, want %q", flag, got, env)
		}
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestGeneratedTSCodesUpToDate fails when the TypeScript catalogue no longer
// matches protocol/codes.go: run `make gen`.
func TestGeneratedTSCodesUpToDate(t *testing.T) {
	committed, err := os.ReadFile("../../" + tsCodesFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(committed) != string(tsCodes()) {
		t.Fatalf("%s is stale: run `make gen`", tsCodesFile)
	}
}

// TestGeneratedTSRoutesUpToDate fails when the TypeScript route map no
// longer matches the Go demo route declarations: run `make gen`.
func TestGeneratedTSRoutesUpToDate(t *testing.T) {
	committed, err := os.ReadFile("../../" + tsRoutesFile)
	if err != nil {
		t.Fatal(err)
	}
	src, err := codegen.TypeScript("Demo", demoRoutes())
	if err != nil {
		t.Fatal(err)
	}
	if string(committed) != string(src) {
		t.Fatalf("%s is stale: run `make gen`", tsRoutesFile)
	}
}

// TestGeneratedAsyncAPIUpToDate fails when the AsyncAPI document no longer
// matches the Go demo route declarations or the generator: run `make gen`.
// `make asyncapi-check` validates the document with the official parser.
func TestGeneratedAsyncAPIUpToDate(t *testing.T) {
	committed, err := os.ReadFile("../../" + asyncAPIFile)
	if err != nil {
		t.Fatal(err)
	}
	src, err := codegen.AsyncAPI(asyncAPITitle, asyncAPIPrefix, demoRoutes())
	if err != nil {
		t.Fatal(err)
	}
	if string(committed) != string(src) {
		t.Fatalf("%s is stale: run `make gen`", asyncAPIFile)
	}
}
