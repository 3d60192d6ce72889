package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/seed82ac63c1/fabric/client"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/internal/topology"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers/demo"
)

// clusterRow is one line of `fabric cluster`'s table.
type clusterRow struct {
	pid          int
	url, metrics string
}

var (
	clusterReadyRE = regexp.MustCompile(`fabric cluster: ready`)
	clusterRowRE   = regexp.MustCompile(`(?m)^(\S+)\s+(\d+)\s+(\S+)\s+(\S+)`)
)

// startCluster runs `fabric cluster` with args and TMPDIR in a directory of
// the test, and returns it with its table by name once it is ready.
func startCluster(t *testing.T, tmp string, args ...string) (*fabrictest.Process, map[string]clusterRow) {
	t.Helper()
	p := fabrictest.StartProcess(t, []string{"TMPDIR=" + tmp}, fabricBin, append([]string{"cluster"}, args...)...)
	p.WaitOutput(clusterReadyRE, 60*time.Second)
	rows := make(map[string]clusterRow)
	for _, m := range clusterRowRE.FindAllStringSubmatch(p.Stdout(), -1) {
		pid, _ := strconv.Atoi(m[2])
		rows[m[1]] = clusterRow{pid: pid, url: m[3], metrics: m[4]}
	}
	return p, rows
}

// TestCluster runs `fabric cluster` as a process, sends requests through
// both gateways and the page's /ws, checks that the NATS nodes are routed
// to each other, kills a worker, and stops it all with SIGTERM: it exits 0,
// with no child left and its temporary directory gone.
func TestCluster(t *testing.T) {
	tmp := t.TempDir()
	p, rows := startCluster(t, tmp, "--workers", "2")
	children := []string{"n1", "n2", "n3", "gw1", "gw2", "w1", "w2"}
	for _, name := range append(children, "page") {
		if rows[name].pid == 0 {
			t.Fatalf("no %s in the table:\n%s", name, p.Stdout())
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	page := "ws" + rows["page"].url[len("http"):] + "ws"
	for _, url := range []string{rows["gw1"].url, rows["gw2"].url, page} {
		c, err := client.Dial(ctx, url, client.Options{NoReconnect: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("dial %s: %v", url, err)
		}
		if got, err := client.Invoke(ctx, c, demo.Echo, json.RawMessage(`{"hi":1}`)); err != nil || string(got) != `{"hi":1}` {
			t.Errorf("%s: demo/echo: %s, %v", url, got, err)
		}
		var progress []int
		var result demo.CountResult
		for m, err := range c.Stream(ctx, demo.Count.Type(), demo.CountParams{N: 3}) {
			if err != nil {
				t.Fatalf("%s: demo/count: %v", url, err)
			}
			var pr demo.CountProgress
			switch m.Suffix() {
			case protocol.SuffixProgress:
				if err := m.Decode(&pr); err != nil {
					t.Fatal(err)
				}
				progress = append(progress, pr.I)
			case protocol.SuffixResponse:
				if err := m.Decode(&result); err != nil {
					t.Fatal(err)
				}
			}
		}
		if fmt.Sprint(progress) != "[1 2 3]" || result.N != 3 {
			t.Errorf("%s: demo/count: progress %v, result %+v", url, progress, result)
		}
		c.Close()
	}

	// Every node is routed to both others; every metrics and monitoring
	// URL answers; the page is served.
	for _, n := range []string{"n1", "n2", "n3"} {
		var rz struct {
			Routes []struct {
				RemoteName string `json:"remote_name"`
			} `json:"routes"`
		}
		if err := topology.Get(rows[n].metrics+"routez", &rz); err != nil {
			t.Fatal(err)
		}
		remotes := map[string]bool{}
		for _, r := range rz.Routes {
			remotes[r.RemoteName] = true
		}
		if len(remotes) != 2 || remotes[n] {
			t.Errorf("%s is routed to %v, want the two other nodes", n, remotes)
		}
	}
	for _, url := range []string{rows["gw1"].metrics, rows["gw2"].metrics, rows["w1"].metrics, rows["w2"].metrics, rows["page"].url} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", url, resp.Status)
		}
	}

	// A child that dies is reported; the rest keep running.
	if err := syscall.Kill(rows["w2"].pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.WaitOutput(regexp.MustCompile(`w2 \(pid \d+\) exited on its own`), 10*time.Second)

	start := time.Now()
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(30 * time.Second); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	t.Logf("stopped in %s", time.Since(start).Round(time.Millisecond))
	for _, name := range children {
		if alive(rows[name].pid) {
			t.Errorf("%s (pid %d) still runs", name, rows[name].pid)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in its temporary directory: %v", left)
	}
}

// TestClusterChildrenDieWithIt kills `fabric cluster` outright: its
// children die too.
func TestClusterChildrenDieWithIt(t *testing.T) {
	p, rows := startCluster(t, t.TempDir(), "--nats-nodes", "1", "--gateways", "1", "--workers", "1")
	p.Signal(syscall.SIGKILL)
	p.Wait(10 * time.Second)
	for _, name := range []string{"n1", "gw1", "w1"} {
		fabrictest.Eventually(t, 10*time.Second, func() bool { return !alive(rows[name].pid) })
	}
}

// alive reports whether a process with pid runs: it exists and is not a
// zombie waiting for a parent (pid 1 in a container may reap none).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
