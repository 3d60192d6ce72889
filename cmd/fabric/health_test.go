package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seed82ac63c1/fabric/internal/fabrictest"
)

// TestHealth runs `fabric health` as a container healthcheck would, and
// checks its exit status: 0 on 2xx only.
func TestHealth(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusNoContent)
		case "/draining":
			http.Error(w, "draining", http.StatusServiceUnavailable)
		case "/slow":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	closed := closedURL(t)

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"2xx", []string{srv.URL + "/ok"}, 0, ""},
		{"503 says why", []string{srv.URL + "/draining"}, 1, "503 Service Unavailable draining"},
		{"404", []string{srv.URL + "/nope"}, 1, "404 Not Found"},
		{"refused", []string{closed}, 1, "unhealthy:"},
		{"too slow", []string{srv.URL + "/slow", "--timeout", "200ms"}, 1, "deadline exceeded"},
		{"no URL", nil, 2, "Usage: fabric health URL"},
		{"two URLs", []string{srv.URL + "/ok", srv.URL + "/ok"}, 2, "Usage: fabric health URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fabrictest.StartProcess(t, nil, fabricBin, append([]string{"health"}, tc.args...)...)
			if code := p.Wait(10 * time.Second); code != tc.code || !strings.Contains(p.Stderr(), tc.stderr) {
				t.Fatalf("exit %d, want %d; stderr %q, want it to contain %q", code, tc.code, p.Stderr(), tc.stderr)
			}
		})
	}
}

// TestHealthOfGateway probes a real gateway's /readyz and /healthz as the
// docker-compose healthchecks do.
func TestHealthOfGateway(t *testing.T) {
	ns := fabrictest.NATS(t)
	gw := fabrictest.StartProcess(t, nil, fabricBin, "gateway", "--listen", "127.0.0.1:0", "--nats", ns.ClientURL())
	addr := gw.WaitOutput(listeningRE, 20*time.Second)
	for _, path := range []string{"/readyz", "/healthz"} {
		p := fabrictest.StartProcess(t, nil, fabricBin, "health", "http://"+addr+path)
		if code := p.Wait(10 * time.Second); code != 0 {
			t.Fatalf("fabric health %s: exit %d, stderr %q", path, code, p.Stderr())
		}
	}
}

// closedURL returns an http URL on which nothing listens any more.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/readyz"
}
