package workers

import (
	"sync"
	"time"
)

// runners runs handlers on goroutines it keeps for a while once their
// handler returns, instead of a new goroutine per request: a new goroutine
// starts with a small stack, and a handler's (JSON, NATS publishing) grows
// it in several copies, which under load was a sixth of a worker's CPU. At
// most as many run as the worker's semaphore admits; an idle one exits
// after runnerIdle, and all of them at stop.
type runners struct {
	work chan func() // unbuffered: a send succeeds only if a runner is idle
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// runnerIdle is how long a runner waits for its next handler.
const runnerIdle = 10 * time.Second

func newRunners() *runners {
	return &runners{work: make(chan func()), done: make(chan struct{})}
}

// run runs f on an idle runner, or on a new one.
func (r *runners) run(f func()) {
	select {
	case r.work <- f:
	default:
		r.wg.Add(1)
		go r.loop(f)
	}
}

func (r *runners) loop(f func()) {
	defer r.wg.Done()
	idle := time.NewTimer(runnerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(runnerIdle)
		select {
		case f = <-r.work:
		case <-idle.C:
			return
		case <-r.done:
			return
		}
	}
}

// stop ends the idle runners and waits for them; call it once no handler
// runs. Safe to call more than once.
func (r *runners) stop() {
	r.once.Do(func() { close(r.done) })
	r.wg.Wait()
}
