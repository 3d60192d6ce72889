package gateway

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
)

// maxKeptReadBuffer is the largest frame buffer kept for reuse.
const maxKeptReadBuffer = 64 << 10

// closeGrace bounds the wait for the client's answer to our close frame, and
// the write of that close frame.
const closeGrace = time.Second

var (
	pingFrame = protocol.AppendServerFrame(nil, protocol.TypePing, "", 0, nil, "")
	pongFrame = protocol.AppendServerFrame(nil, protocol.TypePong, "", 0, nil, "")
)

// conn is one WebSocket connection. Its reader goroutine (serve) owns it: it
// parses every frame, and it alone tears the connection down. Frames to the
// client go through enqueue, into a queue capped in bytes that a writer
// goroutine drains; the writer runs only while the queue holds frames.
type conn struct {
	gw   *Gateway
	ws   *websocket.Conn
	logp atomic.Pointer[slog.Logger] // gains the client's name and session id after hello

	sess *session // set by the reader after hello; read-only afterwards

	// Authentication (auth.go). bearer is the upgrade request's
	// Authorization token until hello uses it; ident is the client's
	// identity (reader only, after hello); countedUser is the user whose
	// connection count this connection holds.
	bearer      string
	ident       *identity
	countedUser string

	dec        protocol.FrameDecoder
	rbuf       *bytes.Buffer // the frame being handled; nil between frames (reader only)
	peerClosed bool          // the client's close frame arrived (reader only)

	// The message rate (reader only): limiter is nil when unlimited;
	// refused counts the frames refused since refusedSince.
	limiter      *rate.Limiter
	refused      int
	refusedSince time.Time

	wmu       sync.Mutex
	queue     [][]byte
	spare     [][]byte // the previous batch's backing array, reused
	queued    int      // bytes queued or being written
	writing   bool     // a writer goroutine is running
	closing   bool     // close was called: no more frames are queued
	closeMsg  []byte   // a close frame for the running writer to send last
	closeCode protocol.CloseCode
	stopping  atomic.Bool // closing, readable without wmu by the writer
	pingTimer *time.Timer
	// expiryTimer closes the connection when its token has expired and
	// the refresh grace has passed.
	expiryTimer *time.Timer
	writers     sync.WaitGroup
}

func newConn(g *Gateway, ws *websocket.Conn, bearer string) *conn {
	ws.SetReadLimit(g.cfg.MaxFrameBytes)
	c := &conn{gw: g, ws: ws, bearer: bearer}
	if g.cfg.MessageRate > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(g.cfg.MessageRate), g.cfg.MessageBurst)
	}
	c.logp.Store(g.log.With("remote", ws.RemoteAddr().String()))
	return c
}

// logger returns the connection's logger; any goroutine may call it.
func (c *conn) logger() *slog.Logger { return c.logp.Load() }

// serve runs the connection: hello, then frames until the connection ends.
func (c *conn) serve() {
	defer c.teardown()
	if !c.hello() {
		c.drain()
		return
	}
	c.readFrames()
}

// readNext reads the next text message into c.rbuf. It handles binary frames
// and read errors itself, returning ok=false when the reader must stop.
func (c *conn) readNext(deadline time.Duration, onTimeout protocol.CloseCode, timeoutReason string) (ok bool) {
	if !c.stopping.Load() { // a closing connection keeps its close deadline
		_ = c.ws.SetReadDeadline(time.Now().Add(deadline))
	}
	mt, r, err := c.ws.NextReader()
	if err == nil && mt == websocket.BinaryMessage {
		c.close(protocol.CloseUnsupported, "binary frames are not supported")
		return false
	}
	if err == nil {
		c.rbuf = readBuffers.Get().(*bytes.Buffer)
		_, err = c.rbuf.ReadFrom(r)
	}
	if err == nil {
		c.gw.metrics.bytesIn.Add(float64(c.rbuf.Len()))
		if !utf8.Valid(c.rbuf.Bytes()) { // RFC 6455 §8.1: fail the connection
			c.releaseRead()
			c.close(protocol.CloseInvalidUTF8, "text frame is not valid UTF-8")
			return false
		}
		return true
	}
	c.releaseRead()
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		c.peerClosed = true
		c.setCloseCode(protocol.CloseCode(ce.Code))
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has already sent 1009.
		c.markClosing(protocol.CloseTooLarge)
		c.logger().Info("frame too large", "limit", c.gw.cfg.MaxFrameBytes)
	case errors.As(err, &ne) && ne.Timeout():
		c.close(onTimeout, timeoutReason)
	}
	return false
}

// readBuffers holds the buffers frames are read into. A connection holds
// one only while it handles a frame: an idle connection holds none.
var readBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// releaseRead returns the frame buffer to readBuffers, unless a rare large
// frame grew it past maxKeptReadBuffer.
func (c *conn) releaseRead() {
	if c.rbuf == nil {
		return
	}
	if c.rbuf.Cap() <= maxKeptReadBuffer {
		c.rbuf.Reset()
		readBuffers.Put(c.rbuf)
	}
	c.rbuf = nil
}

// hello reads the first frame, which must be sys/hello, opens or resumes the
// session and sends sys/welcome.
func (c *conn) hello() bool {
	if !c.readNext(c.gw.cfg.HelloTimeout, protocol.CloseHelloTimeout, "no sys/hello in time") {
		return false
	}
	f, err := c.dec.Decode(c.rbuf.Bytes())
	if err != nil || f.Type != protocol.TypeHello {
		c.releaseRead()
		c.close(protocol.CloseProtocol, "the first frame must be sys/hello")
		return false
	}
	h, err := protocol.DecodeHello(f.Payload) // copies what it keeps
	c.releaseRead()
	if err != nil {
		c.close(protocol.CloseProtocol, "invalid sys/hello payload")
		return false
	}
	if h.Client != "" {
		c.logp.Store(c.logger().With("client", truncate(h.Client)))
	}
	if !c.authenticateHello(&h) {
		return false
	}
	s, err := c.gw.openSession(c, &h)
	if err != nil {
		c.logger().Warn("session open failed", "err", err)
		c.close(protocol.CloseInternal, "session could not be opened")
		return false
	}
	c.sess = s
	c.logp.Store(c.logger().With("session", s.id))
	c.wmu.Lock()
	if !c.closing {
		c.pingTimer = time.AfterFunc(c.gw.cfg.PingInterval, c.ping)
	}
	c.wmu.Unlock()
	return true
}

func (c *conn) readFrames() {
	idle := 2 * c.gw.cfg.PingInterval
	for c.readNext(idle, protocol.ClosePingTimeout, "no frame for two ping intervals") {
		if !c.stopping.Load() { // closing: read only to see the client's close frame
			// A request's payload goes to NATS before handleFrame returns
			// (durable mode copies it): the buffer is free after it.
			c.handleFrame(c.rbuf.Bytes())
		}
		c.releaseRead()
	}
	c.drain()
}

// handleFrame dispatches one client frame after hello.
func (c *conn) handleFrame(b []byte) {
	f, err := c.dec.Decode(b)
	if c.limiter != nil && !c.limiter.Allow() {
		c.rateLimited(&f, err == nil)
		return
	}
	if err != nil {
		c.reject("", err)
		return
	}
	switch f.Type {
	case protocol.TypePong:
	case protocol.TypePing:
		c.enqueue(pongFrame)
	case protocol.TypeRefresh:
		c.refresh(&f)
	case protocol.TypeCancel:
		if err := subjects.ValidateID(f.ID); err != nil {
			c.reject("", protocol.Errorf(protocol.CodeBadRequest, "sys/cancel needs a valid id: %v", err))
			return
		}
		c.sess.cancel(f.ID)
	case protocol.TypeHello:
		c.reject(validID(f), protocol.Errorf(protocol.CodeBadRequest, "sys/hello is only valid as the first frame"))
	default:
		if err := subjects.ValidateRoute(f.Type); err != nil {
			c.reject(validID(f), protocol.Errorf(protocol.CodeBadRequest, "type %q: %v", truncate(f.Type), err))
			return
		}
		if !f.HasID {
			c.reject("", protocol.Errorf(protocol.CodeBadRequest, "a request needs an id"))
			return
		}
		if err := subjects.ValidateID(f.ID); err != nil {
			c.reject("", protocol.Errorf(protocol.CodeBadRequest, "%v", err))
			return
		}
		if err := c.sess.start(&f); err != nil {
			c.reject(f.ID, err)
		}
	}
}

func validID(f protocol.ClientFrame) string {
	if f.HasID && subjects.ValidateID(f.ID) == nil {
		return f.ID
	}
	return ""
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// rateLimited refuses a frame over the connection's message rate, and
// closes a client refused more than MessageBurst frames within
// RateLimitWindow: it goes on sending after being told.
func (c *conn) rateLimited(f *protocol.ClientFrame, decoded bool) {
	cfg := &c.gw.cfg
	c.gw.metrics.rateLimited.Inc()
	if now := time.Now(); now.Sub(c.refusedSince) > RateLimitWindow {
		c.refusedSince, c.refused = now, 0
	}
	c.refused++
	if c.refused > cfg.MessageBurst {
		c.close(protocol.CloseRateLimited, "message rate exceeded")
		return
	}
	e := protocol.Errorf(protocol.CodeRateLimited, "more than %g frames per second on this connection", cfg.MessageRate)
	if decoded && subjects.ValidateRoute(f.Type) == nil && f.HasID && subjects.ValidateID(f.ID) == nil &&
		c.sess.refuse(f, outcomeRateLimited, e) {
		return
	}
	c.reject(validID(*f), e)
}

// reject answers a frame the gateway cannot accept with sys/error; the
// connection stays open.
func (c *conn) reject(id string, err error) {
	e, ok := protocol.AsError(err)
	if !ok {
		e = protocol.Errorf(protocol.CodeBadRequest, "%v", err)
	}
	c.gw.metrics.badFrames.Inc()
	c.logger().Debug("frame rejected", "id", id, "code", e.Code, "reason", e.Message)
	c.enqueue(protocol.AppendServerFrame(nil, protocol.TypeError, id, 0, e.Payload(), ""))
}

func (c *conn) ping() {
	c.wmu.Lock()
	if c.closing {
		c.wmu.Unlock()
		return
	}
	ok := c.enqueueLocked(pingFrame)
	c.pingTimer.Reset(c.gw.cfg.PingInterval)
	c.wmu.Unlock()
	if !ok {
		c.overflow()
	}
}

// enqueue queues a frame for the client. A client whose queue would exceed
// MaxQueueBytes is closed as a slow consumer: one slow client never blocks
// the NATS callbacks that fan events out. frame must not be modified later.
func (c *conn) enqueue(frame []byte) {
	c.wmu.Lock()
	overflow := !c.closing && !c.enqueueLocked(frame)
	c.wmu.Unlock()
	if overflow {
		c.overflow()
	}
}

// roomy reports whether the outbound queue is under half full, or closing.
func (c *conn) roomy() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.closing || c.queued < c.gw.cfg.MaxQueueBytes/2
}

// overflow closes a client whose outbound queue is full.
func (c *conn) overflow() {
	c.gw.metrics.slowConsumers.Inc()
	c.logger().Warn("slow consumer: outbound queue full", "limit_bytes", c.gw.cfg.MaxQueueBytes)
	c.close(protocol.CloseSlowConsumer, "slow consumer")
}

func (c *conn) enqueueLocked(frame []byte) bool {
	if c.closing {
		return true
	}
	if c.queued+len(frame) > c.gw.cfg.MaxQueueBytes {
		return false
	}
	c.queue = append(c.queue, frame)
	c.queued += len(frame)
	if !c.writing {
		c.writing = true
		c.writers.Add(1)
		go c.writeLoop()
	}
	return true
}

// writeLoop writes queued frames until the queue is empty, then exits. When
// the connection is closed while it runs, it sends the close frame after the
// frame in progress, so that the close frame is never lost behind it.
func (c *conn) writeLoop() {
	defer c.writers.Done()
	for {
		c.wmu.Lock()
		if c.closing {
			msg := c.closeMsg
			c.closeMsg = nil
			c.writing = false
			c.wmu.Unlock()
			if msg != nil {
				_ = c.ws.SetWriteDeadline(time.Now().Add(c.gw.cfg.WriteTimeout))
				_ = c.ws.WriteMessage(websocket.CloseMessage, msg)
			}
			return
		}
		if len(c.queue) == 0 {
			c.writing = false
			c.wmu.Unlock()
			return
		}
		batch := c.queue
		c.queue = c.spare[:0]
		c.wmu.Unlock()

		written := 0
		if !c.stopping.Load() {
			if err := c.writeFrames(batch); err != nil {
				// A close frame cannot follow a frame cut short: the client
				// sees the connection drop (1006) and reconnects.
				c.logger().Warn("write failed; dropping the connection", "err", err, "write_timeout", c.gw.cfg.WriteTimeout.String())
				c.abort()
				c.wmu.Lock()
				c.writing = false
				c.wmu.Unlock()
				return
			}
			for _, frame := range batch {
				written += len(frame)
			}
		}
		c.gw.metrics.bytesOut.Add(float64(written))
		c.wmu.Lock()
		c.queued -= sizeOf(batch)
		clear(batch)
		c.spare = batch[:0]
		c.wmu.Unlock()
	}
}

// writeFrames writes each of frames as one WebSocket text frame, all with
// one writev system call (net.Buffers): under load a batch holds many
// frames, and a write per frame was most of the gateway's CPU. The frames
// go to the socket directly, not through gorilla's writer: server frames
// are unmasked and uncompressed, so a frame is a 2–10 byte header and the
// payload. gorilla writes only control frames (pong, close), each with one
// write call, which the socket serializes with this one.
func (c *conn) writeFrames(frames [][]byte) error {
	v := writeVectors.Get().(*writeVector)
	defer v.release()
	for _, f := range frames {
		v.hdrs = appendFrameHeader(v.hdrs, len(f))
	}
	off := 0
	for _, f := range frames {
		n := frameHeaderLen(len(f))
		v.bufs = append(v.bufs, v.hdrs[off:off+n], f)
		off += n
	}
	nc := c.ws.NetConn()
	_ = nc.SetWriteDeadline(time.Now().Add(c.gw.cfg.WriteTimeout))
	wb := v.bufs // WriteTo consumes its copy
	_, err := wb.WriteTo(nc)
	return err
}

// writeVector is a batch's frame headers and writev vector, pooled so that
// neither stays with an idle connection.
type writeVector struct {
	hdrs []byte
	bufs net.Buffers
}

var writeVectors = sync.Pool{New: func() any { return new(writeVector) }}

func (v *writeVector) release() {
	if cap(v.bufs) > 4096 { // a rare huge batch: let it go
		return
	}
	clear(v.bufs)
	v.hdrs, v.bufs = v.hdrs[:0], v.bufs[:0]
	writeVectors.Put(v)
}

// appendFrameHeader appends the header of an unmasked, final text frame of
// n payload bytes (RFC 6455 §5.2).
func appendFrameHeader(b []byte, n int) []byte {
	const finText = 0x80 | 0x1
	switch {
	case n < 126:
		return append(b, finText, byte(n))
	case n <= 0xFFFF:
		return append(b, finText, 126, byte(n>>8), byte(n))
	default:
		return append(b, finText, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// frameHeaderLen is the length of appendFrameHeader's header for n bytes.
func frameHeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xFFFF:
		return 4
	default:
		return 10
	}
}

func sizeOf(frames [][]byte) int {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	return n
}

func (c *conn) setCloseCode(code protocol.CloseCode) {
	c.wmu.Lock()
	if c.closeCode == 0 {
		c.closeCode = code
	}
	c.wmu.Unlock()
}

// markClosing stops queueing; it reports whether this call did it.
func (c *conn) markClosing(code protocol.CloseCode) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing {
		return false
	}
	c.closing = true
	c.stopping.Store(true)
	if code != 0 {
		c.closeCode = code
	}
	c.queue = nil
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	if c.expiryTimer != nil {
		c.expiryTimer.Stop()
	}
	return true
}

// close starts the closing handshake with code: it drops queued frames,
// sends the close frame (after the frame being written, if any) and gives
// the client time to answer before the reader tears the connection down.
// Safe to call from any goroutine, more than once; only the first call has
// effect.
func (c *conn) close(code protocol.CloseCode, reason string) {
	msg := websocket.FormatCloseMessage(int(code), reason)
	c.wmu.Lock()
	if c.closing {
		c.wmu.Unlock()
		return
	}
	c.closing = true
	c.stopping.Store(true)
	c.closeCode = code
	c.queue = nil
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	if c.expiryTimer != nil {
		c.expiryTimer.Stop()
	}
	writerRunning := c.writing
	if writerRunning {
		c.closeMsg = msg
	}
	c.wmu.Unlock()
	c.logger().Info("closing connection", "code", int(code), "reason", reason)
	wait := closeGrace
	if writerRunning {
		wait += c.gw.cfg.WriteTimeout
	} else {
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace))
	}
	_ = c.ws.SetReadDeadline(time.Now().Add(wait))
}

// abort ends the connection at once, without a closing handshake.
func (c *conn) abort() {
	c.markClosing(0)
	_ = c.ws.NetConn().Close()
}

// drain waits, up to closeGrace, for the client to answer our close frame, so
// that closing the socket does not reset it while the client still reads.
func (c *conn) drain() {
	c.wmu.Lock()
	closing := c.closing
	c.wmu.Unlock()
	if !closing || c.peerClosed {
		return
	}
	raw := c.ws.NetConn()
	_ = raw.SetReadDeadline(time.Now().Add(closeGrace))
	buf := make([]byte, 4096)
	for limit := 4 * c.gw.cfg.MaxFrameBytes; limit > 0; {
		n, err := raw.Read(buf)
		limit -= int64(n)
		if err != nil {
			return
		}
	}
}

// teardown runs once, on the reader goroutine, when the connection ends.
func (c *conn) teardown() {
	c.markClosing(0)
	_ = c.ws.NetConn().Close()
	c.writers.Wait()
	c.wmu.Lock()
	code := c.closeCode
	c.wmu.Unlock()
	if code == 0 {
		code = 1006 // abnormal closure: no close frame
	}
	c.gw.metrics.closed(int(code))
	c.logger().Debug("connection closed", "code", int(code))
	if c.sess != nil {
		c.sess.detach(c, code == protocol.CloseNormal)
	}
	if c.countedUser != "" {
		c.gw.removeUserConn(c.countedUser)
	}
	c.gw.removeConn(c)
}
