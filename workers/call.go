package workers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"iter"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/seed82ac63c1/fabric/internal/callstate"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
	"github.com/seed82ac63c1/fabric/tracing"
)

// DefaultCallTimeout is Config.CallTimeout's default.
const DefaultCallTimeout = 30 * time.Second

// children routes the events of the requests that this worker's handlers
// make (agents calling agents) back to their callers. The worker acts as a
// session of its own: one wildcard subscription on
// "<prefix>.evt.<worker session>.>", shared by every call.
type children struct {
	w       *Worker
	session string

	once   sync.Once
	subErr error
	sub    *nats.Subscription

	mu    sync.Mutex
	calls map[string]*childCall
}

// childCall is one request made by a handler.
type childCall struct {
	typeName   string
	typeTokens string
	state      *callstate.Call

	mu    sync.Mutex
	timer *time.Timer // the inactivity timeout
}

func newChildren(w *Worker) *children {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return &children{w: w, session: base64.RawURLEncoding.EncodeToString(b[:]), calls: make(map[string]*childCall)}
}

func (c *children) subscribe() error {
	c.once.Do(func() {
		c.sub, c.subErr = c.w.nc.Subscribe(c.w.space.SessionEvents(c.session), c.onEvent)
		if c.subErr == nil {
			c.subErr = c.w.nc.Flush()
		}
	})
	return c.subErr
}

func (c *children) close() {
	if c.sub != nil {
		_ = c.sub.Unsubscribe()
	}
}

// start publishes a child request on behalf of parent.
func (c *children) start(ctx context.Context, parent *Request, typeName string, payload any) (*childCall, string, error) {
	if err := subjects.ValidateRoute(typeName); err != nil {
		return nil, "", fmt.Errorf("workers: call: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	data, err := json.Marshal(payload)
	if err != nil {
		return nil, "", fmt.Errorf("workers: call %s: encode params: %w", typeName, err)
	}
	if err := c.subscribe(); err != nil {
		return nil, "", fmt.Errorf("workers: call: subscribe: %w", err)
	}
	id := nuid.Next()
	cc := &childCall{typeName: typeName, typeTokens: subjects.TypeTokens(typeName), state: callstate.New(typeName, id)}
	h := nats.Header{subjects.HeaderID: {id}, subjects.HeaderSession: {c.session}}
	if parent.User != "" {
		h[subjects.HeaderUser] = []string{parent.User}
	}
	if claims := parent.Header.Get(subjects.HeaderClaims); claims != "" {
		h[subjects.HeaderClaims] = []string{claims}
	}
	// The child continues ctx's trace (the handler's process span, or a
	// span of its own under it); untraced, the parent's traceparent.
	tracing.Inject(ctx, h)
	if h.Get(subjects.HeaderTraceparent) == "" {
		if tp := parent.Header[subjects.HeaderTraceparent]; len(tp) > 0 {
			h[subjects.HeaderTraceparent] = tp[:1]
			if ts := parent.Header[subjects.HeaderTracestate]; len(ts) > 0 {
				h[subjects.HeaderTracestate] = ts[:1]
			}
		}
	}
	c.mu.Lock()
	c.calls[id] = cc
	c.mu.Unlock()
	cc.mu.Lock()
	cc.timer = time.AfterFunc(c.w.cfg.CallTimeout, func() {
		c.fail(id, cc, protocol.CodeTimeout, "the worker sent nothing for "+c.w.cfg.CallTimeout.String(), true)
	})
	cc.mu.Unlock()
	msg := &nats.Msg{Subject: c.w.space.Request(typeName), Reply: c.w.space.Reply(c.session, id), Header: h, Data: data}
	if err := c.w.nc.PublishMsg(msg); err != nil {
		c.remove(id, cc)
		return nil, "", fmt.Errorf("workers: call %s: %w", typeName, err)
	}
	return cc, id, nil
}

func (c *children) remove(id string, cc *childCall) {
	cc.mu.Lock()
	cc.timer.Stop()
	cc.mu.Unlock()
	c.mu.Lock()
	if c.calls[id] == cc {
		delete(c.calls, id)
	}
	c.mu.Unlock()
}

// cancel ends a call its caller gave up on and tells its worker to stop.
func (c *children) cancel(id string, cc *childCall) {
	c.fail(id, cc, protocol.CodeCancelled, "cancelled by the calling handler", true)
}

// fail ends a call with an :error and :finish made here, numbered on.
func (c *children) fail(id string, cc *childCall, code protocol.Code, message string, stopWorker bool) {
	c.remove(id, cc)
	if stopWorker {
		_ = c.w.nc.Publish(c.w.space.Cancel(c.session, id), nil)
	}
	cc.state.End(code, message)
}

// onEvent receives the events of every child call, and NATS's
// no-responders status on their reply subjects.
func (c *children) onEvent(m *nats.Msg) {
	id, tail, ok := c.w.space.ParseEvent(c.session, m.Subject)
	if !ok {
		return
	}
	c.mu.Lock()
	cc := c.calls[id]
	c.mu.Unlock()
	if cc == nil {
		return
	}
	if tail == "" {
		if m.Header.Get(subjects.HeaderStatus) == subjects.StatusNoResponders {
			c.fail(id, cc, protocol.CodeNoResponders, "no worker serves "+cc.typeName, false)
		}
		return
	}
	suffix, ok := subjects.EventSuffix(tail, cc.typeTokens)
	if !ok {
		return
	}
	seq, err := strconv.ParseUint(m.Header.Get(subjects.HeaderSeq), 10, 64)
	if err != nil || seq == 0 {
		return
	}
	var payload json.RawMessage
	if suffix != protocol.SuffixFinish && len(m.Data) > 0 {
		payload = append(json.RawMessage(nil), m.Data...)
	}
	if suffix == protocol.SuffixFinish {
		c.remove(id, cc)
	} else {
		cc.mu.Lock()
		cc.timer.Reset(c.w.cfg.CallTimeout)
		cc.mu.Unlock()
	}
	cc.state.Add(protocol.Message{Type: subjects.EventType(cc.typeName, suffix), ID: id, Seq: seq, Payload: payload})
}

// Call sends a request for route typeName from inside a handler, as this
// request's child, and returns every message of it at its :finish, like the
// client's Call: if an :error arrived, the error is that *protocol.Error.
//
// The child runs on whichever worker serves typeName. It carries this
// request's user and trace context. Cancelling ctx (normally the handler's
// own ctx, so a cancelled or timed-out parent cancels its children) cancels
// the child and returns ctx's error; a child silent for Config.CallTimeout
// ends with a timeout error.
func (s *Stream) Call(ctx context.Context, typeName string, payload any) ([]protocol.Message, error) {
	ch := s.w.children
	cc, id, err := ch.start(ctx, s.req, typeName, payload)
	if err != nil {
		return nil, err
	}
	select {
	case <-cc.state.Done():
		return cc.state.Result()
	case <-ctx.Done():
		ch.cancel(id, cc)
		return nil, ctx.Err()
	}
}

// CallStream is [Stream.Call] that yields the child's messages as they
// arrive, through its :finish; the :error event is yielded as a message. A
// parent forwards a child's progress to its own client by sending events
// from the loop. Leaving the loop early cancels the child.
func (s *Stream) CallStream(ctx context.Context, typeName string, payload any) iter.Seq2[protocol.Message, error] {
	return func(yield func(protocol.Message, error) bool) {
		ch := s.w.children
		cc, id, err := ch.start(ctx, s.req, typeName, payload)
		if err != nil {
			yield(protocol.Message{}, err)
			return
		}
		cc.state.Messages(ctx, func() { ch.cancel(id, cc) })(yield)
	}
}

// Invoke calls route from inside a handler (see [Stream.Call]) and decodes
// its :response into R.
func Invoke[P, R any](ctx context.Context, s *Stream, route protocol.Route[P, R], params P) (R, error) {
	var result R
	msgs, err := s.Call(ctx, route.Type(), params)
	if err != nil {
		return result, err
	}
	if err := callstate.DecodeResponse(msgs, &result); err != nil {
		return result, fmt.Errorf("workers: %s: %w", route.Type(), err)
	}
	return result, nil
}
