package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nuid"

	"github.com/seed82ac63c1/fabric/internal/callstate"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
)

// Errors returned by the client.
var (
	ErrClosed = errors.New("client: closed")
	// ErrRejected wraps the gateway's sys/error for a request it did not
	// accept.
	ErrRejected = errors.New("client: request rejected")
	// ErrNotConnected: the client has no open connection (it is
	// reconnecting), or the connection closed before the gateway answered.
	ErrNotConnected = errors.New("client: not connected")
)

// errTokenFunc wraps the errors of Options.TokenFunc.
var errTokenFunc = errors.New("client: TokenFunc")

const (
	// maxAuthFailures: with a TokenFunc, the client gives up after this many
	// 4502/4504 closes (or TokenFunc errors) in a row, with no welcome between
	// them.
	maxAuthFailures = 3
	// refreshAttempts bounds the automatic refreshes of one token: the first
	// try and its retries.
	refreshAttempts = 5
	// refreshTimeout bounds a refresh whose ctx has no deadline.
	refreshTimeout = 10 * time.Second
)

// State is the state of the client's connection.
type State int

// Connection states.
const (
	StateConnecting State = iota
	StateOpen
	StateReconnecting
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateOpen:
		return "open"
	case StateReconnecting:
		return "reconnecting"
	default:
		return "closed"
	}
}

// Options configure a Client. Zero fields select the documented defaults.
type Options struct {
	// Token is sent in sys/hello for authentication. "" means anonymous
	// (or the Authorization header of Header, if it has one). A 4502
	// (unauthorized) or 4504 (token expired) close ends the client, as every
	// 4500–4999 close does; RefreshToken replaces the token, for the open
	// connection and the later ones.
	Token string
	// TokenFunc, if set, overrides Token: it is called before every connect
	// (Dial, each reconnect and resume) and for every refresh, and returns a
	// valid token, fetching a new one when the last is about to expire. With
	// it, the client refreshes a token that expires (the welcome's
	// expiresInMs) on its own, at expiresIn − min(60s, expiresIn/5), and
	// retries a failed refresh after 1s, 2s, 4s… until the gateway's grace
	// period ends. After a 4502 or 4504 close it reconnects with backoff and
	// a new token, and gives up after 3 such closes (or TokenFunc errors) in
	// a row. ctx carries the connect's or the refresh's deadline.
	TokenFunc func(ctx context.Context) (string, error)
	// Name identifies the client in sys/hello. "" means "fabric-go".
	Name string
	// Header is sent with the WebSocket handshake (an Authorization header,
	// say).
	Header http.Header
	// NoReconnect disables reconnecting and resuming.
	NoReconnect bool
	// BackoffMin is the first reconnect backoff cap. 0 means 100ms.
	BackoffMin time.Duration
	// BackoffMax caps the reconnect backoff. 0 means 10s.
	BackoffMax time.Duration
	// OnPush receives pushes (frames with no id) and is called on the
	// reader goroutine: it must not block.
	OnPush func(protocol.Message)
	// OnState is told of every state change, with the close code and reason
	// that caused it, if any. It is called on internal goroutines: it must not
	// block.
	OnState func(state State, closeCode int, reason string)
	// Dialer dials the WebSocket. nil means a dialer with a 10s handshake
	// timeout.
	Dialer *websocket.Dialer
	// Logger receives the client's logs. nil means slog.Default().
	Logger *slog.Logger
}

// Client is a connection to a Fabric gateway. Create one with [Dial].
type Client struct {
	url  string
	opts Options
	log  *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	wmu sync.Mutex // serialises writes to ws

	mu      sync.Mutex
	ws      *websocket.Conn // nil while disconnected
	gen     uint64          // counts connections; a call records the one it was sent on
	welcome protocol.Welcome
	calls   map[string]*call
	state   State

	token        string                           // sent in hello without a TokenFunc: Options.Token, then RefreshToken's
	authFailures int                              // 4502/4504 closes since the last welcome, with a TokenFunc
	connDone     chan struct{}                    // closed when the reader of ws ends
	expiry       chan time.Duration               // new expiries for ws's refresher; nil without a TokenFunc
	refreshes    map[string]chan protocol.Message // sys/refresh frames awaiting their answer, by id
}

// call is one request's state on the client.
type call struct {
	typ     string
	id      string
	payload json.RawMessage
	state   *callstate.Call

	sendMu sync.Mutex // serialises flushes of this call
	gen    uint64     // the connection it was last sent on; 0: not sent yet
}

// Dial connects to a gateway at url (ws://host:port/ws), says hello and
// returns once the session is open.
func Dial(ctx context.Context, url string, opts Options) (*Client, error) {
	if opts.Name == "" {
		opts.Name = "fabric-go"
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 100 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 10 * time.Second
	}
	if opts.Dialer == nil {
		opts.Dialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		url:    url,
		opts:   opts,
		log:    opts.Logger,
		ctx:    cctx,
		cancel: cancel,
		calls:  make(map[string]*call),
		token:  opts.Token,

		refreshes: make(map[string]chan protocol.Message),
	}
	c.setState(StateConnecting, 0, "")
	if err := c.connect(ctx, nil); err != nil {
		cancel()
		return nil, err
	}
	return c, nil
}

// Session returns the current session id.
func (c *Client) Session() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.welcome.SessionID
}

// User returns the authenticated user of the latest welcome; "" when the
// session is anonymous.
func (c *Client) User() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.welcome.User
}

// Welcome returns the gateway's latest sys/welcome.
func (c *Client) Welcome() protocol.Welcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.welcome
}

func (c *Client) setState(s State, code int, reason string) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
	if c.opts.OnState != nil {
		c.opts.OnState(s, code, reason)
	}
}

// connect dials, says hello (resuming if prev is set) and starts the reader.
func (c *Client) connect(ctx context.Context, prev *protocol.Welcome) error {
	c.mu.Lock()
	token := c.token
	c.mu.Unlock()
	if c.opts.TokenFunc != nil {
		var err error
		if token, err = c.opts.TokenFunc(ctx); err != nil {
			return fmt.Errorf("%w: %w", errTokenFunc, err)
		}
	}
	d := *c.opts.Dialer
	d.Subprotocols = []string{protocol.Subprotocol}
	ws, _, err := d.DialContext(ctx, c.url, c.opts.Header)
	if err != nil {
		return fmt.Errorf("client: dial %s: %w", c.url, err)
	}
	hello := protocol.Hello{Token: token, Client: c.opts.Name}
	if prev != nil {
		hello.Resume = &protocol.Resume{SessionID: prev.SessionID, ResumeToken: prev.ResumeToken}
	}
	w, err := handshake(ctx, ws, &hello)
	if err != nil {
		ws.Close()
		return err
	}
	done := make(chan struct{})
	var expiry chan time.Duration
	if c.opts.TokenFunc != nil {
		expiry = make(chan time.Duration, 1)
	}
	c.mu.Lock()
	c.ws = ws
	c.gen++
	gen := c.gen
	c.welcome = w
	c.authFailures = 0
	c.connDone, c.expiry = done, expiry
	pending := make([]*call, 0, len(c.calls))
	for _, cl := range c.calls {
		pending = append(pending, cl)
	}
	c.mu.Unlock()
	c.setState(StateOpen, 0, "")
	c.wg.Add(1)
	go c.readLoop(ws, w, done)
	if expiry != nil {
		c.wg.Add(1)
		go c.refresher(done, expiry, msDuration(w.ExpiresInMs), msDuration(w.RefreshGraceMs))
	}
	// Re-send what the old connection left unfinished, and send what waited.
	for _, cl := range pending {
		c.flush(cl, ws, gen, w.Resumed)
	}
	return nil
}

func handshake(ctx context.Context, ws *websocket.Conn, hello *protocol.Hello) (protocol.Welcome, error) {
	var w protocol.Welcome
	payload, _ := json.Marshal(hello)
	frame, _ := json.Marshal(struct {
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload"`
	}{protocol.TypeHello, payload})
	deadline := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = ws.SetWriteDeadline(deadline)
	if err := ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		return w, fmt.Errorf("client: send hello: %w", err)
	}
	_ = ws.SetReadDeadline(deadline)
	_, b, err := ws.ReadMessage()
	if err != nil {
		return w, fmt.Errorf("client: read welcome: %w", err)
	}
	var m protocol.Message
	if err := json.Unmarshal(b, &m); err != nil || m.Type != protocol.TypeWelcome {
		return w, fmt.Errorf("client: expected sys/welcome, got %.100s", b)
	}
	if err := m.Decode(&w); err != nil {
		return w, fmt.Errorf("client: bad sys/welcome: %w", err)
	}
	return w, nil
}

func (c *Client) readLoop(ws *websocket.Conn, w protocol.Welcome, done chan struct{}) {
	defer c.wg.Done()
	idle := 2 * time.Duration(w.PingIntervalMs) * time.Millisecond
	if idle <= 0 {
		idle = time.Minute
	}
	var err error
	for {
		_ = ws.SetReadDeadline(time.Now().Add(idle))
		var b []byte
		_, b, err = ws.ReadMessage()
		if err != nil {
			break
		}
		var m protocol.Message
		if json.Unmarshal(b, &m) != nil {
			c.log.Warn("client: unreadable frame from the gateway", "frame", fmt.Sprintf("%.100s", b))
			continue
		}
		c.dispatch(m)
	}
	close(done)
	c.disconnected(ws, err)
}

func (c *Client) dispatch(m protocol.Message) {
	switch {
	case m.Type == protocol.TypePing:
		_ = c.write(map[string]string{"type": protocol.TypePong})
	case m.Type == protocol.TypePong:
	case m.Type == protocol.TypeRefreshed:
		c.refreshAnswer(m)
	case m.Type == protocol.TypeError:
		if c.refreshAnswer(m) {
			return
		}
		var e protocol.Error
		_ = m.Decode(&e)
		if m.ID != "" {
			c.mu.Lock()
			cl := c.calls[m.ID]
			delete(c.calls, m.ID)
			c.mu.Unlock()
			if cl != nil {
				cl.state.Fail(fmt.Errorf("%w: %w", ErrRejected, &e))
				return
			}
		}
		c.log.Warn("client: gateway rejected a frame", "id", m.ID, "code", e.Code, "message", e.Message)
	case m.ID != "":
		c.mu.Lock()
		cl := c.calls[m.ID]
		if cl != nil && m.Suffix() == protocol.SuffixFinish {
			delete(c.calls, m.ID)
		}
		c.mu.Unlock()
		if cl != nil {
			cl.state.Add(m)
		}
	default:
		if c.opts.OnPush != nil {
			c.opts.OnPush(m)
		}
	}
}

// disconnected handles the end of ws: it reconnects unless the close code or
// the options forbid it.
func (c *Client) disconnected(ws *websocket.Conn, err error) {
	ws.Close()
	code, reason := 1006, err.Error()
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		code, reason = ce.Code, ce.Text
	}
	c.mu.Lock()
	if c.ws == ws {
		c.ws = nil
	}
	prev := c.welcome
	c.mu.Unlock()
	allowed, now := c.reconnectPolicy(code)
	if c.ctx.Err() != nil || c.opts.NoReconnect || !allowed {
		c.shutdown(code, reason)
		return
	}
	c.log.Info("client: connection lost; reconnecting", "code", code, "reason", reason)
	c.setState(StateReconnecting, code, reason)
	c.wg.Add(1)
	go c.reconnect(prev, now)
}

// reconnect dials until a connection opens or the client closes, with
// full-jitter exponential backoff.
func (c *Client) reconnect(prev protocol.Welcome, immediately bool) {
	defer c.wg.Done()
	for attempt := 0; ; attempt++ {
		if attempt > 0 || !immediately {
			ceiling := min(c.opts.BackoffMax, c.opts.BackoffMin<<min(attempt, 20))
			t := time.NewTimer(rand.N(ceiling) + time.Millisecond)
			select {
			case <-c.ctx.Done():
				t.Stop()
				c.shutdown(1000, "closed")
				return
			case <-t.C:
			}
		}
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		err := c.connect(ctx, &prev)
		cancel()
		if err == nil {
			return
		}
		if c.ctx.Err() != nil {
			c.shutdown(1000, "closed")
			return
		}
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce):
			if allowed, _ := c.reconnectPolicy(ce.Code); !allowed {
				c.log.Info("client: gateway refused the reconnect; not retrying", "code", ce.Code, "reason", ce.Text)
				c.shutdown(ce.Code, ce.Text)
				return
			}
		case errors.Is(err, errTokenFunc):
			// No token, no credentials: counted as a 4502.
			if allowed, _ := c.reconnectPolicy(int(protocol.CloseUnauthorized)); !allowed {
				c.log.Info("client: TokenFunc failed; not retrying", "err", err)
				c.shutdown(int(protocol.CloseUnauthorized), err.Error())
				return
			}
		}
		c.log.Debug("client: reconnect failed", "attempt", attempt+1, "err", err)
	}
}

// reconnectPolicy is code's [protocol.CloseCode.Reconnect], except that with
// a TokenFunc a 4502 or 4504 reconnects with backoff (and a new token), up to
// maxAuthFailures of them in a row.
func (c *Client) reconnectPolicy(code int) (allowed, immediately bool) {
	cc := protocol.CloseCode(code)
	if c.opts.TokenFunc == nil || cc != protocol.CloseUnauthorized && cc != protocol.CloseTokenExpired {
		return cc.Reconnect()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.authFailures++
	return c.authFailures < maxAuthFailures, false
}

// shutdown fails every call and marks the client closed.
func (c *Client) shutdown(code int, reason string) {
	c.cancel()
	c.mu.Lock()
	calls := c.calls
	c.calls = make(map[string]*call)
	c.mu.Unlock()
	for _, cl := range calls {
		cl.state.Fail(fmt.Errorf("%w (close %d %s)", ErrClosed, code, reason))
	}
	c.setState(StateClosed, code, reason)
}

// Close closes the connection normally (1000), which ends the session, and
// waits for the client's goroutines.
func (c *Client) Close() error {
	c.cancel()
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		c.wmu.Lock()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
		c.wmu.Unlock()
	}
	// The reader ends when the gateway answers the close frame; don't wait
	// for a gateway that doesn't.
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		if ws != nil {
			ws.Close()
		}
		<-done
	}
	return nil
}

func (c *Client) write(v any) error {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	return c.writeTo(ws, v)
}

func (c *Client) writeTo(ws *websocket.Conn, v any) error {
	if ws == nil {
		return ErrNotConnected
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return ws.WriteMessage(websocket.TextMessage, b)
}

type requestFrame struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Payload json.RawMessage `json:"payload"`
	After   *uint64         `json:"after,omitempty"`
}

// flush sends cl on ws, the connection numbered gen, unless it was already
// sent there: a call not sent yet goes as new; one sent on an earlier
// connection is re-sent with "after" if the session was resumed, and ends as
// interrupted if it was not. If the write fails, the next connection retries.
func (c *Client) flush(cl *call, ws *websocket.Conn, gen uint64, resumed bool) {
	cl.sendMu.Lock()
	defer cl.sendMu.Unlock()
	if cl.state.Finished() || cl.gen == gen {
		return
	}
	f := requestFrame{Type: cl.typ, ID: cl.id, Payload: cl.payload}
	if cl.gen != 0 {
		if !resumed {
			c.mu.Lock()
			delete(c.calls, cl.id)
			c.mu.Unlock()
			cl.state.End(protocol.CodeInterrupted, "the session was lost; the request's outcome is unknown")
			return
		}
		after := cl.state.LastSeq()
		f.After = &after
	}
	if c.writeTo(ws, f) == nil {
		cl.gen = gen
	}
}

// start registers and sends a request.
func (c *Client) start(typ string, payload any) (*call, error) {
	if err := subjects.ValidateRoute(typ); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("client: encode payload: %w", err)
	}
	id := nuid.Next()
	cl := &call{typ: typ, id: id, payload: raw, state: callstate.New(typ, id)}
	c.mu.Lock()
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.calls[cl.id] = cl
	ws, gen := c.ws, c.gen
	c.mu.Unlock()
	c.flush(cl, ws, gen, true)
	return cl, nil
}

// cancel abandons a call: the gateway is told with sys/cancel.
func (c *Client) cancelCall(cl *call) {
	c.mu.Lock()
	_, pending := c.calls[cl.id]
	delete(c.calls, cl.id)
	c.mu.Unlock()
	if pending {
		_ = c.write(map[string]string{"type": protocol.TypeCancel, "id": cl.id})
	}
}

// Call sends a request and returns every message of it once its :finish
// arrives. If an :error arrived, the error is that *protocol.Error (the
// messages are returned too). Cancelling ctx sends sys/cancel and returns
// ctx's error.
func (c *Client) Call(ctx context.Context, typ string, payload any) ([]protocol.Message, error) {
	cl, err := c.start(typ, payload)
	if err != nil {
		return nil, err
	}
	select {
	case <-cl.state.Done():
		return cl.state.Result()
	case <-ctx.Done():
		c.cancelCall(cl)
		return nil, ctx.Err()
	}
}

// Stream sends a request and yields its messages as they arrive, through
// :finish. A rejection or the client closing is yielded as an error; the
// :error event is yielded as a message. Breaking out of the loop or
// cancelling ctx cancels the request.
func (c *Client) Stream(ctx context.Context, typ string, payload any) iter.Seq2[protocol.Message, error] {
	return func(yield func(protocol.Message, error) bool) {
		cl, err := c.start(typ, payload)
		if err != nil {
			yield(protocol.Message{}, err)
			return
		}
		cl.state.Messages(ctx, func() { c.cancelCall(cl) })(yield)
	}
}

// Invoke calls route with params and decodes its :response into R.
func Invoke[P, R any](ctx context.Context, c *Client, route protocol.Route[P, R], params P) (R, error) {
	var result R
	msgs, err := c.Call(ctx, route.Type(), params)
	if err != nil {
		return result, err
	}
	if err := callstate.DecodeResponse(msgs, &result); err != nil {
		return result, fmt.Errorf("client: %s: %w", route.Type(), err)
	}
	return result, nil
}

// RefreshToken sends the gateway a new token for the open connection
// (sys/refresh): token, or else TokenFunc's. The token's user must be the
// session's. On success the new token applies to the session's next
// requests and its expiry replaces the old one's (the automatic refresh is
// rescheduled from it); without a TokenFunc it also becomes the token of
// later connects. A token the gateway refuses leaves the old one in force,
// and the error wraps its *protocol.Error (unauthorized; internal when the
// gateway's authenticator did not answer: try again). Without an open
// connection it returns an error wrapping ErrNotConnected, and a token given
// here (without a TokenFunc) is kept for the next connect. ctx bounds the
// wait for the answer; without a deadline, 10s.
func (c *Client) RefreshToken(ctx context.Context, token string) (err error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, refreshTimeout)
		defer cancel()
	}
	if token == "" {
		if c.opts.TokenFunc == nil {
			return errors.New("client: RefreshToken: no token, and no TokenFunc to get one")
		}
		if token, err = c.opts.TokenFunc(ctx); err != nil {
			return fmt.Errorf("%w: %w", errTokenFunc, err)
		}
	} else if c.opts.TokenFunc == nil {
		defer func() {
			// For later connects, unless the gateway refused it.
			if _, refused := protocol.AsError(err); !refused {
				c.mu.Lock()
				c.token = token
				c.mu.Unlock()
			}
		}()
	}
	c.mu.Lock()
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		return ErrClosed
	}
	ws, done, expiry := c.ws, c.connDone, c.expiry
	if ws == nil {
		c.mu.Unlock()
		return fmt.Errorf("client: RefreshToken: %w", ErrNotConnected)
	}
	id := nuid.Next()
	answer := make(chan protocol.Message, 1)
	c.refreshes[id] = answer
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.refreshes, id)
		c.mu.Unlock()
	}()
	frame := struct {
		Type    string           `json:"type"`
		ID      string           `json:"id"`
		Payload protocol.Refresh `json:"payload"`
	}{protocol.TypeRefresh, id, protocol.Refresh{Token: token}}
	if err := c.writeTo(ws, frame); err != nil {
		return fmt.Errorf("client: send %s: %w: %w", protocol.TypeRefresh, ErrNotConnected, err)
	}
	var m protocol.Message
	select {
	case m = <-answer:
	case <-done:
		return fmt.Errorf("client: the connection closed before %s was answered: %w", protocol.TypeRefresh, ErrNotConnected)
	case <-ctx.Done():
		return ctx.Err()
	}
	if m.Type == protocol.TypeError {
		e := &protocol.Error{}
		_ = m.Decode(e)
		return fmt.Errorf("client: token refresh refused: %w", e)
	}
	var r protocol.Refreshed
	_ = m.Decode(&r)
	if expiry != nil {
		// The latest expiry wins: drop one the refresher has not read yet.
		select {
		case <-expiry:
		default:
		}
		select {
		case expiry <- msDuration(r.ExpiresInMs):
		default:
		}
	}
	return nil
}

// refreshAnswer hands m, a sys/refreshed or sys/error, to the RefreshToken
// waiting for it, and reports whether one was.
func (c *Client) refreshAnswer(m protocol.Message) bool {
	c.mu.Lock()
	answer, ok := c.refreshes[m.ID]
	delete(c.refreshes, m.ID)
	c.mu.Unlock()
	if ok {
		answer <- m // buffered, and only one answer per id
	}
	return ok
}

// refresher refreshes the token of a connection with TokenFunc's, until
// done closes: at refreshDelay(expiresIn), then from each new expiry a
// RefreshToken sends on expiry. A failed refresh is retried after 1s, 2s,
// 4s…, but never later than halfway to the expiry plus grace, and
// refreshAttempts times in all; after that the gateway closes with 4504 and
// the reconnect asks TokenFunc again.
func (c *Client) refresher(done <-chan struct{}, expiry <-chan time.Duration, expiresIn, grace time.Duration) {
	defer c.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var deadline time.Time
	attempt := 0
	schedule := func(expiresIn time.Duration) {
		t.Stop()
		attempt = 0
		if expiresIn > 0 {
			deadline = time.Now().Add(expiresIn + grace)
			t.Reset(refreshDelay(expiresIn))
		}
	}
	schedule(expiresIn)
	for {
		select {
		case <-done:
			return
		case <-c.ctx.Done():
			return
		case d := <-expiry:
			schedule(d)
		case <-t.C:
			err := c.RefreshToken(c.ctx, "")
			if err == nil {
				continue // RefreshToken sent the new expiry
			}
			attempt++
			retry := min(time.Second<<(attempt-1), time.Until(deadline)/2)
			if attempt >= refreshAttempts || retry < 10*time.Millisecond {
				c.log.Warn("client: token refresh failed; giving up on this token", "attempts", attempt, "err", err)
				continue
			}
			c.log.Info("client: token refresh failed; retrying", "attempt", attempt, "in", retry, "err", err)
			t.Reset(retry)
		}
	}
}

// refreshDelay is how long after a token that expires in expiresIn is
// received the client refreshes it: min(60s, expiresIn/5) before it
// expires, so a 1h token is refreshed a minute before and a 10s one after
// 8s.
func refreshDelay(expiresIn time.Duration) time.Duration {
	return expiresIn - min(time.Minute, expiresIn/5)
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
