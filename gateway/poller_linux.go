//go:build linux

package gateway

import (
	"errors"
	"fmt"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller watches the sockets of parked connections: connections whose
// client has sent nothing for parkAfter, and whose reader goroutine has
// therefore ended. One epoll instance and one goroutine serve a gateway;
// when a parked socket becomes readable (a frame, a close, a reset), the
// poller starts a reader goroutine for it again (conn.wake).
//
// Each socket is registered level-triggered and one-shot: an event
// disarms it, and the next park arms it again. Arming checks the socket's
// state, so bytes that arrived before it are not missed. Events carry a
// token, not the descriptor, so an event that races with a connection's
// end finds nothing rather than a later connection on the same number.
type poller struct {
	epfd, wakefd int
	done         chan struct{}

	mu     sync.Mutex
	conns  map[uint32]*conn
	tokens map[*conn]uint32
	next   uint32
	closed bool
}

const pollEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("gateway: epoll: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("gateway: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN} // token 0: stop
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("gateway: epoll: %w", err)
	}
	p := &poller{epfd: epfd, wakefd: wakefd, done: make(chan struct{}),
		conns: make(map[uint32]*conn), tokens: make(map[*conn]uint32)}
	go p.run()
	return p, nil
}

func (p *poller) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return // only a bug gets here: the parked connections are left to their ping timeout
		}
		for _, ev := range events[:n] {
			token := uint32(ev.Fd)
			if token == 0 {
				return
			}
			p.mu.Lock()
			c := p.conns[token]
			p.mu.Unlock()
			if c != nil {
				c.wake()
			}
		}
	}
}

// arm registers c's socket, or arms it again, for one readiness event.
func (p *poller) arm(c *conn, rc syscall.RawConn) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return errPollerClosed
	}
	op, token := unix.EPOLL_CTL_MOD, p.tokens[c]
	if token == 0 {
		op = unix.EPOLL_CTL_ADD
		for token == 0 || p.conns[token] != nil {
			p.next++
			token = p.next
		}
		p.conns[token], p.tokens[c] = c, token
	}
	p.mu.Unlock()
	var err error
	ctlErr := rc.Control(func(fd uintptr) { // the descriptor stays open meanwhile
		ev := unix.EpollEvent{Events: pollEvents, Fd: int32(token)}
		err = unix.EpollCtl(p.epfd, op, int(fd), &ev)
	})
	return errors.Join(ctlErr, err)
}

// remove forgets c's socket; it must come before the socket is closed.
func (p *poller) remove(c *conn, rc syscall.RawConn) {
	p.mu.Lock()
	token, ok := p.tokens[c]
	delete(p.tokens, c)
	delete(p.conns, token)
	p.mu.Unlock()
	if ok {
		_ = rc.Control(func(fd uintptr) { _ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
	}
}

// close stops the poller goroutine and waits for it; the gateway's
// connections have all ended. Safe to call more than once.
func (p *poller) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	_, _ = unix.Write(p.wakefd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	<-p.done
	unix.Close(p.epfd)
	unix.Close(p.wakefd)
}
