// Package callstate keeps the state of one request on the calling side: the
// messages received so far, in order and each seq once, and how the request
// ended. The Go client and the worker SDK (a handler calling another route)
// both use it, so that both sides read a request's events the same way.
//
// A Call is safe for concurrent use: one goroutine adds messages as they
// arrive while another waits for the end or iterates.
package callstate

import (
	"context"
	"errors"
	"iter"
	"sync"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
)

// Call is one request's state.
type Call struct {
	typeName string
	id       string

	mu       sync.Mutex
	msgs     []protocol.Message
	lastSeq  uint64
	finished bool
	err      error
	notify   chan struct{} // signalled on each change
	done     chan struct{} // closed at the end
}

// New returns the state of request id of route typeName.
func New(typeName, id string) *Call {
	return &Call{typeName: typeName, id: id, notify: make(chan struct{}, 1), done: make(chan struct{})}
}

// Done is closed when the request has ended: at its :finish or by Fail.
func (c *Call) Done() <-chan struct{} { return c.done }

// LastSeq returns the highest seq received.
func (c *Call) LastSeq() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastSeq
}

// Finished reports whether the request has ended.
func (c *Call) Finished() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.finished
}

// Add records a message; a seq already received, or anything after the end,
// is dropped. A :finish ends the request.
func (c *Call) Add(m protocol.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(m)
}

func (c *Call) addLocked(m protocol.Message) {
	if c.finished || (m.Seq != 0 && m.Seq <= c.lastSeq) {
		return
	}
	c.lastSeq = m.Seq
	c.msgs = append(c.msgs, m)
	if m.Suffix() == protocol.SuffixFinish {
		c.finished = true
		close(c.done)
	}
	c.signal()
}

// End ends the request on the caller's side, as the fabric would: an
// :error with code and message, then :finish, numbered on from the last seq.
func (c *Call) End(code protocol.Code, message string) {
	e := protocol.Errorf(code, "%s", message)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(protocol.Message{Type: subjects.EventType(c.typeName, protocol.SuffixError), ID: c.id, Seq: c.lastSeq + 1, Payload: e.Payload()})
	c.addLocked(protocol.Message{Type: subjects.EventType(c.typeName, protocol.SuffixFinish), ID: c.id, Seq: c.lastSeq + 1})
}

// Fail ends the request with err and no :finish: the request was rejected,
// or the connection it depends on is gone for good.
func (c *Call) Fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return
	}
	c.finished = true
	c.err = err
	close(c.done)
	c.signal()
}

func (c *Call) signal() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// Result returns every message and the request's error: Fail's error, or
// the first :error event as a *protocol.Error.
func (c *Call) Result() ([]protocol.Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.msgs, c.err
	}
	for i := range c.msgs {
		if c.msgs[i].Suffix() == protocol.SuffixError {
			var e protocol.Error
			if err := c.msgs[i].Decode(&e); err != nil || e.Code == "" {
				e = protocol.Error{Code: protocol.CodeInternal, Message: "unreadable error event"}
			}
			return c.msgs, &e
		}
	}
	return c.msgs, nil
}

// Messages yields the messages as they arrive, through the end; the :error
// event is yielded as a message, and Fail's error as an error. If the
// consumer stops early or ctx ends first, abandon is called (to cancel the
// request) and, for ctx, ctx's error is yielded.
func (c *Call) Messages(ctx context.Context, abandon func()) iter.Seq2[protocol.Message, error] {
	return func(yield func(protocol.Message, error) bool) {
		next := 0
		for {
			c.mu.Lock()
			msgs, finished, err := c.msgs[next:], c.finished, c.err
			next = len(c.msgs)
			c.mu.Unlock()
			for _, m := range msgs {
				if !yield(m, nil) {
					if !finished {
						abandon()
					}
					return
				}
			}
			if err != nil {
				yield(protocol.Message{}, err)
				return
			}
			if finished {
				return
			}
			select {
			case <-c.notify:
			case <-ctx.Done():
				abandon()
				yield(protocol.Message{}, ctx.Err())
				return
			}
		}
	}
}

// ErrNoResponse is returned by DecodeResponse for a request that finished
// without a :response event.
var ErrNoResponse = errors.New("finished without a response")

// DecodeResponse decodes the :response among a request's messages into v.
func DecodeResponse(msgs []protocol.Message, v any) error {
	for i := range msgs {
		if msgs[i].Suffix() == protocol.SuffixResponse {
			return msgs[i].Decode(v)
		}
	}
	return ErrNoResponse
}
