package client_test

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/seed82ac63c1/fabric/auth"
	"github.com/seed82ac63c1/fabric/client"
	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers/demo"
)

var jwtSecret = []byte("a test secret of at least thirty-two bytes")

// signToken signs an HS256 token for sub that expires in ttl (negative:
// expired). "exp" counts whole seconds, so a token of 2s lives 1–2s.
func signToken(t *testing.T, sub string, ttl time.Duration) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(ttl).Unix()}).SignedString(jwtSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// authFabric starts a fabric whose gateway requires HS256 tokens, with no
// leeway on "exp" and a refresh grace of 300ms.
func authFabric(t *testing.T) *fabrictest.Fabric {
	t.Helper()
	j, err := auth.NewJWT(auth.JWTConfig{HMACSecret: jwtSecret, Leeway: -1})
	if err != nil {
		t.Fatal(err)
	}
	return fabrictest.Start(t, gateway.Config{Auth: &gateway.AuthConfig{Authenticator: j, RefreshGrace: 300 * time.Millisecond}})
}

// authCount is the gateway's count of authentications of kind with result.
func authCount(t *testing.T, f *fabrictest.Fabric, kind, result string) int {
	t.Helper()
	_, body := f.Gateway.HTTPGet(t, "/metrics")
	re := regexp.MustCompile(`(?m)^fabric_gateway_authentications_total\{kind="` + kind + `",result="` + result + `"\} (\d+)$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// stateLog records a client's state changes.
type stateLog struct {
	mu     sync.Mutex
	states []string
	closed chan int
}

func newStateLog() *stateLog { return &stateLog{closed: make(chan int, 1)} }

func (l *stateLog) on(s client.State, code int, _ string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if code != 0 {
		l.states = append(l.states, s.String()+" "+strconv.Itoa(code))
	} else {
		l.states = append(l.states, s.String())
	}
	if s == client.StateClosed {
		l.closed <- code
	}
}

func (l *stateLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.states...)
}

func waitClosed(t *testing.T, l *stateLog) int {
	t.Helper()
	select {
	case code := <-l.closed:
		return code
	case <-time.After(10 * time.Second):
		t.Fatalf("the client did not close: %v", l.get())
		return 0
	}
}

// No token: Dial fails with the gateway's 4502.
func TestDialWithoutTokenUnauthorized(t *testing.T) {
	f := authFabric(t)
	for _, opts := range []client.Options{{}, {Token: signToken(t, "alice", -time.Minute)}} {
		opts.Logger = fabrictest.Logger(t)
		c, err := client.Dial(context.Background(), f.Gateway.URL, opts)
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != int(protocol.CloseUnauthorized) {
			if c != nil {
				c.Close()
			}
			t.Fatalf("token %q: Dial: %v, want close 4502", opts.Token, err)
		}
	}
}

// A static token: the welcome's user; RefreshToken with another user's token
// is refused and the connection stays; one of the same user is accepted.
// When the token expires unrefreshed, the 4504 close ends the client.
func TestTokenRefreshByHand(t *testing.T) {
	f := authFabric(t)
	log := newStateLog()
	c := dial(t, f.Gateway.URL, client.Options{Token: signToken(t, "alice", time.Hour), OnState: log.on})
	w := c.Welcome()
	if c.User() != "alice" || w.ExpiresInMs <= 0 || w.ExpiresInMs > time.Hour.Milliseconds() || w.RefreshGraceMs != 300 {
		t.Fatalf("user %q, welcome %+v", c.User(), w)
	}
	ctx := context.Background()
	err := c.RefreshToken(ctx, signToken(t, "mallory", time.Hour))
	if !errors.Is(err, &protocol.Error{Code: protocol.CodeUnauthorized}) {
		t.Fatalf("another user's token: %v", err)
	}
	if err := c.RefreshToken(ctx, ""); err == nil {
		t.Fatal("RefreshToken without a token or a TokenFunc succeeded")
	}
	who, err := client.Invoke(ctx, c, demo.Whoami, nil)
	if err != nil || who.User != "alice" || who.Session != w.SessionID {
		t.Fatalf("after the refused refresh: %+v %v", who, err)
	}

	// A token that expires in 1s: the connection is closed 300ms after it
	// expires, and a static token is not tried again.
	if err := c.RefreshToken(ctx, signToken(t, "alice", time.Second)); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, log); code != int(protocol.CloseTokenExpired) {
		t.Fatalf("closed with %d, want 4504", code)
	}
	if got := log.get(); len(got) != 3 || got[2] != "closed 4504" {
		t.Fatalf("states %v", got)
	}
	if _, err := c.Call(ctx, "demo/echo", 1); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("call after 4504: %v", err)
	}
}

// TokenFunc: the client refreshes a 2s token before it expires, again and
// again, and the connection outlives each expiry and its grace.
func TestTokenFuncRefreshes(t *testing.T) {
	f := authFabric(t)
	var calls atomic.Int32
	log := newStateLog()
	start := time.Now()
	c := dial(t, f.Gateway.URL, client.Options{OnState: log.on, TokenFunc: func(ctx context.Context) (string, error) {
		calls.Add(1)
		return signToken(t, "bob", 2*time.Second), nil
	}})
	w := c.Welcome()
	if c.User() != "bob" || w.ExpiresInMs <= 0 || w.ExpiresInMs > 2000 {
		t.Fatalf("user %q, welcome %+v", c.User(), w)
	}
	time.Sleep(time.Until(start.Add(3500 * time.Millisecond))) // past the first token's expiry + grace, and the second's
	if got := log.get(); len(got) != 2 || got[1] != "open" {
		t.Fatalf("states %v: the connection did not stay up", got)
	}
	if n := calls.Load(); n < 3 {
		t.Fatalf("TokenFunc called %d times, want the Dial and at least two refreshes", n)
	}
	if n := authCount(t, f, "refresh", "ok"); n < 2 {
		t.Fatalf("the gateway accepted %d refreshes", n)
	}
	who, err := client.Invoke(context.Background(), c, demo.Whoami, nil)
	if err != nil || who.User != "bob" || who.Session != w.SessionID {
		t.Fatalf("whoami %+v %v", who, err)
	}
}

// TokenFunc returning expired tokens at refresh time: the gateway closes
// with 4504; the client reconnects with a fresh token and resumes. When every
// token after the first is expired, it gives up after three auth closes in
// a row and fails what waited.
func TestTokenFuncAfterExpiry(t *testing.T) {
	t.Run("reconnects", func(t *testing.T) {
		f := authFabric(t)
		var expired atomic.Bool
		log := newStateLog()
		c := dial(t, f.Gateway.URL, client.Options{BackoffMin: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
			OnState: func(s client.State, code int, reason string) {
				if code == int(protocol.CloseTokenExpired) {
					expired.Store(false)
				}
				log.on(s, code, reason)
			},
			TokenFunc: func(ctx context.Context) (string, error) {
				if expired.Load() {
					return signToken(t, "carol", -time.Minute), nil
				}
				return signToken(t, "carol", 2*time.Second), nil
			}})
		expired.Store(true)
		session := c.Session()
		fabrictest.Eventually(t, 10*time.Second, func() bool {
			got := log.get()
			return len(got) == 4 && got[3] == "open"
		})
		if got := log.get(); got[2] != "reconnecting 4504" {
			t.Fatalf("states %v", got)
		}
		if c.Session() != session || !c.Welcome().Resumed {
			t.Fatalf("welcome %+v, want session %s resumed", c.Welcome(), session)
		}
		if n := authCount(t, f, "refresh", "expired"); n < 1 {
			t.Fatalf("%d expired refreshes refused", n)
		}
		if _, err := c.Call(context.Background(), "demo/echo", 1); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("gives up", func(t *testing.T) {
		f := authFabric(t)
		var first atomic.Bool
		first.Store(true)
		log := newStateLog()
		c := dial(t, f.Gateway.URL, client.Options{BackoffMin: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond, OnState: log.on,
			TokenFunc: func(ctx context.Context) (string, error) {
				if first.Swap(false) {
					return signToken(t, "dave", 2*time.Second), nil
				}
				return signToken(t, "dave", -time.Minute), nil
			}})
		fabrictest.Eventually(t, 10*time.Second, func() bool { return len(log.get()) >= 3 })
		_, err := c.Call(context.Background(), "demo/echo", 1) // waits for a connection that never comes
		if !errors.Is(err, client.ErrClosed) {
			t.Fatalf("call: %v", err)
		}
		if code := waitClosed(t, log); code != int(protocol.CloseUnauthorized) {
			t.Fatalf("closed with %d", code)
		}
		if got := log.get(); len(got) != 4 || got[2] != "reconnecting 4504" || got[3] != "closed 4502" {
			t.Fatalf("states %v", got)
		}
		if n := authCount(t, f, "hello", "expired"); n != 2 {
			t.Fatalf("%d reconnects refused, want 2", n)
		}
	})
}

// A TokenFunc error fails Dial.
func TestTokenFuncErrorFailsDial(t *testing.T) {
	f := authFabric(t)
	boom := errors.New("no session in the identity provider")
	c, err := client.Dial(context.Background(), f.Gateway.URL, client.Options{Logger: fabrictest.Logger(t),
		TokenFunc: func(context.Context) (string, error) { return "", boom }})
	if !errors.Is(err, boom) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Dial: %v", err)
	}
}
