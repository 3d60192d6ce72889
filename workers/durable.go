package workers

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrEventStore is returned by a durable request's sends once the event
// store has acknowledged none of its events for [storeGiveUp]: the worker
// stops trying, and the gateway ends the request with :error{interrupted}.
var ErrEventStore = errors.New("workers: the event store does not acknowledge the request's events")

// Durable mode: a gateway with an event store marks each request with the
// header subjects.HeaderDurable; the worker then publishes the request's
// events as JetStream publishes and sends each again until the store
// acknowledges it. A NATS node that dies with events in flight, or a store
// electing a new leader, then loses none of them.
const (
	// storeAckTimeout is how long an event waits for the store's ack before
	// it, and every event after it, is published again.
	storeAckTimeout = 3 * time.Second
	// storeWindow bounds one request's events awaiting the store's ack;
	// Send blocks beyond it, as a slow store pushes back on the handler.
	storeWindow = 1024
	// storeGiveUp: no ack for this long, the worker gives up the request's
	// unacknowledged events. It outlasts a JetStream leader election
	// (seconds) by far.
	storeGiveUp = time.Minute
	// storeMaxBackoff caps the wait before publishing again.
	storeMaxBackoff = 2 * time.Second
)

// jetStream returns the worker's JetStream context for durable requests,
// made on first use.
func (w *Worker) jetStream() (jetstream.JetStream, error) {
	w.jsOnce.Do(func() {
		w.js, w.jsErr = jetstream.New(w.nc,
			jetstream.WithPublishAsyncTimeout(storeAckTimeout),
			// Each request bounds its own events (storeWindow); this only
			// bounds the worker's total.
			jetstream.WithPublishAsyncMaxPending(64*storeWindow))
	})
	return w.js, w.jsErr
}

// outbox sends one durable request's events to the event store. Events are
// published at once, so the gateway receives them live as in core mode, and
// stay in the outbox until the store acknowledges them. When the oldest
// one's ack fails (a timeout, a reconnect), it and every later event are
// published again, in order (go-back-N): whatever the store lost, it then
// holds an in-order run of the events from the first one it missed, which
// is what the gateway's replay needs. Events stored twice are dropped by
// their seq.
type outbox struct {
	js      jetstream.JetStream
	log     func() *slog.Logger
	metrics *metrics // nil without WithMetrics

	mu      sync.Mutex
	pending []*storedEvent // not acknowledged yet, in seq order
	sent    int            // pending[:sent] are published in this pass
	closed  bool           // the last event is queued
	err     error          // gave up

	wake chan struct{} // 1-buffered: events were queued
	room chan struct{} // 1-buffered: an ack freed a place in the window
	done chan struct{} // closed once every event is acknowledged, or on giving up
}

// storedEvent is one event in an outbox.
type storedEvent struct {
	msg *nats.Msg
	ack jetstream.PubAckFuture // of the current pass; nil until published in it
}

func newOutbox(js jetstream.JetStream, log func() *slog.Logger, m *metrics) *outbox {
	o := &outbox{
		js:      js,
		log:     log,
		metrics: m,
		wake:    make(chan struct{}, 1),
		room:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	go o.run()
	return o
}

// push queues m, waiting while the window is full. last says m is the
// request's last event.
func (o *outbox) push(m *nats.Msg, last bool) error {
	for {
		o.mu.Lock()
		if o.err != nil {
			o.mu.Unlock()
			return o.err
		}
		if len(o.pending) < storeWindow || last {
			o.pending = append(o.pending, &storedEvent{msg: m})
			o.closed = last
			o.mu.Unlock()
			signal(o.wake)
			return nil
		}
		o.mu.Unlock()
		select {
		case <-o.room:
		case <-o.done:
		}
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// run publishes and republishes the events until the store has them all.
func (o *outbox) run() {
	defer close(o.done)
	backoff := 50 * time.Millisecond
	lastAck := time.Now()
	for {
		head, finished := o.publishQueued()
		if finished {
			return
		}
		if head == nil {
			<-o.wake
			continue
		}
		var err error
		if head.ack == nil {
			err = errNotPublished
		} else {
			select {
			case <-head.ack.Ok():
				o.mu.Lock()
				o.pending[0] = nil
				o.pending = o.pending[1:]
				o.sent--
				o.mu.Unlock()
				signal(o.room)
				lastAck, backoff = time.Now(), 50*time.Millisecond
				continue
			case err = <-head.ack.Err():
			case <-o.wake:
				continue
			}
		}
		if time.Since(lastAck) > storeGiveUp || o.js.Conn().IsClosed() {
			o.abandon(err)
			return
		}
		o.log().Warn("event not stored: publishing again", "err", err, "retry_in", backoff.String())
		o.metrics.republished()
		time.Sleep(backoff)
		backoff = min(2*backoff, storeMaxBackoff)
		o.mu.Lock()
		for _, e := range o.pending {
			e.ack = nil
		}
		o.sent = 0
		o.mu.Unlock()
	}
}

var errNotPublished = errors.New("not published")

// publishQueued publishes the events not yet published in this pass, and
// returns the oldest unacknowledged one (nil if none), or finished once the
// last event is acknowledged.
func (o *outbox) publishQueued() (head *storedEvent, finished bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for o.sent < len(o.pending) {
		e := o.pending[o.sent]
		ack, err := o.js.PublishMsgAsync(&nats.Msg{Subject: e.msg.Subject, Header: e.msg.Header, Data: e.msg.Data})
		if err != nil {
			break // disconnected or stalled: the head's ack fails, and all is sent again
		}
		e.ack = ack
		o.sent++
	}
	if len(o.pending) == 0 {
		return nil, o.closed
	}
	return o.pending[0], false
}

// abandon gives up the events the store did not acknowledge.
func (o *outbox) abandon(err error) {
	o.mu.Lock()
	n := len(o.pending)
	o.pending, o.sent, o.err = nil, 0, ErrEventStore
	o.mu.Unlock()
	o.metrics.gaveUp()
	o.log().Error("event store unavailable: giving up the request's unstored events", "events", n, "err", err, "after", storeGiveUp.String())
}

// wait waits until the store has every event, the outbox gave up, or stop
// is closed. It reports whether every event was stored.
func (o *outbox) wait(stop <-chan struct{}) bool {
	select {
	case <-o.done:
	case <-stop:
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err == nil
}
