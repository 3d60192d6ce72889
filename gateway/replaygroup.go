package gateway

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Replays that start together read the store through one consumer.
//
// A replay reads a request's stored events through a JetStream consumer
// filtered on the request's subjects. JetStream indexes only the first and
// last message of each subject, so such a consumer walks every message
// stored between two of the request's events: with many requests
// interleaved in the stream, hundreds of messages per event. When a
// gateway dies, its clients resume on the others all at once, and hundreds
// of replays each walking the same stretch of the stream were most of the
// NATS server's CPU. A replay group is one ordered consumer filtered on the
// subjects of every replay that started within replayWindow of the first:
// it walks that stretch once, and hands each message to its request's
// replay.
//
// A group cannot wait for one slow client, so it does not pace: a member
// whose connection has no room in its queue leaves the group
// (errReplaySlow); the session starts its replay again from what the
// client has, and that replay runs alone, paced, on its own consumer.

const (
	// replayWindow is how long a replay waits for others to join its group.
	replayWindow = 10 * time.Millisecond
	// maxReplayGroup bounds the requests of one group (its consumer's
	// filter subjects).
	maxReplayGroup = 256
)

// errReplaySlow ends a member's replay in its group: its client has no
// room for what the group reads. Its next replay runs alone.
var errReplaySlow = errors.New("gateway: replay left its group: the client is slow")

var errReplayReplaced = errors.New("gateway: a newer replay of the same request started")

type replayKey struct{ session, id string }

// replayer is one request's replay in a group.
type replayer struct {
	key     replayKey
	pace    func(context.Context) error
	deliver func(jetstream.Msg)
	ended   func(error)
	started chan error  // the group's consumer was made, or not
	stopped atomic.Bool // set under group.mu; read without it to skip messages
	group   *replayGroup
}

// replayGroups forms the groups of a store.
type replayGroups struct {
	window time.Duration // 0 means replayWindow

	mu      sync.Mutex
	forming *replayGroup
	solo    map[replayKey]bool // requests whose next replay runs alone
}

// replayGroup is one consumer and the replays it serves.
type replayGroup struct {
	st      *store
	members map[replayKey]*replayer // fixed once the group starts

	mu      sync.Mutex
	started bool   // the consumer was made: stop is set and live counts
	live    int    // members not stopped
	stop    func() // the consumer's
}

// replayGrouped is store.replay for a request whose replay may share a
// consumer: it joins the group being formed, or forms one, and returns once
// the group's consumer is made.
func (st *store) replayGrouped(ctx context.Context, key replayKey, pace func(context.Context) error, deliver func(jetstream.Msg), ended func(error)) (stop func(), err error) {
	m := &replayer{key: key, pace: pace, deliver: deliver, ended: ended, started: make(chan error, 1)}
	gs := &st.groups
	gs.mu.Lock()
	g := gs.forming
	if g == nil || len(g.members) >= maxReplayGroup {
		g = &replayGroup{st: st, members: make(map[replayKey]*replayer)}
		gs.forming = g
		window := gs.window
		if window == 0 {
			window = replayWindow
		}
		time.AfterFunc(window, func() { gs.start(g) })
	}
	if old := g.members[key]; old != nil {
		old.started <- errReplayReplaced
	}
	g.members[key] = m
	m.group = g
	gs.mu.Unlock()

	select {
	case err := <-m.started:
		if err != nil {
			return nil, err
		}
		return m.stop, nil
	case <-ctx.Done():
		m.stop() // if the group starts meanwhile, it skips this member
		return nil, ctx.Err()
	}
}

// start makes g's consumer and starts its members' replays.
func (gs *replayGroups) start(g *replayGroup) {
	gs.mu.Lock()
	if gs.forming == g {
		gs.forming = nil
	}
	members := g.members // no member joins after this
	gs.mu.Unlock()

	filters := make([]string, 0, len(members))
	for key := range members {
		filters = append(filters, g.st.space.Reply(key.session, key.id)+".>")
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	stop, err := g.st.consume(ctx, filters, nil, g.receive, g.failed)
	if err != nil {
		for _, m := range members {
			m.started <- err
		}
		return
	}
	g.mu.Lock()
	g.started, g.stop = true, stop
	for _, m := range members {
		if !m.stopped.Load() {
			g.live++
		}
	}
	idle := g.live == 0 // every member gave up while the consumer was made
	g.mu.Unlock()
	for _, m := range members {
		m.started <- nil
	}
	if idle {
		stop()
	}
}

// receive hands one stored message to its request's replay.
func (g *replayGroup) receive(msg jetstream.Msg) {
	session, id, ok := g.st.space.EventRequest(msg.Subject())
	if !ok {
		return
	}
	m := g.members[replayKey{session, id}]
	if m == nil || m.stopped.Load() {
		return
	}
	if m.pace(doneContext) != nil { // no room now: it goes on alone
		if m.leave() {
			g.st.groups.markSolo(m.key)
			go m.ended(errReplaySlow)
		}
		return
	}
	m.deliver(msg)
}

// failed ends every member's replay: the consumer failed for good.
func (g *replayGroup) failed(err error) {
	for _, m := range g.members {
		if m.leave() {
			go m.ended(err)
		}
	}
}

// stop ends m's part in its group; the group's consumer stops with its
// last member.
func (m *replayer) stop() { m.leave() }

// leave marks m stopped and reports whether this call did it.
func (m *replayer) leave() bool {
	g := m.group
	g.mu.Lock()
	if m.stopped.Load() {
		g.mu.Unlock()
		return false
	}
	m.stopped.Store(true)
	var stop func()
	if g.started {
		if g.live--; g.live == 0 {
			stop = g.stop
		}
	}
	g.mu.Unlock()
	if stop != nil {
		go stop()
	}
	return true
}

func (gs *replayGroups) markSolo(key replayKey) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if gs.solo == nil {
		gs.solo = make(map[replayKey]bool)
	}
	gs.solo[key] = true
}

// takeSolo reports whether key's next replay must run alone, and forgets it.
func (gs *replayGroups) takeSolo(key replayKey) bool {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	solo := gs.solo[key]
	delete(gs.solo, key)
	return solo
}

// doneContext is a context already done: a pace given it only checks.
var doneContext = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()
