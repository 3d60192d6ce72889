package gateway_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/auth"
	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers"
)

var jwtSecret = []byte("a test secret of at least thirty-two bytes")

// token signs an HS256 token for sub, valid for ttl, with extra claims.
func token(t *testing.T, sub string, ttl time.Duration, extra map[string]any) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(ttl).Unix(), "iss": "test-issuer"}
	for k, v := range extra {
		claims[k] = v
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(jwtSecret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// authFabric starts NATS, a gateway requiring HS256 tokens (roles in
// "roles", claim "org" forwarded) under policy, and a demo worker.
func authFabric(t *testing.T, ac gateway.AuthConfig, policy string) (*server.Server, *fabrictest.Gateway) {
	t.Helper()
	j, err := auth.NewJWT(auth.JWTConfig{
		HMACSecret:    jwtSecret,
		Issuer:        "test-issuer",
		Leeway:        -1,
		ForwardClaims: []string{"org"},
		RolesClaim:    "roles",
	})
	if err != nil {
		t.Fatal(err)
	}
	ac.Authenticator = j
	if policy != "" {
		if ac.Policy, err = auth.ParsePolicy([]byte(policy)); err != nil {
			t.Fatal(err)
		}
	}
	ns := fabrictest.NATS(t)
	g := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gw"), gateway.Config{ResumeSecret: secret, Auth: &ac})
	fabrictest.StartDemoWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{})
	return ns, g
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// Every way to present no valid credentials closes with 4502 before any
// session exists; the close reason says why without quoting the token.
func TestAuthRejectsBadCredentials(t *testing.T) {
	_, g := authFabric(t, gateway.AuthConfig{}, "")
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "mallory", "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "mallory", "exp": time.Now().Add(time.Hour).Unix(), "iss": "test-issuer"}).
		SignedString([]byte("another secret of at least thirty-two bytes"))
	for _, tc := range []struct {
		name, token string
		header      http.Header
		reason      string
	}{
		{"no token", "", nil, "no token"},
		{"garbage", "not.a.jwt", nil, "unauthorized"},
		{"alg none", none, nil, "unauthorized"},
		{"wrong key", forged, nil, "unauthorized"},
		{"expired", token(t, "alice", -time.Minute, nil), nil, "expired"},
		{"wrong issuer", func() string {
			s, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix(), "iss": "evil"}).SignedString(jwtSecret)
			return s
		}(), nil, "unauthorized"},
		{"bad header token", "", bearer("not.a.jwt"), "unauthorized"},
		{"not bearer", "", http.Header{"Authorization": {"Basic " + token(t, "alice", time.Hour, nil)}}, "no token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := fabrictest.DialHeader(t, g.URL, tc.header)
			hello := map[string]any{}
			if tc.token != "" {
				hello["token"] = tc.token
			}
			ws.Send(map[string]any{"type": protocol.TypeHello, "payload": hello})
			_, _, err := ws.Conn.ReadMessage()
			ce, ok := err.(interface{ Error() string })
			if !ok || !strings.Contains(err.Error(), "4502") {
				t.Fatalf("want close 4502, got %v", ce)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("close %q does not say %q", err, tc.reason)
			}
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("the close reason quotes the token")
			}
		})
	}
	waitMetric(t, g, `fabric_gateway_authentications_total{kind="hello",result="expired"} 1`)
	waitMetric(t, g, `fabric_gateway_authentications_total{kind="hello",result="missing"} 2`)
	waitMetric(t, g, "fabric_gateway_sessions 0")
}

// A token in the URL is refused before the upgrade: it has leaked already.
func TestAuthRefusesTokenInQuery(t *testing.T) {
	_, g := authFabric(t, gateway.AuthConfig{}, "")
	for _, q := range []string{"?token=x", "?access_token=x", "?jwt=x"} {
		_, resp, err := fabrictest.TryDial(t, g.URL+q, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: want 400, got %v %v", q, resp, err)
		}
	}
}

// A valid token, in hello or in the Authorization header, opens a session
// of its user; requests carry Fabric-User and the forwarded claims to the
// worker, and nothing else of the token.
func TestAuthIdentityReachesWorkers(t *testing.T) {
	ns, g := authFabric(t, gateway.AuthConfig{}, "")
	seen := make(chan *workers.Request, 2)
	fabrictest.StartWorker(t, fabrictest.Connect(t, ns, "whoami"), workers.Config{}, func(w *workers.Worker) error {
		return w.HandleRaw("test/whoami", workers.HandlerFunc(func(ctx context.Context, req *workers.Request, s *workers.Stream) error {
			seen <- req
			return s.Respond(map[string]any{"user": req.User, "claims": req.Claims})
		}))
	})
	tok := token(t, "alice", time.Hour, map[string]any{"org": "acme", "secret": "not forwarded", "n": 3})

	ws := fabrictest.Dial(t, g.URL)
	w := ws.Hello(map[string]any{"token": tok})
	if w.User != "alice" || w.ExpiresInMs <= 0 || w.ExpiresInMs > time.Hour.Milliseconds() || w.RefreshGraceMs != gateway.DefaultRefreshGrace.Milliseconds() {
		t.Fatalf("welcome %+v", w)
	}
	ws2 := fabrictest.DialHeader(t, g.URL, bearer(tok))
	if w2 := ws2.Hello(nil); w2.User != "alice" {
		t.Fatalf("header token: welcome %+v", w2)
	}
	for _, c := range []*fabrictest.WS{ws, ws2} {
		got := c.Call("test/whoami", "w1", nil)
		if len(got) != 2 || string(got[0].Payload) != `{"claims":{"org":"acme"},"user":"alice"}` {
			t.Fatalf("got %s", dump(got))
		}
		req := <-seen
		if req.Header.Get("Fabric-Claims") != `{"org":"acme"}` {
			t.Errorf("Fabric-Claims %q", req.Header.Get("Fabric-Claims"))
		}
		for k := range req.Header {
			if strings.Contains(strings.Join(req.Header[k], ""), tok) {
				t.Errorf("header %s carries the token", k)
			}
		}
	}
}

// The policy decides per route: a forbidden request ends with
// :error{forbidden} and :finish, and nothing reaches NATS.
func TestAuthForbiddenRoutePublishesNothing(t *testing.T) {
	ns, g := authFabric(t, gateway.AuthConfig{}, `
everyone: ["demo/echo"]
roles:
  counter: ["demo/count"]
  admin: ["**"]
`)
	spy := fabrictest.Connect(t, ns, "spy")
	var mu sync.Mutex
	var published []string
	sub, err := spy.Subscribe("fabric.req.>", func(m *nats.Msg) {
		mu.Lock()
		published = append(published, m.Subject)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = spy.Flush()

	ws := fabrictest.Dial(t, g.URL)
	ws.Hello(map[string]any{"token": token(t, "bob", time.Hour, map[string]any{"roles": []string{"counter"}})})
	if got := ws.Call("demo/echo", "e1", "hi"); len(got) != 2 || got[0].Type != "demo/echo:response" {
		t.Fatalf("everyone's route: %s", dump(got))
	}
	if got := ws.Call("demo/count", "c1", map[string]int{"n": 1}); len(got) != 3 {
		t.Fatalf("the role's route: %s", dump(got))
	}
	for i, route := range []string{"demo/fail", "demo/silent", "agents/anything"} {
		id := "f" + string(rune('0'+i))
		got := ws.Call(route, id, nil)
		if len(got) != 2 || got[0].Type != route+":error" || !strings.Contains(string(got[0].Payload), `"code":"forbidden"`) ||
			got[0].Seq != 1 || got[1].Type != route+":finish" || got[1].Seq != 2 {
			t.Fatalf("%s: %s", route, dump(got))
		}
	}
	// A last allowed request: NATS keeps the gateway's publishes in order,
	// so once the spy has it, it has anything published before it.
	if got := ws.Call("demo/echo", "e2", "last"); len(got) != 2 {
		t.Fatalf("the last request: %s", dump(got))
	}
	fabrictest.Eventually(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(published) > 0 && published[len(published)-1] == "fabric.req.demo.echo" && len(published) >= 3
	})
	_ = sub.Unsubscribe()
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"fabric.req.demo.echo", "fabric.req.demo.count", "fabric.req.demo.echo"}; !slices.Equal(published, want) {
		t.Fatalf("published %v, want only the allowed requests %v", published, want)
	}
	waitMetric(t, g, `fabric_gateway_requests_total{outcome="forbidden",route="demo/fail"} 1`)
}

// A token's own route claim narrows what the policy allows.
func TestAuthRoutesClaimNarrows(t *testing.T) {
	j, err := auth.NewJWT(auth.JWTConfig{HMACSecret: jwtSecret, RoutesClaim: "routes"})
	if err != nil {
		t.Fatal(err)
	}
	f := fabrictest.Start(t, gateway.Config{Auth: &gateway.AuthConfig{Authenticator: j}})
	ws2 := fabrictest.Dial(t, f.Gateway.URL)
	ws2.Hello(map[string]any{"token": token(t, "carol", time.Hour, map[string]any{"routes": []string{"demo/echo"}})})
	if got := ws2.Call("demo/echo", "a", nil); got[0].Type != "demo/echo:response" {
		t.Fatalf("allowed: %s", dump(got))
	}
	if got := ws2.Call("demo/count", "b", nil); !strings.Contains(string(got[0].Payload), "forbidden") {
		t.Fatalf("not in the token's routes: %s", dump(got))
	}
}

// Resume re-authenticates: the session resumes only for a valid token of
// its own user; another user's token gets a new session of that user.
func TestAuthResumeNeedsSameUser(t *testing.T) {
	_, g := authFabric(t, gateway.AuthConfig{}, "")
	ws := fabrictest.Dial(t, g.URL)
	w := ws.Hello(map[string]any{"token": token(t, "alice", time.Hour, nil)})
	dropped(t, g, ws)

	mallory := fabrictest.Dial(t, g.URL)
	hello := resumeHello(w)
	hello["token"] = token(t, "mallory", time.Hour, nil)
	if w2 := mallory.Hello(hello); w2.Resumed || w2.SessionID == w.SessionID || w2.User != "mallory" {
		t.Fatalf("another user resumed alice's session: %+v", w2)
	}

	anon := fabrictest.Dial(t, g.URL)
	anon.Send(map[string]any{"type": protocol.TypeHello, "payload": resumeHello(w)})
	if code := anon.CloseCode(); code != int(protocol.CloseUnauthorized) {
		t.Fatalf("resume without a token: close %d, want 4502", code)
	}

	alice := fabrictest.Dial(t, g.URL)
	hello = resumeHello(w)
	hello["token"] = token(t, "alice", time.Hour, nil)
	if w3 := alice.Hello(hello); !w3.Resumed || w3.SessionID != w.SessionID {
		t.Fatalf("alice did not resume her session: %+v", w3)
	}
}

// refresh sends sys/refresh with tok and returns the answer.
func refresh(ws *fabrictest.WS, id, tok string) protocol.Message {
	ws.Send(map[string]any{"type": protocol.TypeRefresh, "id": id, "payload": map[string]string{"token": tok}})
	return ws.Read()
}

// A token that expires closes the connection with 4504 after the grace
// period, unless sys/refresh brings a valid token of the same user in time.
func TestAuthRefresh(t *testing.T) {
	_, g := authFabric(t, gateway.AuthConfig{RefreshGrace: 300 * time.Millisecond}, `
everyone: ["demo/echo"]
roles:
  counter: ["demo/count"]
`)
	t.Run("expires", func(t *testing.T) {
		ws := fabrictest.Dial(t, g.URL)
		// exp has whole seconds: 2 s ahead is at least 1 s ahead.
		ws.Hello(map[string]any{"token": token(t, "alice", 2*time.Second, nil)})
		if code := ws.CloseCode(); code != int(protocol.CloseTokenExpired) {
			t.Fatalf("close %d, want 4504", code)
		}
	})
	t.Run("refreshed", func(t *testing.T) {
		ws := fabrictest.Dial(t, g.URL)
		ws.Hello(map[string]any{"token": token(t, "alice", 2*time.Second, nil)})
		if got := ws.Call("demo/count", "c1", map[string]int{"n": 1}); !strings.Contains(string(got[0].Payload), "forbidden") {
			t.Fatalf("before refresh: %s", dump(got))
		}
		for _, bad := range []struct{ tok, code string }{
			{"garbage", "unauthorized"},
			{token(t, "mallory", time.Hour, nil), "unauthorized"},
			{token(t, "alice", -time.Minute, nil), "unauthorized"},
		} {
			m := refresh(ws, "r0", bad.tok)
			if m.Type != protocol.TypeError || m.ID != "r0" || !strings.Contains(string(m.Payload), bad.code) {
				t.Fatalf("bad refresh answered %+v", m)
			}
		}
		m := refresh(ws, "r1", token(t, "alice", time.Hour, map[string]any{"roles": "counter"}))
		var r protocol.Refreshed
		if m.Type != protocol.TypeRefreshed || m.ID != "r1" || m.Decode(&r) != nil || r.ExpiresInMs < time.Hour.Milliseconds()-time.Minute.Milliseconds() {
			t.Fatalf("refresh answered %+v", m)
		}
		// The new roles apply at once, and the connection outlives the old
		// token and its grace.
		if got := ws.Call("demo/count", "c2", map[string]int{"n": 1}); len(got) != 3 {
			t.Fatalf("after refresh: %s", dump(got))
		}
		time.Sleep(2500 * time.Millisecond) // past the old token's exp and grace
		if got := ws.Call("demo/echo", "e1", nil); len(got) != 2 {
			t.Fatalf("after the old expiry: %s", dump(got))
		}
	})
	waitMetric(t, g, `fabric_gateway_authentications_total{kind="refresh",result="wrong_user"} 1`)
	waitMetric(t, g, `fabric_gateway_closes_total{code="4504"} 1`)
}

// A user has at most MaxConnectionsPerUser connections to a gateway.
func TestAuthMaxConnectionsPerUser(t *testing.T) {
	_, g := authFabric(t, gateway.AuthConfig{MaxConnectionsPerUser: 2}, "")
	tok := token(t, "alice", time.Hour, nil)
	a := fabrictest.Dial(t, g.URL)
	a.Hello(map[string]any{"token": tok})
	b := fabrictest.Dial(t, g.URL)
	b.Hello(map[string]any{"token": tok})
	c := fabrictest.Dial(t, g.URL)
	c.Send(map[string]any{"type": protocol.TypeHello, "payload": map[string]any{"token": tok}})
	if code := c.CloseCode(); code != int(protocol.CloseUserLimit) {
		t.Fatalf("third connection: close %d, want 4003", code)
	}
	other := fabrictest.Dial(t, g.URL)
	if w := other.Hello(map[string]any{"token": token(t, "bob", time.Hour, nil)}); w.User != "bob" {
		t.Fatalf("another user: %+v", w)
	}
	a.Close()
	waitMetric(t, g, "fabric_gateway_connections 2") // b and bob's: a's count is released
	d := fabrictest.Dial(t, g.URL)
	if w := d.Hello(map[string]any{"token": tok}); w.User != "alice" {
		t.Fatalf("after one closed: %+v", w)
	}
}

// The connect hook: the application authenticates over NATS. With no
// responder the gateway cannot decide and closes with 1013 (try again
// later), not 4502.
func TestAuthConnectHook(t *testing.T) {
	ns := fabrictest.NATS(t)
	hookConn := fabrictest.Connect(t, ns, "gw-auth")
	hook, err := auth.NewNATS(hookConn, auth.NATSConfig{Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gw"), gateway.Config{Auth: &gateway.AuthConfig{Authenticator: hook}})
	fabrictest.StartDemoWorker(t, fabrictest.Connect(t, ns, "worker"), workers.Config{})

	ws := fabrictest.Dial(t, g.URL)
	ws.Send(map[string]any{"type": protocol.TypeHello, "payload": map[string]any{"token": "app-token"}})
	if code := ws.CloseCode(); code != int(protocol.CloseTryAgainLater) {
		t.Fatalf("no hook: close %d, want 1013", code)
	}

	app := fabrictest.Connect(t, ns, "app")
	_, err = app.QueueSubscribe(hook.Subject(), "auth", func(m *nats.Msg) {
		var req auth.ConnectRequest
		_ = json.Unmarshal(m.Data, &req)
		reply := map[string]any{"user": "dave", "routes": []string{"demo/echo"}}
		if req.Token != "app-token" {
			reply = map[string]any{"error": map[string]string{"code": "unauthorized", "message": "unknown token"}}
		}
		b, _ := json.Marshal(reply)
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = app.Flush()
	ws = fabrictest.Dial(t, g.URL)
	if w := ws.Hello(map[string]any{"token": "app-token"}); w.User != "dave" || w.ExpiresInMs != 0 {
		t.Fatalf("welcome %+v", w)
	}
	if got := ws.Call("demo/count", "c", nil); !strings.Contains(string(got[0].Payload), "forbidden") {
		t.Fatalf("the hook's routes: %s", dump(got))
	}
	bad := fabrictest.Dial(t, g.URL)
	bad.Send(map[string]any{"type": protocol.TypeHello, "payload": map[string]any{"token": "stolen"}})
	if code := bad.CloseCode(); code != int(protocol.CloseUnauthorized) {
		t.Fatalf("refused by the hook: close %d, want 4502", code)
	}
}

// Cross-site WebSocket hijacking: a page on another origin cannot open a
// connection in the user's name; the gateway refuses the upgrade (403)
// before reading anything. Same-origin and allow-listed origins pass.
func TestCrossSiteHijackingRefused(t *testing.T) {
	ns := fabrictest.NATS(t)
	same := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gw1"), gateway.Config{})
	listed := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gw2"), gateway.Config{AllowedOrigins: []string{"https://app.example.com", "http://localhost:*"}})
	host := strings.TrimPrefix(strings.TrimSuffix(same.URL, "/ws"), "ws://")
	for _, tc := range []struct {
		g      *fabrictest.Gateway
		origin string
		ok     bool
	}{
		{same, "http://" + host, true},
		{same, "https://evil.example", false},
		{same, "http://" + host + ".evil.example", false},
		{same, "null", false},
		{listed, "https://app.example.com", true},
		{listed, "http://app.example.com", false}, // the scheme counts
		{listed, "https://app.example.com:8443", false},
		{listed, "https://evil.example", false},
		{listed, "http://localhost:5173", true}, // fabric dev's default: any local port
		{listed, "http://localhost", true},
		{listed, "https://localhost:5173", false},
		{listed, "http://localhost:5173.evil.example", false},
		{listed, "http://localhost.evil.example:80", false},
	} {
		_, resp, err := fabrictest.TryDial(t, tc.g.URL, http.Header{"Origin": {tc.origin}})
		switch {
		case tc.ok && err != nil:
			t.Errorf("origin %s: refused: %v", tc.origin, err)
		case !tc.ok && (err == nil || resp == nil || resp.StatusCode != http.StatusForbidden):
			t.Errorf("origin %s: want 403, got %v", tc.origin, err)
		}
	}
}

// No log line, at any level, carries a token or a part of one: not on a
// refused hello, an accepted one, a header token, or a refresh.
func TestAuthNeverLogsTokens(t *testing.T) {
	var logs fabrictest.SyncBuffer
	j, err := auth.NewJWT(auth.JWTConfig{HMACSecret: jwtSecret, Issuer: "test-issuer"})
	if err != nil {
		t.Fatal(err)
	}
	ns := fabrictest.NATS(t)
	g := fabrictest.StartGateway(t, fabrictest.Connect(t, ns, "gw"), gateway.Config{Auth: &gateway.AuthConfig{Authenticator: j}},
		gateway.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	good, expired := token(t, "alice", time.Hour, nil), token(t, "alice", -time.Minute, nil)
	forged := good[:strings.LastIndexByte(good, '.')] + ".c2lnbmF0dXJl"

	for _, tok := range []string{expired, forged, "not-a-jwt-but-secret-looking"} {
		ws := fabrictest.Dial(t, g.URL)
		ws.Send(map[string]any{"type": protocol.TypeHello, "payload": map[string]any{"token": tok}})
		ws.CloseCode()
	}
	ws := fabrictest.DialHeader(t, g.URL, bearer(good))
	ws.Hello(nil)
	refresh(ws, "r1", forged)
	refresh(ws, "r2", good)
	ws.Close()
	waitMetric(t, g, "fabric_gateway_connections 0")

	out := logs.String()
	if !strings.Contains(out, "authentication failed") || !strings.Contains(out, "token refresh refused") {
		t.Fatalf("the test did not exercise the logging paths:\n%s", out)
	}
	for _, tok := range []string{good, expired, forged, "not-a-jwt-but-secret-looking"} {
		for _, part := range strings.Split(tok, ".") {
			if len(part) >= 8 && strings.Contains(out, part) {
				t.Errorf("a log line carries part of a token (%q):\n%s", part, out)
			}
		}
	}
}
