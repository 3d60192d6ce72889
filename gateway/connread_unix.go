//go:build unix

package gateway

import (
	"os"
	"syscall"
)

const rawReadSupported = true

// readFD is the raw read's callback: one non-blocking read, into
// readDirect's slice or into a buffer taken for it. When the socket has
// nothing, it gives the buffer back and asks the runtime to wait for
// readability (false), so that a connection waiting there holds no buffer.
func (cr *connReader) readFD(fd uintptr) bool {
	b := cr.direct
	if b == nil {
		cr.acquire()
		b = *cr.buf
	}
	var n int
	var err error
	for {
		n, err = syscall.Read(int(fd), b)
		if err != syscall.EINTR {
			break
		}
	}
	if err == syscall.EAGAIN {
		if cr.direct == nil {
			cr.release()
		}
		return false
	}
	if err != nil {
		n, err = 0, os.NewSyscallError("read", err)
	}
	cr.n, cr.err = n, err
	return true
}
