package inspector

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"time"
)

const (
	// streamPace is the least time between two batches of updates on a
	// stream: a request streaming many events is sent once per batch.
	streamPace = 100 * time.Millisecond
	// keepAlive is how often a quiet stream sends a comment, so that
	// proxies keep it open.
	keepAlive = 20 * time.Second
)

// list is the body of GET /inspector/api/requests and of a stream's
// snapshot.
type list struct {
	Requests  []Request `json:"requests"`
	Capacity  int       `json:"capacity"`
	JaegerURL string    `json:"jaegerUrl"`
}

// Handler serves the JSON API: GET /requests and GET /stream. The page
// (package web) reads it at /inspector/api: mount it there with
// http.StripPrefix("/inspector/api", …).
func (in *Inspector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /requests", in.serveList)
	mux.HandleFunc("GET /stream", in.serveStream)
	return mux
}

func (in *Inspector) list(f Filter) list {
	requests := in.Requests(f)
	if requests == nil {
		requests = []Request{}
	}
	return list{Requests: requests, Capacity: in.cfg.Capacity, JaegerURL: in.cfg.JaegerURL}
}

func (in *Inspector) serveList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := Filter{Route: q.Get("route"), Session: q.Get("session"), ID: q.Get("id"), Query: q.Get("q"), Errors: q.Get("errors") == "1" || q.Get("errors") == "true"}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(in.list(f))
}

// stream is one open event stream: the requests changed since its last
// batch.
type stream struct {
	dirty map[key]struct{} // guarded by Inspector.mu
	wake  chan struct{}
}

// changed notes that request k changed. Inspector.mu is held.
func (s *stream) changed(k key) {
	s.dirty[k] = struct{}{}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// serveStream sends a snapshot, then each changed request, in batches at
// most every streamPace, until the client goes or the inspector closes.
func (in *Inspector) serveStream(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	s := &stream{dirty: make(map[key]struct{}), wake: make(chan struct{}, 1)}
	in.mu.Lock()
	in.streams[s] = struct{}{}
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		delete(in.streams, s)
		in.mu.Unlock()
	}()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	if !writeEvent(w, "snapshot", in.list(Filter{})) {
		return
	}
	flusher.Flush()
	ping := time.NewTicker(keepAlive)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-in.closed:
			return
		case <-ping.C:
			if _, err := w.Write([]byte(": ping\n\n")); err != nil {
				return
			}
			flusher.Flush()
			continue
		case <-s.wake:
		}
		for _, req := range in.takeChanged(s) {
			if !writeEvent(w, "update", req) {
				return
			}
		}
		flusher.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-in.closed:
			return
		case <-time.After(streamPace):
		}
	}
}

// takeChanged returns copies of the requests changed since the last call,
// oldest first, and forgets them; a request since forgotten is left out.
func (in *Inspector) takeChanged(s *stream) []Request {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]Request, 0, len(s.dirty))
	for k := range s.dirty {
		if r := in.requests[k]; r != nil {
			out = append(out, r.clone())
		}
	}
	clear(s.dirty)
	slices.SortFunc(out, func(a, b Request) int { return cmp.Compare(a.Number, b.Number) })
	return out
}

// writeEvent writes one Server-Sent Event whose data is v as JSON (one
// line: JSON escapes newlines in strings). It reports whether the write
// succeeded.
func writeEvent(w http.ResponseWriter, name string, v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		return false
	}
	buf := make([]byte, 0, len(b)+len(name)+16)
	buf = append(buf, "event: "...)
	buf = append(buf, name...)
	buf = append(buf, "\ndata: "...)
	buf = append(buf, b...)
	buf = append(buf, "\n\n"...)
	_, err = w.Write(buf)
	return err == nil
}
