package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/auth"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/subjects"
)

// connectHook answers connect requests on subject the way an application
// would: by the token's value. It records the requests it saw.
func connectHook(t *testing.T, nc *nats.Conn, subject string, seen chan<- auth.ConnectRequest) {
	t.Helper()
	expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	sub, err := nc.QueueSubscribe(subject, "auth", func(m *nats.Msg) {
		var req auth.ConnectRequest
		if err := json.Unmarshal(m.Data, &req); err != nil {
			t.Errorf("connect request: %v", err)
			return
		}
		select {
		case seen <- req: // the test reads the first request only
		default:
		}
		reply := map[string]string{
			"good":         `{"user":"alice","expiresAt":"` + expires.Format(time.RFC3339) + `","claims":{"tenant":"acme"},"routes":["demo/*"],"roles":["support"]}`,
			"unix":         `{"user":"bob","expiresAt":` + jsonNumber(expires.Unix()) + `}`,
			"forever":      `{"user":"carol"}`,
			"no-routes":    `{"user":"dave","routes":[]}`,
			"expired":      `{"user":"erin","expiresAt":"2001-01-01T00:00:00Z"}`,
			"refused":      `{"error":{"code":"unauthorized","message":"unknown API key"}}`,
			"forbidden":    `{"error":{"code":"forbidden"}}`,
			"hook-failed":  `{"error":{"code":"internal","message":"db down"}}`,
			"garbage":      `not json`,
			"no-user":      `{"claims":{"a":"b"}}`,
			"bad-user":     `{"user":"a\nb"}`,
			"bad-pattern":  `{"user":"alice","routes":["demo/q*"]}`,
			"bad-expiry":   `{"user":"alice","expiresAt":"next tuesday"}`,
			"bad-claim":    `{"user":"alice","claims":{"a":"line\nbreak"}}`,
			"leaky-refuse": `{"error":{"code":"unauthorized","message":"bad\r\ninjected"}}`,
		}[req.Token]
		if req.Token == "slow" {
			return // never answers
		}
		if err := m.Respond([]byte(reply)); err != nil {
			t.Errorf("respond: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestNATSAuthenticator(t *testing.T) {
	s := fabrictest.NATS(t)
	gw := fabrictest.Connect(t, s, "gateway")
	app := fabrictest.Connect(t, s, "app")
	seen := make(chan auth.ConnectRequest, 1)
	connectHook(t, app, subjects.MustSpace("").AuthConnect(), seen)

	a, err := auth.NewNATS(gw, auth.NATSConfig{Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if a.Subject() != "fabric.auth.connect" {
		t.Fatalf("subject %q", a.Subject())
	}

	// The request carries the credentials.
	id, err := a.Authenticate(context.Background(), auth.Credentials{Token: "good", Source: auth.SourceHeader, RemoteAddr: "10.0.0.7:5555"})
	if err != nil {
		t.Fatal(err)
	}
	if req := <-seen; req != (auth.ConnectRequest{Token: "good", Source: auth.SourceHeader, Remote: "10.0.0.7:5555"}) {
		t.Errorf("request %+v", req)
	}
	want := auth.Identity{
		User:    "alice",
		Expires: time.Now().Add(time.Hour).UTC().Truncate(time.Second),
		Claims:  map[string]string{"tenant": "acme"},
		Routes:  []string{"demo/*"},
		Roles:   []string{"support"},
	}
	if d := id.Expires.Sub(want.Expires); d < -2*time.Second || d > 2*time.Second {
		t.Errorf("expires %v, want about %v", id.Expires, want.Expires)
	}
	id.Expires = want.Expires
	if !reflect.DeepEqual(id, want) {
		t.Errorf("identity %+v, want %+v", id, want)
	}
	for _, tc := range []struct {
		token string
		err   error  // nil means success
		text  string // in the error, or the user on success
	}{
		{"unix", nil, "bob"},
		{"forever", nil, "carol"},
		{"no-routes", nil, "dave"},
		{"expired", auth.ErrExpired, "token expired"},
		{"refused", auth.ErrUnauthorized, "connect hook: unknown API key"},
		{"forbidden", auth.ErrUnauthorized, "credentials refused"},
		{"leaky-refuse", auth.ErrUnauthorized, "credentials refused"},
		{"hook-failed", auth.ErrUnavailable, `code "internal"`},
		{"garbage", auth.ErrUnavailable, "malformed connect reply"},
		{"no-user", auth.ErrUnavailable, "no user id"},
		{"bad-user", auth.ErrUnavailable, "control characters"},
		{"bad-pattern", auth.ErrUnavailable, "invalid route pattern"},
		{"bad-expiry", auth.ErrUnavailable, "expiresAt"},
		{"bad-claim", auth.ErrUnavailable, "invalid claim"},
		{"slow", auth.ErrUnavailable, "timed out"},
		{"", auth.ErrUnauthorized, "no token"},
	} {
		t.Run(tc.token, func(t *testing.T) {
			id, err := a.Authenticate(context.Background(), auth.Credentials{Token: tc.token})
			if tc.err == nil {
				if err != nil || id.User != tc.text {
					t.Fatalf("got %+v, %v; want user %s", id, err, tc.text)
				}
				return
			}
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v with %q", err, tc.err, tc.text)
			}
			if errors.Is(err, auth.ErrUnauthorized) == errors.Is(err, auth.ErrUnavailable) {
				t.Errorf("%v: want exactly one of ErrUnauthorized and ErrUnavailable", err)
			}
			if tc.token != "" && strings.Contains(err.Error(), tc.token) && tc.token != "expired" {
				t.Errorf("%v quotes the token", err)
			}
		})
	}

	t.Run("routes absent means no restriction, empty means none allowed", func(t *testing.T) {
		id, _ := a.Authenticate(context.Background(), auth.Credentials{Token: "forever"})
		if id.Routes != nil {
			t.Errorf("routes %#v, want nil", id.Routes)
		}
		id, _ = a.Authenticate(context.Background(), auth.Credentials{Token: "no-routes"})
		if id.Routes == nil || len(id.Routes) != 0 {
			t.Errorf("routes %#v, want empty", id.Routes)
		}
	})

	t.Run("context deadline wins over Timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := a.Authenticate(ctx, auth.Credentials{Token: "slow"})
		if !errors.Is(err, auth.ErrUnavailable) || time.Since(start) > 400*time.Millisecond {
			t.Errorf("got %v after %v", err, time.Since(start))
		}
	})
}

func TestNATSNoResponders(t *testing.T) {
	s := fabrictest.NATS(t)
	nc := fabrictest.Connect(t, s, "gateway")
	a, err := auth.NewNATS(nc, auth.NATSConfig{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = a.Authenticate(context.Background(), auth.Credentials{Token: "secret-token-value"})
	if !errors.Is(err, auth.ErrUnavailable) || !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("got %v, want ErrUnavailable and nats.ErrNoResponders", err)
	}
	if !strings.Contains(err.Error(), "no responder on connect subject fabric.auth.connect") {
		t.Errorf("error %q does not name the subject", err)
	}
	if strings.Contains(err.Error(), "secret-token-value") {
		t.Errorf("error %q quotes the token", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("no responders took %v; want an immediate answer", d)
	}
}

func TestNATSSubjectConfig(t *testing.T) {
	s := fabrictest.NATS(t)
	gw := fabrictest.Connect(t, s, "gateway")
	app := fabrictest.Connect(t, s, "app")
	connectHook(t, app, "acme.prod.auth.connect", nil)
	connectHook(t, app, "custom.hook", nil)

	for _, cfg := range []auth.NATSConfig{{Prefix: "acme.prod"}, {Subject: "custom.hook"}} {
		a, err := auth.NewNATS(gw, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if id, err := a.Authenticate(context.Background(), auth.Credentials{Token: "forever"}); err != nil || id.User != "carol" {
			t.Errorf("%+v: got %+v, %v", cfg, id, err)
		}
	}

	for _, cfg := range []auth.NATSConfig{
		{Prefix: "a..b"},
		{Subject: "fabric.auth.*"},
		{Subject: "fabric.>"},
		{Subject: "a b"},
		{Subject: ".a"},
		{Timeout: -1},
	} {
		if _, err := auth.NewNATS(gw, cfg); !errors.Is(err, auth.ErrConfig) {
			t.Errorf("%+v: got %v, want ErrConfig", cfg, err)
		}
	}
	if _, err := auth.NewNATS(nil, auth.NATSConfig{}); !errors.Is(err, auth.ErrConfig) {
		t.Errorf("nil conn: got %v, want ErrConfig", err)
	}
}
