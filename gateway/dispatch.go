package gateway

import (
	"hash/maphash"
	"runtime"
	"sync"

	"github.com/nats-io/nats.go"
)

// dispatcher delivers the messages of the gateway's many subscriptions
// (three per session, one per user with sessions here) through a few
// shared channels, each drained by one goroutine. nats.go gives every
// asynchronous subscription a goroutine of its own: three per session would
// make an idle connection cost four goroutines and their stacks. A channel
// subscription costs none.
//
// Every subscription of one key (a session id, a user) delivers into the
// same shard, so their messages are handled one at a time and in the order
// NATS delivered them, as they were with a goroutine per subscription. A
// shard whose channel is full drops the message (nats.go reports a slow
// consumer): an event lost so shows as a gap, which a durable gateway
// replays from the store and a core one reports as interrupted.
type dispatcher struct {
	seed   maphash.Seed
	shards []chan *nats.Msg
	done   chan struct{}
	wg     sync.WaitGroup

	mu       sync.RWMutex
	handlers map[*nats.Subscription]nats.MsgHandler
}

// dispatchDepth is each shard's channel capacity: a burst of this many
// messages for one shard's sessions is absorbed while its goroutine works.
const dispatchDepth = 32 << 10

func newDispatcher() *dispatcher {
	n := max(4, 2*runtime.GOMAXPROCS(0))
	d := &dispatcher{
		seed:     maphash.MakeSeed(),
		shards:   make([]chan *nats.Msg, n),
		done:     make(chan struct{}),
		handlers: make(map[*nats.Subscription]nats.MsgHandler),
	}
	for i := range d.shards {
		d.shards[i] = make(chan *nats.Msg, dispatchDepth)
		d.wg.Add(1)
		go d.run(d.shards[i])
	}
	return d
}

// subscribe subscribes nc to subject; h handles its messages on key's
// shard. h runs after subscribe returns: a message that arrives first waits.
func (d *dispatcher) subscribe(nc *nats.Conn, subject, key string, h nats.MsgHandler) (*nats.Subscription, error) {
	ch := d.shards[maphash.String(d.seed, key)%uint64(len(d.shards))]
	d.mu.Lock()
	defer d.mu.Unlock()
	sub, err := nc.ChanSubscribe(subject, ch)
	if err != nil {
		return nil, err
	}
	d.handlers[sub] = h
	return sub, nil
}

// unsubscribe ends sub; messages of it still in a channel are dropped.
func (d *dispatcher) unsubscribe(sub *nats.Subscription) {
	_ = sub.Unsubscribe()
	d.mu.Lock()
	delete(d.handlers, sub)
	d.mu.Unlock()
}

func (d *dispatcher) run(ch chan *nats.Msg) {
	defer d.wg.Done()
	for {
		select {
		case <-d.done:
			return
		case m := <-ch:
			d.mu.RLock()
			h := d.handlers[m.Sub]
			d.mu.RUnlock()
			if h != nil {
				h(m)
			}
		}
	}
}

// stop ends the goroutines, once every subscription is gone. The channels
// stay open: the caller's NATS connection may still hold a message for one.
func (d *dispatcher) stop() {
	close(d.done)
	d.wg.Wait()
}
