package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/seed82ac63c1/fabric/auth"
)

func authenticate(j *auth.JWT, token string) (auth.Identity, error) {
	return j.Authenticate(context.Background(), auth.Credentials{Token: token, Source: auth.SourceHeader})
}

func TestJWKSFile(t *testing.T) {
	k := keyring()
	path := filepath.Join(t.TempDir(), "jwks.json")
	set := jwksJSON(t,
		jwkSpec{kid: "rsa-1", alg: "RS256", key: &k.rsa.PublicKey},
		jwkSpec{kid: "ec-1", alg: "ES256", key: &k.ec.PublicKey},
		jwkSpec{kid: "rsa-noalg", key: &k.rsa2.PublicKey},
	)
	if err := os.WriteFile(path, set, 0o600); err != nil {
		t.Fatal(err)
	}
	j := newJWT(t, auth.JWTConfig{JWKSFile: path, HMACSecret: testSecret, Algorithms: []string{"RS256", "ES256", "HS256"}})

	kid := func(id string) map[string]any { return map[string]any{"kid": id} }
	for _, tc := range []struct {
		name, token, reason string
	}{
		{"RS256 by kid", sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), kid("rsa-1")), ""},
		{"ES256 by kid", sign(t, jwt.SigningMethodES256, k.ec, claims(nil), kid("ec-1")), ""},
		{"JWK without alg", sign(t, jwt.SigningMethodRS256, k.rsa2, claims(nil), kid("rsa-noalg")), ""},
		{"no kid: every key of the family", sign(t, jwt.SigningMethodRS256, k.rsa2, claims(nil), nil), ""},
		{"unknown kid", sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), kid("rsa-2")), "unknown key id"},
		{"kid of another key", sign(t, jwt.SigningMethodRS256, k.rsa2, claims(nil), kid("rsa-1")), "bad signature"},
		{"kid of a key with another alg", sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), kid("ec-1")), "key type does not match"},
		{"kid of a JWK without alg, wrong family", sign(t, jwt.SigningMethodES256, k.ec, claims(nil), kid("rsa-noalg")), "key type does not match"},
		{"kid not a string", sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), map[string]any{"kid": 7}), "malformed key id"},
		{"HS256 with the kid of an RSA JWK", sign(t, jwt.SigningMethodHS256, k.rsaPEM, claims(nil), kid("rsa-1")), "bad signature"},
		{"HS256 with the secret ignores kid", sign(t, jwt.SigningMethodHS256, testSecret, claims(nil), kid("rsa-1")), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := authenticate(j, tc.token)
			switch {
			case tc.reason == "" && err != nil:
				t.Fatalf("got %v, want success", err)
			case tc.reason != "" && (err == nil || !errors.Is(err, auth.ErrUnauthorized) || !strings.Contains(err.Error(), tc.reason)):
				t.Fatalf("got %v, want ErrUnauthorized with %q", err, tc.reason)
			}
			checkNoLeak(t, err, tc.token)
		})
	}
}

// jwksServer serves a JWK Set that the test can replace, and counts fetches.
type jwksServer struct {
	*httptest.Server
	set  atomic.Pointer[[]byte]
	hits atomic.Int64
}

func newJWKSServer(t *testing.T, set []byte) *jwksServer {
	s := &jwksServer{}
	s.set.Store(&set)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*s.set.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

// countingServer counts requests: the place a hostile token would like the
// verifier to fetch keys from.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var hits atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "nothing here", http.StatusNotFound)
	}))
	t.Cleanup(s.Close)
	return s, &hits
}

func newJWTWithClient(t *testing.T, cfg auth.JWTConfig) *auth.JWT {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	j, err := auth.NewJWT(cfg, auth.WithHTTPClient(client))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close(); client.CloseIdleConnections() })
	return j
}

func TestJWKSURLRotation(t *testing.T) {
	k := keyring()
	srv := newJWKSServer(t, jwksJSON(t, jwkSpec{kid: "k1", alg: "RS256", key: &k.rsa.PublicKey}))
	j := newJWTWithClient(t, auth.JWTConfig{JWKSURL: srv.URL, Issuer: testIssuer})
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches at start, want 1", n)
	}

	if _, err := authenticate(j, sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), map[string]any{"kid": "k1"})); err != nil {
		t.Fatalf("k1: %v", err)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches after a known kid, want 1 (cached)", n)
	}

	// The issuer rotates to k2 and drops k1.
	rotated := jwksJSON(t, jwkSpec{kid: "k2", alg: "RS256", key: &k.rsa2.PublicKey})
	srv.set.Store(&rotated)
	id, err := authenticate(j, sign(t, jwt.SigningMethodRS256, k.rsa2, claims(nil), map[string]any{"kid": "k2"}))
	if err != nil || id.User != "alice" {
		t.Fatalf("k2 after rotation: %+v, %v", id, err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches after rotation, want 2", n)
	}
	// k1 was dropped from the set: its tokens no longer verify.
	if _, err := authenticate(j, sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), map[string]any{"kid": "k1"})); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("k1 after rotation: %v, want ErrUnauthorized", err)
	}

	// Unknown kids within JWKSMinRefreshInterval fail at once, without
	// another fetch: forged kids cannot make the gateway hammer the issuer.
	start := time.Now()
	for i := range 20 {
		tok := sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), map[string]any{"kid": "forged-" + string(rune('a'+i))})
		if _, err := authenticate(j, tok); err == nil || !strings.Contains(err.Error(), "unknown key id") {
			t.Fatalf("forged kid: %v, want unknown key id", err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("20 forged kids took %v", d)
	}
	if n := srv.hits.Load(); n > 3 {
		t.Errorf("%d fetches after forged kids, want at most 3", n)
	}
}

func TestJWKSNeverFetchesTokenURLs(t *testing.T) {
	k := keyring()
	srv := newJWKSServer(t, jwksJSON(t, jwkSpec{kid: "k1", alg: "RS256", key: &k.rsa.PublicKey}))
	evil, evilHits := countingServer(t)
	j := newJWTWithClient(t, auth.JWTConfig{JWKSURL: srv.URL})

	// The attacker signs with its own key and points every header that
	// names a key location at its server.
	for _, header := range []map[string]any{
		{"jku": evil.URL + "/jwks.json"},
		{"x5u": evil.URL + "/cert.pem"},
		{"kid": evil.URL + "/jwks.json"},
		{"jku": evil.URL, "kid": "k9"},
		{"jwk": map[string]any{"kty": "RSA", "n": "AQAB", "e": "AQAB"}},
	} {
		tok := sign(t, jwt.SigningMethodRS256, k.rsa2, claims(nil), header)
		if _, err := authenticate(j, tok); !errors.Is(err, auth.ErrUnauthorized) {
			t.Errorf("header %v: %v, want ErrUnauthorized", header, err)
		}
	}
	if n := evilHits.Load(); n != 0 {
		t.Errorf("the token's URL was fetched %d times", n)
	}
}

func TestJWKSURLUnreachable(t *testing.T) {
	down, _ := countingServer(t) // answers 404
	_, err := auth.NewJWT(auth.JWTConfig{JWKSURL: down.URL, JWKSTimeout: time.Second})
	if !errors.Is(err, auth.ErrConfig) {
		t.Fatalf("got %v, want ErrConfig", err)
	}
}

func TestJWTConcurrent(t *testing.T) {
	k := keyring()
	srv := newJWKSServer(t, jwksJSON(t, jwkSpec{kid: "k1", alg: "RS256", key: &k.rsa.PublicKey}))
	cfg := fullConfig()
	cfg.JWKSURL = srv.URL
	j := newJWTWithClient(t, cfg)
	tokens := []string{
		sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), map[string]any{"kid": "k1"}),
		sign(t, jwt.SigningMethodHS256, testSecret, claims(nil), nil),
		sign(t, jwt.SigningMethodES256, k.ec, claims(nil), nil),
	}
	done := make(chan error)
	for g := range 8 {
		go func() {
			var err error
			for i := range 50 {
				if _, e := authenticate(j, tokens[(g+i)%len(tokens)]); e != nil {
					err = e
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
