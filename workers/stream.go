package workers

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
)

// Stream sends a request's events back to its client. Its methods may be
// called from several goroutines; events keep the order of the calls and are
// numbered 1, 2, … in that order. After the handler returns, sends fail with
// [ErrFinished].
type Stream struct {
	w       *Worker
	req     *Request
	subject string  // "R.<type tokens>.", an event's subject without its suffix
	out     *outbox // durable mode: the events go through the event store's acks

	metrics requestMetrics // records nothing without WithMetrics
	span    trace.Span     // the request's process span

	mu       sync.Mutex
	seq      uint64
	finished bool

	// Core mode publishes every event from one header and one message,
	// refilled under mu: nats.go copies them into its buffer before
	// PublishMsg returns. (Durable mode's outbox keeps each message until
	// the store acks it.) lastSuffix and lastSubject keep the subject of
	// the previous event, most often the same.
	hdr         nats.Header
	msg         nats.Msg
	lastSuffix  string
	lastSubject string
}

func (w *Worker) newStream(reply string, req *Request) *Stream {
	s := &Stream{w: w, req: req, subject: reply + "." + subjects.TypeTokens(req.Type) + ".", metrics: w.metrics.request(req.Type)}
	if req.Header.Get(subjects.HeaderDurable) != "" {
		js, err := w.jetStream()
		if err != nil {
			w.reqLog(req).Warn("durable request served without the event store's acks", "err", err)
		} else {
			s.out = newOutbox(js, func() *slog.Logger { return w.reqLog(req) }, w.metrics)
		}
	}
	return s
}

// ID returns the request's message id.
func (s *Stream) ID() string { return s.req.ID }

// Session returns the id of the client's session.
func (s *Stream) Session() string { return s.req.Session }

// User returns the authenticated user id, "" when anonymous.
func (s *Stream) User() string { return s.req.User }

// Type returns the route's typeName.
func (s *Stream) Type() string { return s.req.Type }

// Progress sends a ":progress" event.
func (s *Stream) Progress(v any) error { return s.Send(protocol.SuffixProgress, v) }

// Respond sends a ":response" event.
func (s *Stream) Respond(v any) error { return s.Send(protocol.SuffixResponse, v) }

// Send sends an event "<typeName>:<suffix>" with payload v, encoded as JSON
// (a json.RawMessage is sent as it is). The suffix "finish" is reserved: the
// SDK sends it when the handler returns.
func (s *Stream) Send(suffix string, v any) error {
	if suffix == protocol.SuffixFinish {
		return ErrReservedEvent
	}
	if err := subjects.ValidateSuffix(suffix); err != nil {
		return fmt.Errorf("workers: %w", err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("workers: encode %s event: %w", suffix, err)
	}
	return s.publish(suffix, data, false)
}

func (s *Stream) finish() error { return s.publish(protocol.SuffixFinish, nil, true) }

func (s *Stream) publish(suffix string, data []byte, last bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return ErrFinished
	}
	s.seq++
	s.finished = last
	if suffix != s.lastSuffix { // a suffix is never empty: the first event sets both
		s.lastSuffix, s.lastSubject = suffix, s.subject+suffix
	}
	var h nats.Header
	if s.out == nil && s.hdr != nil {
		h = s.hdr
		h[subjects.HeaderSeq][0] = strconv.FormatUint(s.seq, 10)
	} else {
		h = nats.Header{
			subjects.HeaderID:  {s.req.ID},
			subjects.HeaderSeq: {strconv.FormatUint(s.seq, 10)},
		}
		if s.out == nil {
			s.hdr = h
		}
	}
	endSpan := s.traceEvent(h, suffix, s.seq) // sets the same keys, if any, for every event
	defer endSpan()
	var err error
	if s.out != nil {
		err = s.out.push(&nats.Msg{Subject: s.lastSubject, Header: h, Data: data}, last)
	} else {
		s.msg = nats.Msg{Subject: s.lastSubject, Header: h, Data: data}
		err = s.w.nc.PublishMsg(&s.msg)
	}
	s.metrics.event(suffix, err)
	return err
}
