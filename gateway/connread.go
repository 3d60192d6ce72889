package gateway

import (
	"io"
	"net"
	"sync"
	"syscall"
)

// readBufferSize is the size of a connection's read buffer while it has
// one: most frames fit in it.
const readBufferSize = 4096

// socketBuffers holds the read buffers of connections that have bytes
// buffered. A connection waiting for its client holds none.
var socketBuffers = sync.Pool{New: func() any { b := make([]byte, readBufferSize); return &b }}

// connReader is a connection's buffered reader (reader goroutine only). It
// holds a buffer from socketBuffers only while bytes are buffered. Where the
// socket gives raw access (rc), it waits for the client without a buffer,
// and a connection can park (conn.await).
type connReader struct {
	nc   net.Conn
	rc   syscall.RawConn // nil: reads block in nc.Read, holding a buffer
	buf  *[]byte         // nil while nothing is buffered
	r, w int

	// The raw read's callback (readFD, made once into readFn), what it
	// read (n, err), and where: direct, set by readDirect, else buf.
	direct []byte
	n      int
	err    error
	readFn func(fd uintptr) bool
}

func (cr *connReader) init(nc net.Conn) {
	cr.nc = nc
	if sc, ok := nc.(syscall.Conn); ok && rawReadSupported {
		if rc, err := sc.SyscallConn(); err == nil {
			cr.rc = rc
			cr.readFn = cr.readFD
		}
	}
}

// Buffered is the number of bytes read from the socket and not yet
// consumed.
func (cr *connReader) Buffered() int { return cr.w - cr.r }

// Read reads from the buffer, filling it with one read of the socket when
// it is empty. It implements io.Reader for the frame reader.
func (cr *connReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if cr.r == cr.w {
		if len(p) >= readBufferSize { // a large payload: straight into it
			return cr.readDirect(p)
		}
		if err := cr.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, (*cr.buf)[cr.r:cr.w])
	cr.r += n
	if cr.r == cr.w {
		cr.release()
	}
	return n, nil
}

// fill reads what the socket has, waiting for it if need be, into an empty
// buffer. The read deadline set on the connection applies.
func (cr *connReader) fill() error {
	if cr.rc == nil {
		cr.acquire()
		n, err := cr.nc.Read(*cr.buf)
		return cr.filled(n, err)
	}
	cr.n, cr.err = 0, nil
	if err := cr.rc.Read(cr.readFn); err != nil { // a deadline, or the connection closed
		cr.release()
		return err
	}
	return cr.filled(cr.n, cr.err)
}

// readDirect reads into p, not through the buffer (which is empty).
func (cr *connReader) readDirect(p []byte) (int, error) {
	if cr.rc == nil {
		return cr.nc.Read(p)
	}
	cr.n, cr.err, cr.direct = 0, nil, p
	err := cr.rc.Read(cr.readFn)
	cr.direct = nil
	if err != nil {
		return 0, err
	}
	if cr.n == 0 && cr.err == nil {
		return 0, io.EOF
	}
	return cr.n, cr.err
}

// filled records the n bytes a read put in the buffer; a read of nothing
// gives the buffer back and returns its error, io.EOF if it had none.
func (cr *connReader) filled(n int, err error) error {
	if n <= 0 {
		cr.release()
		if err == nil {
			err = io.EOF
		}
		return err
	}
	cr.r, cr.w = 0, n
	return nil // an error with bytes comes again on the next read
}

func (cr *connReader) acquire() {
	if cr.buf == nil {
		cr.buf = socketBuffers.Get().(*[]byte)
	}
}

func (cr *connReader) release() {
	if cr.buf != nil {
		socketBuffers.Put(cr.buf)
		cr.buf = nil
	}
	cr.r, cr.w = 0, 0
}
