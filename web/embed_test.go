package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// manifest is dist/manifest.json, as web/build.mjs writes it.
type manifest struct {
	// Roots are the build's inputs, repo-relative: files, or directories
	// whose every file is an input.
	Roots []string `json:"roots"`
	// Inputs is the sha256 of each input file when dist was built.
	Inputs map[string]string `json:"inputs"`
	// Outputs is the sha256 of each file the build wrote but the manifest.
	Outputs map[string]string `json:"outputs"`
}

func readManifest(t *testing.T) manifest {
	t.Helper()
	b, err := dist.ReadFile("dist/manifest.json")
	if err != nil {
		t.Fatalf("web/dist has no manifest.json: run `make web`: %v", err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("dist/manifest.json: %v", err)
	}
	if len(m.Roots) == 0 || len(m.Inputs) == 0 {
		t.Fatal("dist/manifest.json lists no inputs: run `make web`")
	}
	return m
}

// TestDistIsFresh fails when a file the page is built from (web/src, the
// TypeScript client's source, the build's own configuration) has changed
// since web/dist was built, so that the binary never embeds a stale page.
// It needs no npm: it hashes the files the manifest's roots name.
func TestDistIsFresh(t *testing.T) {
	m := readManifest(t)
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	now := map[string]string{}
	for _, root := range m.Roots {
		err := filepath.WalkDir(filepath.Join(repo, filepath.FromSlash(root)), func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(repo, path)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			now[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
			return nil
		})
		if err != nil {
			t.Fatalf("hashing the inputs under %s: %v", root, err)
		}
	}

	var problems []string
	for _, path := range slices.Sorted(maps.Keys(now)) {
		switch was, ok := m.Inputs[path]; {
		case !ok:
			problems = append(problems, "new:     "+path)
		case was != now[path]:
			problems = append(problems, "changed: "+path)
		}
	}
	for _, path := range slices.Sorted(maps.Keys(m.Inputs)) {
		if _, ok := now[path]; !ok {
			problems = append(problems, "removed: "+path)
		}
	}
	if len(problems) > 0 {
		t.Fatalf("web/dist is stale: run `make web`\n  %s", strings.Join(problems, "\n  "))
	}
}

// TestDistIsBuilt checks that dist holds the build's files and nothing else,
// as the build wrote them: a hand edit of dist fails here.
func TestDistIsBuilt(t *testing.T) {
	m := readManifest(t)
	entries, err := dist.ReadDir("dist")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := append(slices.Collect(maps.Keys(m.Outputs)), "manifest.json")
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("web/dist holds %v, want %v: run `make web`", names, want)
	}
	for name, sum := range m.Outputs {
		b, err := dist.ReadFile("dist/" + name)
		if err != nil {
			t.Fatal(err)
		}
		got := sha256.Sum256(b)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("web/dist/%s is not what the build wrote: run `make web`", name)
		}
	}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()

	tests := []struct {
		method, path string
		status       int
		contentType  string
		bodyHas      string
	}{
		{"GET", "/", http.StatusOK, "text/html; charset=utf-8", `<script type="module" src="app.js">`},
		{"GET", "/app.js", http.StatusOK, "text/javascript; charset=utf-8", "agent/ask"},
		{"GET", "/app.css", http.StatusOK, "text/css; charset=utf-8", "--accent"},
		{"HEAD", "/", http.StatusOK, "text/html; charset=utf-8", ""},
		{"GET", "/nope", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"GET", "/index.html", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"GET", "/manifest.json", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"GET", "/dist/app.js", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"POST", "/", http.StatusMethodNotAllowed, "text/plain; charset=utf-8", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := do(t, mustRequest(t, tt.method, srv.URL+tt.path))
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type %q, want %q", got, tt.contentType)
			}
			if !strings.Contains(body, tt.bodyHas) {
				t.Errorf("the body has no %q", tt.bodyHas)
			}
			if tt.status != http.StatusOK {
				return
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q, want no-cache", got)
			}
			if tt.method == "HEAD" && body != "" {
				t.Errorf("HEAD has a body of %d bytes", len(body))
			}
		})
	}

	t.Run("revalidation", func(t *testing.T) {
		first, _ := do(t, mustRequest(t, "GET", srv.URL+"/app.js"))
		etag := first.Header.Get("ETag")
		if etag == "" {
			t.Fatal("no ETag")
		}
		req := mustRequest(t, "GET", srv.URL+"/app.js")
		req.Header.Set("If-None-Match", etag)
		if resp, _ := do(t, req); resp.StatusCode != http.StatusNotModified {
			t.Fatalf("If-None-Match %s: status %d, want 304", etag, resp.StatusCode)
		}
	})

	t.Run("content security policy", func(t *testing.T) {
		resp, _ := do(t, mustRequest(t, "GET", srv.URL+"/"))
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") {
			t.Fatalf("Content-Security-Policy %q lets the page connect nowhere", csp)
		}
	})
}

func TestInspectorHandler(t *testing.T) {
	srv := httptest.NewServer(InspectorHandler())
	defer srv.Close()
	for _, tt := range []struct {
		method, path string
		status       int
		contentType  string
		bodyHas      string
	}{
		{"GET", "/inspector", http.StatusOK, "text/html; charset=utf-8", `<script type="module" src="inspector/inspector.js">`},
		{"GET", "/inspector/inspector.js", http.StatusOK, "text/javascript; charset=utf-8", "inspector/api/stream"},
		{"GET", "/inspector/inspector.css", http.StatusOK, "text/css; charset=utf-8", ".state.in_flight"},
		{"HEAD", "/inspector", http.StatusOK, "text/html; charset=utf-8", ""},
		{"GET", "/", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"GET", "/app.js", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"GET", "/inspector/inspector.html", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"GET", "/inspector/api/requests", http.StatusNotFound, "text/plain; charset=utf-8", ""},
		{"POST", "/inspector", http.StatusMethodNotAllowed, "text/plain; charset=utf-8", ""},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := do(t, mustRequest(t, tt.method, srv.URL+tt.path))
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type %q, want %q", got, tt.contentType)
			}
			if !strings.Contains(body, tt.bodyHas) {
				t.Errorf("the body has no %q", tt.bodyHas)
			}
		})
	}

	t.Run("trailing slash", func(t *testing.T) {
		req := mustRequest(t, "GET", srv.URL+"/inspector/")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/inspector" {
			t.Fatalf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	t.Run("content security policy", func(t *testing.T) {
		resp, _ := do(t, mustRequest(t, "GET", srv.URL+"/inspector"))
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") {
			t.Fatalf("Content-Security-Policy %q", csp)
		}
	})
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}
