package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// dist is web/build.mjs's output: index.html, app.js, app.css (the demo),
// inspector.html, inspector.js, inspector.css (the request inspector) and
// manifest.json.
//
//go:embed dist
var dist embed.FS

// file is one file of dist, served at a URL path.
type file struct{ name, contentType string }

const (
	htmlType = "text/html; charset=utf-8"
	jsType   = "text/javascript; charset=utf-8"
	cssType  = "text/css; charset=utf-8"
)

// pages are what Handler serves, by URL path: the page and its two assets.
// The manifest is build metadata and is not served.
var pages = map[string]file{
	"/":        {"index.html", htmlType},
	"/app.js":  {"app.js", jsType},
	"/app.css": {"app.css", cssType},
}

// InspectorPath is where the request inspector's page is; its assets are
// under InspectorPath + "/", and the page reads its API (internal/inspector)
// at InspectorAPIPath.
const (
	InspectorPath    = "/inspector"
	InspectorAPIPath = InspectorPath + "/api"
)

// inspectorPages are what InspectorHandler serves. The page refers to its
// assets relative to InspectorPath, which has no trailing slash.
var inspectorPages = map[string]file{
	InspectorPath:                    {"inspector.html", htmlType},
	InspectorPath + "/inspector.js":  {"inspector.js", jsType},
	InspectorPath + "/inspector.css": {"inspector.css", cssType},
}

// contentSecurityPolicy lets the page load only its own script and styles
// and connect only to its own origin (the gateway's /ws).
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type page struct {
	name        string
	body        []byte
	contentType string
	etag        string
}

// Handler serves the demo page at / and its assets at /app.js and /app.css,
// for GET and HEAD; any other path is 404. Responses carry an ETag and
// Cache-Control: no-cache, so a browser revalidates and always runs the
// binary's own page.
func Handler() http.Handler { return serve(pages) }

// InspectorHandler serves the request inspector's page at InspectorPath and
// its assets under it, as Handler does; InspectorPath + "/" redirects to the
// page, and any other path is 404. The page reads the API that
// internal/inspector serves under InspectorPath + "/api/".
func InspectorHandler() http.Handler { return serve(inspectorPages) }

// serve serves files, by URL path.
func serve(files map[string]file) http.Handler {
	served := make(map[string]page, len(files))
	for path, f := range files {
		body, err := dist.ReadFile("dist/" + f.name)
		if err != nil {
			// go:embed checked that dist exists, not what it holds.
			panic("web: dist/" + f.name + " is missing: run `make web`")
		}
		sum := sha256.Sum256(body)
		served[path] = page{name: f.name, body: body, contentType: f.contentType, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := served[r.URL.Path]
		if !ok {
			if trimmed := strings.TrimSuffix(r.URL.Path, "/"); trimmed != r.URL.Path && served[trimmed].body != nil {
				http.Redirect(w, r, trimmed, http.StatusFound)
				return
			}
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", p.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", p.etag)
		h.Set("X-Content-Type-Options", "nosniff")
		if p.contentType == htmlType {
			h.Set("Content-Security-Policy", contentSecurityPolicy)
			h.Set("Referrer-Policy", "no-referrer")
		}
		// ServeContent answers If-None-Match with 304, and HEAD without a body.
		http.ServeContent(w, r, p.name, time.Time{}, bytes.NewReader(p.body))
	})
}
