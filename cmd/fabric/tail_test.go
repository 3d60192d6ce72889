package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/internal/tail"
)

var watchingRE = regexp.MustCompile(`fabric tail: watching`)

// startTail runs `fabric tail` against ns's URL and waits until it
// watches.
func startTail(t *testing.T, natsURL string, args ...string) *fabrictest.Process {
	t.Helper()
	p := fabrictest.StartProcess(t, nil, fabricBin, append([]string{"tail", "--nats", natsURL}, args...)...)
	p.WaitOutput(watchingRE, 20*time.Second)
	return p
}

// stop interrupts p as Ctrl-C would and returns its stdout's lines.
func stop(t *testing.T, p *fabrictest.Process) []string {
	t.Helper()
	p.Signal(syscall.SIGINT)
	if code := p.Wait(20 * time.Second); code != 0 {
		t.Fatalf("fabric tail exit %d\n%s", code, p.Stderr())
	}
	return strings.Split(strings.TrimSpace(p.Stdout()), "\n")
}

// TestTailJSON runs `fabric tail --json` beside a real gateway and demo
// worker: each record is a JSON line, in order, with its fields.
func TestTailJSON(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	p := startTail(t, f.NATS.ClientURL(), "--json", "--payload-bytes", "4")
	if !strings.Contains(p.Stderr(), "no_responders") {
		t.Errorf("no word of no_responders on stderr: %q", p.Stderr())
	}
	ws, welcome := fabrictest.Hello(t, f.Gateway.URL)
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	ws.Send(map[string]any{"type": "demo/count", "id": "j1", "payload": map[string]int{"n": 2}, "traceparent": "00-" + traceID + "-b7ad6b7169203331-01"})
	ws.Collect("j1")
	p.WaitOutput(regexp.MustCompile(`"suffix":"finish"`), 20*time.Second)

	var recs []tail.Record
	for _, line := range stop(t, p) {
		var r tail.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("a line that is not JSON: %q", line)
		}
		recs = append(recs, r)
	}
	var got []string
	for _, r := range recs {
		got = append(got, fmt.Sprintf("%s %s:%s#%d", r.Kind, r.Route, r.Suffix, r.Seq))
		if r.Session != welcome.SessionID || r.ID != "j1" || r.TraceID != traceID || r.Time.IsZero() {
			t.Errorf("record %+v", r)
		}
	}
	if want := "request demo/count:#0 event demo/count:progress#1 event demo/count:progress#2 event demo/count:response#3 event demo/count:finish#4"; strings.Join(got, " ") != want {
		t.Fatalf("records %s\nwant    %s", strings.Join(got, " "), want)
	}
	if r := recs[0]; r.Payload != `{"n"` || !r.Truncated || r.Size != 7 {
		t.Errorf("request preview %+v", r)
	}
	if r := recs[1]; r.Origin != "worker" || r.Payload != `{"i"` || r.Size != 7 {
		t.Errorf("progress %+v", r)
	}
}

// TestTailLines runs `fabric tail` with filters and its human output.
func TestTailLines(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	errs := startTail(t, f.NATS.ClientURL(), "--errors", "--route", "demo/fail")
	session := startTail(t, f.NATS.ClientURL(), "--requests=false", "--payload-bytes", "0")
	if strings.Contains(session.Stderr(), "no_responders") || strings.Contains(session.Stderr(), ".req.") {
		t.Errorf("--requests=false still watches requests: %q", session.Stderr())
	}
	ws, welcome := fabrictest.Hello(t, f.Gateway.URL)
	ws.Call("demo/echo", "e1", "hello")
	ws.Call("demo/fail", "f1", map[string]string{"code": "nope", "message": "no"})
	errs.WaitOutput(regexp.MustCompile(`demo/fail:error`), 20*time.Second)
	session.WaitOutput(regexp.MustCompile(`demo/fail:finish`), 20*time.Second)

	short := welcome.SessionID[:tail.ShortSession]
	lines := stop(t, errs)
	if len(lines) != 2 ||
		!regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3}  `+short+`  f1 +→ demo/fail +- +- +\{"code":"nope","message":"no"\}$`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3}  `+short+`  f1 +demo/fail:error +#1 +- +\{"code":"nope","message":"no"\}$`).MatchString(lines[1]) {
		t.Errorf("--errors --route demo/fail printed:\n%s", strings.Join(lines, "\n"))
	}
	lines = stop(t, session)
	want := []string{"demo/echo:response", "demo/echo:finish", "demo/fail:error", "demo/fail:finish"}
	if len(lines) != len(want) {
		t.Fatalf("--requests=false printed:\n%s", strings.Join(lines, "\n"))
	}
	for i, line := range lines {
		if !strings.Contains(line, "  "+want[i]+" ") || strings.Contains(line, "{") || strings.Contains(line, "→") {
			t.Errorf("line %d: %q, want %s without payload", i, line, want[i])
		}
	}
}

func TestTailUsage(t *testing.T) {
	p := fabrictest.StartProcess(t, nil, fabricBin, "tail", "extra")
	if code := p.Wait(10 * time.Second); code != 2 || !strings.Contains(p.Stderr(), "Usage: fabric tail") || !strings.Contains(p.Stderr(), "-payload-bytes") {
		t.Fatalf("exit %d, stderr %q", code, p.Stderr())
	}
	p = fabrictest.StartProcess(t, nil, fabricBin, "tail", "--route", "a.b", "--nats", fabrictest.NATS(t).ClientURL())
	if code := p.Wait(10 * time.Second); code != 1 || !strings.Contains(p.Stderr(), "invalid typeName") {
		t.Fatalf("bad route: exit %d, stderr %q", code, p.Stderr())
	}
}
