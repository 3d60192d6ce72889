package main

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/seed82ac63c1/fabric/internal/fabrictest"
)

var debugListeningRE = regexp.MustCompile(`"msg":"debug listener on[^"]*","addr":"([^"]+)"`)

// --debug-listen serves Go's profiles on a listener of its own, apart from
// the gateway's public one, which has none.
func TestDebugListen(t *testing.T) {
	ns := fabrictest.NATS(t)
	gw := fabrictest.StartProcess(t, nil, fabricBin, "gateway", "--nats", ns.ClientURL(), "--listen", "127.0.0.1:0", "--debug-listen", "127.0.0.1:0")
	debug := "http://" + gw.WaitOutput(debugListeningRE, 20*time.Second)
	public := "http://" + gw.WaitOutput(regexp.MustCompile(`"msg":"gateway listening","addr":"([^"]+)"`), 20*time.Second)

	code, body := get(t, debug+"/debug/pprof/goroutine?debug=1")
	if code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Fatalf("goroutine profile: %d %.200q", code, body)
	}
	if code, _ := get(t, debug+"/debug/pprof/heap?gc=1"); code != http.StatusOK {
		t.Fatalf("heap profile: %d", code)
	}
	if code, _ := get(t, public+"/debug/pprof/"); code != http.StatusNotFound {
		t.Fatalf("the public listener serves profiles: %d", code)
	}
}
