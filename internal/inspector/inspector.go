package inspector

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/internal/tail"
	"github.com/seed82ac63c1/fabric/protocol"
)

// Defaults of [Config].
const (
	DefaultCapacity  = 500
	DefaultMaxEvents = 200
	DefaultJaegerURL = "http://localhost:16686"
)

// Config configures an inspector.
type Config struct {
	// Prefix is the fabric's subject prefix. "" means "fabric".
	Prefix string
	// Capacity is how many requests are kept, the most recent. 0 means
	// DefaultCapacity (500).
	Capacity int
	// MaxEvents is how many events and cancels of one request are kept;
	// later ones are only counted (Request.Omitted), but its end is always
	// known. 0 means DefaultMaxEvents (200).
	MaxEvents int
	// PayloadBytes caps payload previews. 0 means tail.DefaultPayloadBytes.
	PayloadBytes int
	// JaegerURL is the base of the trace links, <JaegerURL>/trace/<id>.
	// "" means DefaultJaegerURL.
	JaegerURL string
	// NoRequests and RequestRoutes choose the request subjects the watcher
	// subscribes to (see tail.Config): a subscription to a request subject
	// turns a request no worker serves from no_responders into a timeout.
	NoRequests    bool
	RequestRoutes []string
}

// State is how far a request has got.
type State string

// The states of a request.
const (
	StateInFlight  State = "in_flight" // no :finish yet, no :error, no cancel
	StateFinished  State = "finished"  // :finish without an :error
	StateError     State = "error"     // an :error (Request.Code has its code)
	StateCancelled State = "cancelled" // cancelled: an :error{cancelled}, or a cancel without an :error
)

// Request is one request as the inspector saw it.
type Request struct {
	// Number is 1, 2, … in the order the inspector first saw the requests:
	// newer requests have higher numbers.
	Number  uint64 `json:"number"`
	Session string `json:"session"`
	ID      string `json:"id"`
	Route   string `json:"route"`
	// Time is when the inspector first saw the request: the request
	// itself, or, when it missed that (see Config.NoRequests), its first
	// event or cancel.
	Time time.Time `json:"time"`
	// Seen tells whether the request message itself was seen; Size,
	// Payload, Truncated and User are its.
	Seen      bool   `json:"seen"`
	User      string `json:"user,omitempty"`
	Size      int    `json:"size"`
	Payload   string `json:"payload,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	// TraceID is the request's trace id (its own traceparent's, or its
	// first event's), and TraceURL its trace in Jaeger.
	TraceID  string `json:"traceId,omitempty"`
	TraceURL string `json:"traceUrl,omitempty"`
	State    State  `json:"state"`
	// Code is the code of the request's first :error, or of the first one
	// a gateway made, which is what the client got.
	Code          string `json:"code,omitempty"`
	codeByGateway bool
	// Cancelled tells whether a cancel was published for the request.
	Cancelled bool `json:"cancelled,omitempty"`
	// End is when its first :finish came; nil while it is in flight.
	End *time.Time `json:"end,omitempty"`
	// Last is when the latest of its messages came.
	Last time.Time `json:"last"`
	// Events are its events and cancels, in the order they came; Omitted
	// counts those past Config.MaxEvents.
	Events  []Event `json:"events"`
	Omitted int     `json:"omitted,omitempty"`
}

// Event is one event or cancel of a request.
type Event struct {
	Time time.Time `json:"time"`
	// Kind is tail.KindEvent or tail.KindCancel.
	Kind      tail.Kind `json:"kind"`
	Suffix    string    `json:"suffix,omitempty"`
	Seq       uint64    `json:"seq,omitempty"`
	Origin    string    `json:"origin,omitempty"`
	Code      string    `json:"code,omitempty"`
	Size      int       `json:"size"`
	TraceID   string    `json:"traceId,omitempty"`
	Payload   string    `json:"payload,omitempty"`
	Truncated bool      `json:"truncated,omitempty"`
}

// Filter selects requests. Empty fields select everything.
type Filter struct {
	Route, Session, ID string
	// Query keeps the requests whose route, session or id contains it.
	Query string
	// Errors keeps the requests that got an :error.
	Errors bool
}

func (f *Filter) match(r *Request) bool {
	return (f.Route == "" || r.Route == f.Route) &&
		(f.Session == "" || r.Session == f.Session) &&
		(f.ID == "" || r.ID == f.ID) &&
		(f.Query == "" || strings.Contains(r.Route, f.Query) || strings.Contains(r.Session, f.Query) || strings.Contains(r.ID, f.Query)) &&
		(!f.Errors || r.Code != "")
}

// Inspector keeps the most recent requests of a fabric. Create one with
// [Start].
type Inspector struct {
	cfg     Config
	watcher *tail.Watcher
	closed  chan struct{}
	once    sync.Once

	mu       sync.Mutex
	requests map[key]*Request
	order    []key // oldest first, at most cfg.Capacity
	seen     uint64
	streams  map[*stream]struct{}
}

type key struct{ session, id string }

// Start starts an inspector watching the fabric on nc. ctx bounds the
// subscribing (see tail.Start); the inspector runs until Close.
func Start(ctx context.Context, nc *nats.Conn, cfg Config) (*Inspector, error) {
	if cfg.Capacity <= 0 {
		cfg.Capacity = DefaultCapacity
	}
	if cfg.MaxEvents <= 0 {
		cfg.MaxEvents = DefaultMaxEvents
	}
	if cfg.JaegerURL == "" {
		cfg.JaegerURL = DefaultJaegerURL
	}
	cfg.JaegerURL = strings.TrimRight(cfg.JaegerURL, "/")
	in := &Inspector{
		cfg:      cfg,
		closed:   make(chan struct{}),
		requests: make(map[key]*Request),
		streams:  make(map[*stream]struct{}),
	}
	w, err := tail.Start(ctx, nc, tail.Config{
		Prefix:        cfg.Prefix,
		PayloadBytes:  cfg.PayloadBytes,
		NoRequests:    cfg.NoRequests,
		RequestRoutes: cfg.RequestRoutes,
	}, in.add)
	if err != nil {
		return nil, fmt.Errorf("inspector: %w", err)
	}
	in.watcher = w
	return in, nil
}

// Close stops watching and ends every open stream. It is safe to call more
// than once.
func (in *Inspector) Close() {
	in.once.Do(func() {
		in.watcher.Stop()
		close(in.closed)
	})
}

// Requests returns copies of the requests f keeps, newest first.
func (in *Inspector) Requests(f Filter) []Request {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []Request
	for i := len(in.order) - 1; i >= 0; i-- {
		if r := in.requests[in.order[i]]; f.match(r) {
			out = append(out, r.clone())
		}
	}
	return out
}

func (r *Request) clone() Request {
	c := *r
	c.Events = slices.Clone(r.Events)
	if r.End != nil {
		end := *r.End
		c.End = &end
	}
	return c
}

// add folds one record into its request.
func (in *Inspector) add(rec tail.Record) {
	if rec.Kind == tail.KindPush || rec.Session == "" || rec.ID == "" {
		return // pushes belong to no request
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	k := key{rec.Session, rec.ID}
	r := in.requests[k]
	if r == nil {
		in.seen++
		r = &Request{Number: in.seen, Session: rec.Session, ID: rec.ID, Time: rec.Time, State: StateInFlight, Events: []Event{}}
		in.requests[k] = r
		in.order = append(in.order, k)
		if len(in.order) > in.cfg.Capacity {
			delete(in.requests, in.order[0])
			in.order = slices.Delete(in.order, 0, 1)
		}
	}
	if r.Route == "" {
		r.Route = rec.Route
	}
	r.Last = rec.Time
	switch rec.Kind {
	case tail.KindRequest:
		r.Seen, r.User, r.Size, r.Payload, r.Truncated = true, rec.User, rec.Size, rec.Payload, rec.Truncated
		r.Route = rec.Route
		if rec.TraceID != "" {
			r.TraceID = rec.TraceID
		}
	case tail.KindEvent, tail.KindCancel:
		if len(r.Events) < in.cfg.MaxEvents {
			r.Events = append(r.Events, Event{
				Time: rec.Time, Kind: rec.Kind, Suffix: rec.Suffix, Seq: rec.Seq, Origin: rec.Origin, Code: rec.Code,
				Size: rec.Size, TraceID: rec.TraceID, Payload: rec.Payload, Truncated: rec.Truncated,
			})
		} else {
			r.Omitted++
		}
		switch {
		case rec.Kind == tail.KindCancel:
			r.Cancelled = true
		case rec.Failed():
			// A gateway's own :error is what the client got (a timeout,
			// say), even when the worker's, answering the cancel that came
			// with it, is on the bus first.
			byGateway := rec.Origin == tail.OriginGateway
			if r.Code == "" || byGateway && !r.codeByGateway {
				r.Code, r.codeByGateway = rec.Code, byGateway
				if r.Code == "" {
					r.Code = string(protocol.CodeInternal) // an :error without a code
				}
			}
		case rec.Finished() && r.End == nil:
			end := rec.Time
			r.End = &end
		}
		if r.TraceID == "" {
			r.TraceID = rec.TraceID
		}
	}
	if r.TraceID != "" {
		r.TraceURL = in.cfg.JaegerURL + "/trace/" + r.TraceID
	}
	r.State = r.state()
	for s := range in.streams {
		s.changed(k)
	}
}

func (r *Request) state() State {
	switch {
	case r.Code == string(protocol.CodeCancelled):
		return StateCancelled
	case r.Code != "":
		return StateError
	case r.Cancelled:
		return StateCancelled
	case r.End != nil:
		return StateFinished
	default:
		return StateInFlight
	}
}
