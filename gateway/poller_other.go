//go:build !linux

package gateway

import (
	"errors"
	"syscall"
)

// poller parks idle connections on Linux (epoll); elsewhere connections
// never park, and each keeps its reader goroutine.
type poller struct{}

func newPoller() (*poller, error) { return nil, errors.New("gateway: no poller on this system") }

func (p *poller) arm(*conn, syscall.RawConn) error { return errPollerClosed }
func (p *poller) remove(*conn, syscall.RawConn)    {}
func (p *poller) close()                           {}
