package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"time"
)

// dist is web/build.mjs's output: index.html, app.js, app.css and
// manifest.json.
//
//go:embed dist
var dist embed.FS

// pages are what Handler serves, by URL path: the page and its two assets.
// The manifest is build metadata and is not served.
var pages = map[string]struct{ file, contentType string }{
	"/":        {"index.html", "text/html; charset=utf-8"},
	"/app.js":  {"app.js", "text/javascript; charset=utf-8"},
	"/app.css": {"app.css", "text/css; charset=utf-8"},
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
func Handler() http.Handler {
	served := make(map[string]page, len(pages))
	for path, p := range pages {
		body, err := dist.ReadFile("dist/" + p.file)
		if err != nil {
			// go:embed checked that dist exists, not what it holds.
			panic("web: dist/" + p.file + " is missing: run `make web`")
		}
		sum := sha256.Sum256(body)
		served[path] = page{name: p.file, body: body, contentType: p.contentType, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := served[r.URL.Path]
		if !ok {
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
		if r.URL.Path == "/" {
			h.Set("Content-Security-Policy", contentSecurityPolicy)
			h.Set("Referrer-Policy", "no-referrer")
		}
		// ServeContent answers If-None-Match with 304, and HEAD without a body.
		http.ServeContent(w, r, p.name, time.Time{}, bytes.NewReader(p.body))
	})
}
