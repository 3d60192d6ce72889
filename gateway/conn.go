package gateway

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/seed82ac63c1/fabric/internal/wsframe"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
)

// maxKeptReadBuffer is the largest frame buffer kept for reuse.
const maxKeptReadBuffer = 64 << 10

// closeGrace bounds the wait for the client's answer to our close frame, and
// the write of that close frame.
const closeGrace = time.Second

var errPollerClosed = errors.New("gateway: poller closed")

var (
	pingFrame = protocol.AppendServerFrame(nil, protocol.TypePing, "", 0, nil, "")
	pongFrame = protocol.AppendServerFrame(nil, protocol.TypePong, "", 0, nil, "")
)

// conn is one WebSocket connection after the handshake. Its reader
// goroutine (serve, then readFrames) owns it: it reads every frame
// (connReader and wsframe.Reader), and it alone tears the connection down.
// A client silent for ParkAfter parks its connection: the reader goroutine
// ends, and wake starts another when the client sends again or the
// connection is closed; there is never more than one. Frames to the client
// go through enqueue, into a queue capped in bytes that a writer goroutine
// drains; the writer runs only while the queue holds frames.
type conn struct {
	gw   *Gateway
	nc   net.Conn
	logf atomic.Pointer[logFields] // gains the client's name, user and session id in hello

	sess *session // set by the reader after hello; read-only afterwards

	// Authentication (auth.go). bearer is the upgrade request's
	// Authorization token until hello uses it; ident is the client's
	// identity (reader only, after hello); countedUser is the user whose
	// connection count this connection holds.
	bearer      string
	ident       *identity
	countedUser string

	// Reading (reader only): in buffers the socket, frames checks and
	// reassembles the client's frames, rbuf holds the message being read
	// or handled (nil between messages).
	in         connReader
	frames     wsframe.Reader
	rbuf       *bytes.Buffer
	peerClosed bool // the client's close frame arrived

	// parked: the connection waits on the gateway's poller, with no reader
	// goroutine; whoever swaps it to false starts one. lastFrame is when
	// the client's last message was read (UnixNano), for the ping timeout
	// of a parked connection.
	parked    atomic.Bool
	lastFrame atomic.Int64

	// The message rate (reader only): limiter is nil when unlimited;
	// refused counts the frames refused since refusedSince.
	limiter      *rate.Limiter
	refused      int
	refusedSince time.Time

	wmu       sync.Mutex
	queue     [][]byte
	spare     [][]byte // the previous batch's backing array, reused
	pong      []byte   // a whole pong frame for the writer to send first; only the latest ping is answered
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

func newConn(g *Gateway, nc net.Conn, bearer string) *conn {
	c := &conn{gw: g, nc: nc, bearer: bearer}
	c.in.init(nc)
	c.frames.Limit = g.cfg.MaxFrameBytes
	if g.cfg.MessageRate > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(g.cfg.MessageRate), g.cfg.MessageBurst)
	}
	c.logf.Store(&logFields{remote: nc.RemoteAddr().String()})
	return c
}

// logFields are the attributes of a connection's log lines. They are kept,
// and a logger made from them for each line, because a logger made once per
// connection costs about half a kilobyte that an idle connection would hold.
type logFields struct{ remote, client, user, session string }

// logger returns a logger with the connection's attributes; any goroutine
// may call it.
func (c *conn) logger() *slog.Logger {
	f := c.logf.Load()
	args := make([]any, 0, 8)
	args = append(args, "remote", f.remote)
	for _, kv := range [...]struct{ k, v string }{{"client", f.client}, {"user", f.user}, {"session", f.session}} {
		if kv.v != "" {
			args = append(args, kv.k, kv.v)
		}
	}
	return c.gw.log.With(args...)
}

// setLogFields changes the connection's log attributes (reader only).
func (c *conn) setLogFields(change func(*logFields)) {
	f := *c.logf.Load()
	change(&f)
	c.logf.Store(&f)
}

// serve runs the connection: hello, then frames until the connection ends
// or parks.
func (c *conn) serve() {
	if !c.hello() {
		c.end()
		return
	}
	c.readFrames()
}

// end finishes the connection, on its reader goroutine.
func (c *conn) end() {
	c.drain()
	c.teardown()
	c.gw.connWG.Done()
}

// readResult is how readNext ended.
type readResult int

const (
	readMessage readResult = iota // a text message is in c.rbuf
	readParked                    // the connection parked: the goroutine must return
	readEnded                     // the connection is over
)

// readNext reads the next text message into c.rbuf, answering the
// client's pings and close frame on the way. It handles binary messages,
// malformed frames and read errors itself (readEnded); readParked means
// the connection has parked and the goroutine must return without
// touching it.
func (c *conn) readNext(deadline time.Duration, onTimeout protocol.CloseCode, timeoutReason string) readResult {
	if !c.stopping.Load() { // a closing connection keeps its close deadline
		_ = c.nc.SetReadDeadline(time.Now().Add(deadline))
	}
	for {
		// Wait for the client here, holding no buffer; after ParkAfter,
		// park.
		if c.in.Buffered() == 0 && !c.frames.InMessage() {
			c.releaseRead() // empty: no message has begun
			if err := c.await(deadline); err == errParked {
				return readParked
			} else if err != nil {
				c.readFailed(err, onTimeout, timeoutReason)
				return readEnded
			}
		}
		if c.rbuf == nil {
			c.rbuf = readBuffers.Get().(*bytes.Buffer)
		}
		op, ctrl, err := c.frames.Next(&c.in, c.rbuf)
		if err != nil {
			c.readFailed(err, onTimeout, timeoutReason)
			return readEnded
		}
		switch op {
		case wsframe.OpText:
			c.gw.metrics.bytesIn.Add(float64(c.rbuf.Len()))
			if !utf8.Valid(c.rbuf.Bytes()) { // RFC 6455 §8.1: fail the connection
				c.releaseRead()
				c.close(protocol.CloseInvalidUTF8, "text frame is not valid UTF-8")
				return readEnded
			}
			c.lastFrame.Store(time.Now().UnixNano())
			return readMessage
		case wsframe.OpBinary:
			c.releaseRead()
			c.close(protocol.CloseUnsupported, "binary frames are not supported")
			return readEnded
		case wsframe.OpPing:
			c.enqueuePong(ctrl)
		case wsframe.OpClose:
			c.releaseRead()
			c.peerClose(ctrl)
			return readEnded
		}
		// A pong, or a ping answered: the message, if one is in progress,
		// goes on.
	}
}

// errParked is await's report that the connection has parked.
var errParked = errors.New("gateway: parked")

// await waits until the client has sent bytes and buffers them. A
// connection past hello that hears nothing for ParkAfter parks instead
// (errParked), unless it is closing. deadline is the wait readNext set.
func (c *conn) await(deadline time.Duration) error {
	parkAfter := c.gw.cfg.ParkAfter
	if c.sess == nil || c.in.rc == nil || parkAfter < 0 || parkAfter >= deadline || c.stopping.Load() {
		return c.in.fill()
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(parkAfter))
	err := c.in.fill()
	if err == nil {
		if !c.stopping.Load() { // the rest of the message gets readNext's deadline
			_ = c.nc.SetReadDeadline(time.Now().Add(deadline))
		}
		return nil
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) || c.stopping.Load() {
		return err // a closing connection's deadline is close's own
	}
	if c.park() {
		return errParked
	}
	if !c.stopping.Load() {
		_ = c.nc.SetReadDeadline(time.Now().Add(deadline - parkAfter))
	}
	return c.in.fill()
}

// park hands the connection to the gateway's poller and reports whether
// it did: the reader goroutine must then return at once, without touching
// the connection, since wake may already have started the next one.
func (c *conn) park() bool {
	p := c.gw.parkingPoller()
	if p == nil {
		return false
	}
	c.gw.metrics.parked.Inc() // each swap of parked to false decrements it
	c.parked.Store(true)
	if err := p.arm(c, c.in.rc); err != nil {
		// Not parked, unless a waker has already taken over.
		return !c.unpark()
	}
	// close sets stopping and then wakes: either that wake saw parked, or
	// this sees stopping and goes on reading here.
	if c.stopping.Load() && c.unpark() {
		return false
	}
	return true
}

// unpark swaps parked to false and reports whether this call did it: the
// caller then owns the reader's part of the connection.
func (c *conn) unpark() bool {
	if !c.parked.CompareAndSwap(true, false) {
		return false
	}
	c.gw.metrics.parked.Dec()
	return true
}

// wake starts a reader goroutine for a parked connection; it is a no-op
// for one that is not parked. The poller calls it when the socket becomes
// readable, close and abort when the connection must end.
func (c *conn) wake() {
	if c.unpark() {
		go c.readFrames()
	}
}

// readFailed ends reading after err from the socket or the frame reader.
func (c *conn) readFailed(err error, onTimeout protocol.CloseCode, timeoutReason string) {
	c.releaseRead()
	var pe *wsframe.ProtocolError
	var ne net.Error
	switch {
	case errors.As(err, &pe):
		c.close(protocol.CloseBadFrame, pe.Reason)
	case errors.Is(err, wsframe.ErrTooLarge):
		c.logger().Info("frame too large", "limit", c.gw.cfg.MaxFrameBytes)
		c.close(protocol.CloseTooLarge, "frame too large")
	case errors.As(err, &ne) && ne.Timeout():
		c.close(onTimeout, timeoutReason)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
	default:
		c.logger().Debug("read failed", "err", err)
	}
}

// peerClose handles the client's close frame: it answers with the same
// code (RFC 6455 §5.5.1), unless the gateway had closed first, and ends
// the connection. A malformed close frame is answered 1002.
func (c *conn) peerClose(payload []byte) {
	code, _, err := wsframe.ParseClose(payload)
	if err != nil {
		var pe *wsframe.ProtocolError
		errors.As(err, &pe)
		c.close(protocol.CloseBadFrame, pe.Reason)
		return
	}
	c.peerClosed = true
	c.setCloseCode(protocol.CloseCode(code))
	if !c.markClosing(0) {
		return // our close frame went first: this is the client's answer
	}
	msg := wsframe.AppendFrame(nil, wsframe.OpClose, wsframe.ClosePayload(code, ""))
	c.wmu.Lock()
	writerRunning := c.writing
	if writerRunning {
		c.closeMsg = msg
	}
	c.wmu.Unlock()
	if writerRunning {
		c.writers.Wait() // it sends the answer after the frame it is writing
		return
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(closeGrace))
	_, _ = c.nc.Write(msg)
}

// frameDecoders holds the decoders of client frames: a decoder's state is a
// few hundred bytes that an idle connection need not hold.
var frameDecoders = sync.Pool{New: func() any { return new(protocol.FrameDecoder) }}

// decodeFrame decodes a client frame; its payload aliases b.
func decodeFrame(b []byte) (protocol.ClientFrame, error) {
	d := frameDecoders.Get().(*protocol.FrameDecoder)
	defer frameDecoders.Put(d)
	return d.Decode(b)
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
	if c.readNext(c.gw.cfg.HelloTimeout, protocol.CloseHelloTimeout, "no sys/hello in time") != readMessage {
		return false // no session yet: it does not park
	}
	f, err := decodeFrame(c.rbuf.Bytes())
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
		c.setLogFields(func(f *logFields) { f.client = truncate(h.Client) })
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
	c.setLogFields(func(f *logFields) { f.session = s.id })
	c.wmu.Lock()
	if !c.closing {
		c.pingTimer = time.AfterFunc(c.gw.cfg.PingInterval, c.ping)
	}
	c.wmu.Unlock()
	return true
}

// readFrames reads and handles the client's frames until the connection
// ends or parks.
func (c *conn) readFrames() {
	idle := 2 * c.gw.cfg.PingInterval
	for {
		switch c.readNext(idle, protocol.ClosePingTimeout, "no frame for two ping intervals") {
		case readParked:
			return
		case readEnded:
			c.end()
			return
		}
		if !c.stopping.Load() { // closing: read only to see the client's close frame
			// A request's payload goes to NATS before handleFrame returns
			// (durable mode copies it): the buffer is free after it.
			c.handleFrame(c.rbuf.Bytes())
		}
		c.releaseRead()
	}
}

// handleFrame dispatches one client frame after hello.
func (c *conn) handleFrame(b []byte) {
	f, err := decodeFrame(b)
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
	if c.parked.Load() && time.Since(time.Unix(0, c.lastFrame.Load())) >= 2*c.gw.cfg.PingInterval {
		c.close(protocol.ClosePingTimeout, "no frame for two ping intervals")
		return
	}
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

// enqueuePong queues the answer to the client's WebSocket ping, ahead of
// queued frames. A pong not yet sent is replaced: only the latest ping
// needs an answer (RFC 6455 §5.5.3), so a ping flood costs no memory.
func (c *conn) enqueuePong(payload []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing {
		return
	}
	c.pong = wsframe.AppendFrame(c.pong[:0], wsframe.OpPong, payload)
	c.startWriterLocked()
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
	c.startWriterLocked()
	return true
}

func (c *conn) startWriterLocked() {
	if !c.writing {
		c.writing = true
		c.writers.Add(1)
		go c.writeLoop()
	}
}

// keptBatch is the largest batch slice (in frames) a connection keeps
// between bursts, so that a burst's queue needs no allocation.
const keptBatch = 16

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
				_ = c.nc.SetWriteDeadline(time.Now().Add(c.gw.cfg.WriteTimeout))
				_, _ = c.nc.Write(msg)
			}
			return
		}
		if len(c.queue) == 0 && c.pong == nil {
			c.writing = false
			if cap(c.spare) > keptBatch { // a burst's large batch is not kept idle
				c.queue, c.spare = nil, nil
			}
			c.wmu.Unlock()
			return
		}
		batch, pong := c.queue, c.pong
		c.queue, c.pong = c.spare[:0], nil
		c.wmu.Unlock()

		written := 0
		if !c.stopping.Load() {
			if err := c.writeFrames(pong, batch); err != nil {
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

// writeFrames writes a whole pong frame, if there is one, then each of
// frames as one WebSocket text frame, all with one writev system call
// (net.Buffers): under load a batch holds many frames, and a write per
// frame was most of the gateway's CPU. Server frames are unmasked and
// uncompressed, so a frame is a 2–10 byte header and the payload.
func (c *conn) writeFrames(pong []byte, frames [][]byte) error {
	v := writeVectors.Get().(*writeVector)
	defer v.release()
	for _, f := range frames {
		v.hdrs = wsframe.AppendHeader(v.hdrs, wsframe.OpText, len(f))
	}
	if pong != nil {
		v.bufs = append(v.bufs, pong)
	}
	off := 0
	for _, f := range frames {
		n := wsframe.HeaderLen(len(f))
		v.bufs = append(v.bufs, v.hdrs[off:off+n], f)
		off += n
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.gw.cfg.WriteTimeout))
	wb := v.bufs // WriteTo consumes its copy
	_, err := wb.WriteTo(c.nc)
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
	c.queue, c.pong = nil, nil
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
	msg := wsframe.AppendFrame(nil, wsframe.OpClose, wsframe.ClosePayload(int(code), reason))
	c.wmu.Lock()
	if c.closing {
		c.wmu.Unlock()
		return
	}
	c.closing = true
	c.stopping.Store(true)
	c.closeCode = code
	c.queue, c.pong = nil, nil
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
		_ = c.nc.SetWriteDeadline(time.Now().Add(closeGrace))
		_, _ = c.nc.Write(msg)
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(wait))
	c.wake() // a parked connection reads the client's answer, or times out
}

// abort ends the connection at once, without a closing handshake.
func (c *conn) abort() {
	c.markClosing(0)
	_ = c.nc.Close()
	c.wake() // a parked connection ends
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
	_ = c.nc.SetReadDeadline(time.Now().Add(closeGrace))
	buf := make([]byte, 4096)
	for limit := 4 * c.gw.cfg.MaxFrameBytes; limit > 0; {
		n, err := c.nc.Read(buf)
		limit -= int64(n)
		if err != nil {
			return
		}
	}
}

// teardown runs once, on the reader goroutine, when the connection ends.
func (c *conn) teardown() {
	c.markClosing(0)
	if c.in.rc != nil {
		c.gw.mu.Lock()
		p := c.gw.poller
		c.gw.mu.Unlock()
		if p != nil {
			p.remove(c, c.in.rc)
		}
	}
	_ = c.nc.Close()
	c.in.release()
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
