package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/auth"
	"github.com/seed82ac63c1/fabric/internal/embeddednats"
)

func ExampleJWT() {
	secret := []byte("an example secret of 32+ bytes!!")
	verifier, err := auth.NewJWT(auth.JWTConfig{
		HMACSecret:    secret, // Algorithms default to HS256
		Issuer:        "https://login.example.com",
		ForwardClaims: []string{"tenant"},
		RoutesClaim:   "routes",
	})
	if err != nil {
		panic(err)
	}
	defer verifier.Close()

	// The issuer's side, for the example.
	token, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub":    "alice",
		"iss":    "https://login.example.com",
		"exp":    time.Now().Add(time.Hour).Unix(),
		"tenant": "acme",
		"routes": []string{"demo/*"},
	}).SignedString(secret)

	id, err := verifier.Authenticate(context.Background(), auth.Credentials{Token: token, Source: auth.SourceHello})
	fmt.Println(id.User, id.Claims["tenant"], id.Routes, err)

	// An unsigned token is refused whatever it claims.
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "mallory"}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	_, err = verifier.Authenticate(context.Background(), auth.Credentials{Token: none})
	fmt.Println(errors.Is(err, auth.ErrUnauthorized), err)
	// Output:
	// alice acme [demo/*] <nil>
	// true auth: unauthorized: algorithm not allowed
}

func ExamplePolicy() {
	policy, err := auth.ParsePolicy([]byte(`{
		"everyone": ["public/**"],
		"roles": {"support": ["demo/*", "agent/**"]}
	}`))
	if err != nil {
		panic(err)
	}
	support := auth.Identity{User: "sam", Roles: []string{"support"}}
	scoped := auth.Identity{User: "sam", Roles: []string{"support"}, Routes: []string{"demo/count"}}
	for _, route := range []string{"public/news", "demo/count", "demo/echo", "agent/run/tool", "billing/pay"} {
		fmt.Println(route, policy.Allowed(support, route), policy.Allowed(scoped, route))
	}
	// Output:
	// public/news true false
	// demo/count true true
	// demo/echo true false
	// agent/run/tool true false
	// billing/pay false false
}

func ExampleMatchPattern() {
	fmt.Println(auth.MatchPattern("demo/*", "demo/count"))
	fmt.Println(auth.MatchPattern("demo/*", "demo/a/b"))
	fmt.Println(auth.MatchPattern("agent/**", "agent/a/b"))
	fmt.Println(auth.MatchPattern("agent/**", "agent"))
	fmt.Println(auth.ValidatePattern("demo/q*"))
	// Output:
	// true
	// false
	// true
	// false
	// auth: invalid route pattern "demo/q*": segment 2: a wildcard must be the whole segment ("*" or "**")
}

// The connect hook: the application answers on "<prefix>.auth.connect".
func ExampleNATS() {
	srv, err := embeddednats.Start(embeddednats.Config{})
	if err != nil {
		panic(err)
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()

	// The application's responder, in a queue group.
	_, _ = nc.QueueSubscribe("fabric.auth.connect", "auth", func(m *nats.Msg) {
		var req auth.ConnectRequest
		_ = json.Unmarshal(m.Data, &req)
		if req.Token != "key-123" {
			_ = m.Respond([]byte(`{"error": {"code": "unauthorized", "message": "unknown API key"}}`))
			return
		}
		_ = m.Respond([]byte(`{"user": "alice", "expiresAt": "2100-01-01T00:00:00Z", "claims": {"tenant": "acme"}, "roles": ["support"]}`))
	})

	// The gateway's side.
	hook, err := auth.NewNATS(nc, auth.NATSConfig{})
	if err != nil {
		panic(err)
	}
	id, err := hook.Authenticate(context.Background(), auth.Credentials{Token: "key-123", RemoteAddr: "192.0.2.1:4321"})
	fmt.Println(id.User, id.Expires.Year(), id.Claims, id.Roles, err)
	_, err = hook.Authenticate(context.Background(), auth.Credentials{Token: "key-999"})
	fmt.Println(err)
	// Output:
	// alice 2100 map[tenant:acme] [support] <nil>
	// auth: unauthorized: connect hook: unknown API key
}
