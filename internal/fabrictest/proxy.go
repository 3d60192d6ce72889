package fabrictest

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
)

// Proxy is a TCP proxy on loopback that forwards to a gateway: tests use it
// to cut connections, refuse new ones, and move clients to another gateway.
type Proxy struct {
	ln net.Listener

	mu      sync.Mutex
	target  string
	refuse  bool
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
	closing bool
}

// StartProxy starts a proxy to the host:port of a ws:// URL.
func StartProxy(t testing.TB, targetURL string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, conns: make(map[net.Conn]struct{})}
	p.SetTarget(targetURL)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// URL returns the proxy's ws:// URL.
func (p *Proxy) URL() string { return "ws://" + p.ln.Addr().String() + "/ws" }

// SetTarget points new connections at the gateway of a ws:// URL.
func (p *Proxy) SetTarget(url string) {
	host := strings.TrimPrefix(url, "ws://")
	if i := strings.IndexByte(host, '/'); i >= 0 {
		host = host[:i]
	}
	p.mu.Lock()
	p.target = host
	p.mu.Unlock()
}

// Refuse makes the proxy close new connections at once (true) or forward
// them again (false).
func (p *Proxy) Refuse(refuse bool) {
	p.mu.Lock()
	p.refuse = refuse
	p.mu.Unlock()
}

// Cut closes every open connection, as a network failure would.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		target, refuse, closing := p.target, p.refuse, p.closing
		p.mu.Unlock()
		if refuse || closing {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		p.conns[up] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}
