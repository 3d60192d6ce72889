package auth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/seed82ac63c1/fabric/auth"
)

func newJWT(t testing.TB, cfg auth.JWTConfig) *auth.JWT {
	t.Helper()
	j, err := auth.NewJWT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

// fullConfig accepts HS256, RS256 and ES256 and checks every claim.
func fullConfig() auth.JWTConfig {
	k := keyring()
	return auth.JWTConfig{
		HMACSecret:    testSecret,
		PublicKeys:    append(append([]byte{}, k.rsaPEM...), k.ecPEM...),
		Issuer:        testIssuer,
		Audience:      []string{testAudience},
		ForwardClaims: []string{"tenant", "plan", "note", "long"},
		RoutesClaim:   "routes",
		RolesClaim:    "roles",
	}
}

func TestJWTRules(t *testing.T) {
	k := keyring()
	full := newJWT(t, fullConfig())
	rsaOnly := newJWT(t, auth.JWTConfig{PublicKeys: k.rsaPEM})
	noClaims := newJWT(t, auth.JWTConfig{HMACSecret: testSecret})
	// Both HS256 and RS256 allowed: an HS256 token "signed" with the RSA
	// public key must still fail, since HS tokens use only the secret.
	mixed := newJWT(t, auth.JWTConfig{HMACSecret: testSecret, PublicKeys: k.rsaPEM, Algorithms: []string{"RS256", "HS256"}})
	strictLeeway := newJWT(t, auth.JWTConfig{HMACSecret: testSecret, Leeway: -1})

	now := time.Now()
	hs := func(over map[string]any) string {
		return sign(t, jwt.SigningMethodHS256, testSecret, claims(over), nil)
	}
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil), nil)
	rsaDER := func() []byte { b, _ := base64.StdEncoding.DecodeString(pemBody(k.rsaPEM)); return b }()

	for _, tc := range []struct {
		name   string
		j      *auth.JWT
		token  string
		reason string // "" means success
		check  func(t *testing.T, id auth.Identity)
	}{
		{name: "HS256", j: full, token: hs(nil), check: func(t *testing.T, id auth.Identity) {
			if id.User != "alice" {
				t.Errorf("user %q", id.User)
			}
			if d := time.Until(id.Expires); d < 59*time.Minute || d > time.Hour {
				t.Errorf("expires in %v", d)
			}
		}},
		{name: "RS256", j: full, token: sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), nil)},
		{name: "ES256", j: full, token: sign(t, jwt.SigningMethodES256, k.ec, claims(nil), nil)},
		{name: "kid ignored for PEM keys", j: rsaOnly, token: sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), map[string]any{"kid": "whatever"})},
		{name: "iss and aud not checked unless configured", j: noClaims, token: hs(map[string]any{"iss": "elsewhere", "aud": "other"})},

		// Time.
		{name: "expired", j: full, token: hs(map[string]any{"exp": now.Add(-time.Hour).Unix()}), reason: "token expired"},
		{name: "expired within leeway", j: full, token: hs(map[string]any{"exp": now.Add(-10 * time.Second).Unix()})},
		{name: "expired, no leeway", j: strictLeeway, token: hs(map[string]any{"exp": now.Add(-2 * time.Second).Unix()}), reason: "token expired"},
		{name: "missing exp", j: full, token: hs(map[string]any{"exp": nil}), reason: "missing exp claim"},
		{name: "exp not a number", j: full, token: hs(map[string]any{"exp": "tomorrow"}), reason: "invalid claims"},
		{name: "not yet valid", j: full, token: hs(map[string]any{"nbf": now.Add(time.Hour).Unix()}), reason: "token not valid yet"},
		{name: "nbf within leeway", j: full, token: hs(map[string]any{"nbf": now.Add(10 * time.Second).Unix()})},
		{name: "nbf checked even when iss is not", j: noClaims, token: hs(map[string]any{"nbf": now.Add(time.Hour).Unix()}), reason: "token not valid yet"},

		// Issuer and audience.
		{name: "wrong iss", j: full, token: hs(map[string]any{"iss": "https://evil.test"}), reason: "wrong issuer"},
		{name: "missing iss", j: full, token: hs(map[string]any{"iss": nil}), reason: "missing iss claim"},
		{name: "wrong aud", j: full, token: hs(map[string]any{"aud": "other"}), reason: "wrong audience"},
		{name: "missing aud", j: full, token: hs(map[string]any{"aud": nil}), reason: "missing aud claim"},
		{name: "aud array", j: full, token: hs(map[string]any{"aud": []string{"other", testAudience}})},

		// Algorithms and keys.
		{name: "alg none", j: full, token: none, reason: "algorithm not allowed"},
		{name: "alg none, unsigned, HMAC-only verifier", j: noClaims, token: none, reason: "algorithm not allowed"},
		{name: "HS256 signed with RSA public PEM", j: rsaOnly, token: sign(t, jwt.SigningMethodHS256, k.rsaPEM, claims(nil), nil), reason: "algorithm not allowed"},
		{name: "HS256 signed with RSA public PEM, HS allowed", j: mixed, token: sign(t, jwt.SigningMethodHS256, k.rsaPEM, claims(nil), nil), reason: "bad signature"},
		{name: "HS256 signed with RSA public DER, HS allowed", j: mixed, token: sign(t, jwt.SigningMethodHS256, rsaDER, claims(nil), nil), reason: "bad signature"},
		{name: "RS384 not allowed", j: full, token: sign(t, jwt.SigningMethodRS384, k.rsa, claims(nil), nil), reason: "algorithm not allowed"},
		{name: "PS256 not allowed", j: full, token: sign(t, jwt.SigningMethodPS256, k.rsa, claims(nil), nil), reason: "algorithm not allowed"},
		{name: "HS512 not allowed", j: full, token: sign(t, jwt.SigningMethodHS512, testSecret, claims(nil), nil), reason: "algorithm not allowed"},
		{name: "unknown alg", j: full, token: forge(`{"alg":"XX999","typ":"JWT"}`, `{"sub":"alice"}`, "c2ln"), reason: "algorithm not allowed"},
		{name: "ES256 with no EC key", j: rsaOnly, token: sign(t, jwt.SigningMethodES256, k.ec, claims(nil), nil), reason: "algorithm not allowed"},
		{name: "wrong RSA key", j: full, token: sign(t, jwt.SigningMethodRS256, k.rsa2, claims(nil), nil), reason: "bad signature"},
		{name: "wrong HMAC secret", j: full, token: sign(t, jwt.SigningMethodHS256, []byte("another-secret-of-thirty-two-bytes!!"), claims(nil), nil), reason: "bad signature"},
		{name: "tampered payload", j: full, token: tamper(hs(nil)), reason: "bad signature"},
		{name: "signature stripped", j: full, token: strings.TrimRight(hs(nil), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"), reason: "bad signature"},

		// Shape.
		{name: "empty", j: full, token: "", reason: "no token"},
		{name: "garbage", j: full, token: "not a token", reason: "malformed token"},
		{name: "two segments", j: full, token: "eyJhbGciOiJIUzI1NiJ9.e30", reason: "malformed token"},
		{name: "header not JSON", j: full, token: forge(`{"alg":`, `{}`, "c2ln"), reason: "malformed token"},
		{name: "too long", j: full, token: strings.Repeat("a", auth.DefaultMaxTokenBytes+1), reason: "token longer than"},

		// Subject.
		{name: "missing sub", j: full, token: hs(map[string]any{"sub": nil}), reason: "no sub claim"},
		{name: "sub not a string", j: full, token: hs(map[string]any{"sub": 42}), reason: "no sub claim"},
		{name: "empty sub", j: full, token: hs(map[string]any{"sub": ""}), reason: "no user id"},
		{name: "sub with a newline", j: full, token: hs(map[string]any{"sub": "alice\r\nFabric-User: bob"}), reason: "control characters"},
		{name: "sub too long", j: full, token: hs(map[string]any{"sub": strings.Repeat("a", auth.MaxUserBytes+1)}), reason: "longer than"},
		{name: "unicode sub", j: full, token: hs(map[string]any{"sub": "zoë"}), check: func(t *testing.T, id auth.Identity) {
			if id.User != "zoë" {
				t.Errorf("user %q", id.User)
			}
		}},

		// Forwarded claims, routes and roles.
		{name: "claims forwarded", j: full, token: hs(map[string]any{
			"tenant": "acme", "plan": 3, "note": "line\nbreak", "long": strings.Repeat("x", auth.MaxClaimBytes+1), "other": "not configured",
		}), check: func(t *testing.T, id auth.Identity) {
			if want := map[string]string{"tenant": "acme"}; !reflect.DeepEqual(id.Claims, want) {
				t.Errorf("claims %v, want %v", id.Claims, want)
			}
		}},
		{name: "no forwarded claims", j: noClaims, token: hs(map[string]any{"tenant": "acme"}), check: func(t *testing.T, id auth.Identity) {
			if id.Claims != nil || id.Routes != nil || id.Roles != nil {
				t.Errorf("identity %+v", id)
			}
		}},
		{name: "routes claim string", j: full, token: hs(map[string]any{"routes": "demo/*"}), check: wantRoutes([]string{"demo/*"})},
		{name: "routes claim array", j: full, token: hs(map[string]any{"routes": []string{"demo/*", "agent/**"}}), check: wantRoutes([]string{"demo/*", "agent/**"})},
		{name: "routes claim absent: no route", j: full, token: hs(nil), check: wantRoutes([]string{})},
		{name: "routes claim empty array", j: full, token: hs(map[string]any{"routes": []string{}}), check: wantRoutes([]string{})},
		{name: "routes claim invalid pattern", j: full, token: hs(map[string]any{"routes": []string{"demo/q*"}}), reason: "routes claim: invalid route pattern"},
		{name: "routes claim not strings", j: full, token: hs(map[string]any{"routes": []any{"demo/*", 1}}), reason: "routes claim: invalid value"},
		{name: "routes claim object", j: full, token: hs(map[string]any{"routes": map[string]any{"a": "b"}}), reason: "routes claim: neither"},
		{name: "routes claim too many", j: full, token: hs(map[string]any{"routes": make([]string, auth.MaxClaims+1)}), reason: "routes claim: more than"},
		{name: "roles claim", j: full, token: hs(map[string]any{"roles": []string{"admin", "support"}}), check: func(t *testing.T, id auth.Identity) {
			if !reflect.DeepEqual(id.Roles, []string{"admin", "support"}) {
				t.Errorf("roles %v", id.Roles)
			}
		}},
		{name: "roles claim string", j: full, token: hs(map[string]any{"roles": "admin"}), check: func(t *testing.T, id auth.Identity) {
			if !reflect.DeepEqual(id.Roles, []string{"admin"}) {
				t.Errorf("roles %v", id.Roles)
			}
		}},
		{name: "roles claim bad", j: full, token: hs(map[string]any{"roles": true}), reason: "roles claim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.j.Authenticate(context.Background(), auth.Credentials{Token: tc.token, Source: auth.SourceHello, RemoteAddr: "127.0.0.1:1"})
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				if tc.check != nil {
					tc.check(t, id)
				}
				return
			}
			if err == nil {
				t.Fatalf("got identity %+v, want an error with %q", id, tc.reason)
			}
			if !errors.Is(err, auth.ErrUnauthorized) || errors.Is(err, auth.ErrUnavailable) {
				t.Errorf("%v: want ErrUnauthorized only", err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("got %q, want it to contain %q", err, tc.reason)
			}
			if errors.Is(err, auth.ErrExpired) != (tc.reason == "token expired") {
				t.Errorf("%v: ErrExpired is %v", err, errors.Is(err, auth.ErrExpired))
			}
			checkNoLeak(t, err, tc.token)
			if !reflect.DeepEqual(id, auth.Identity{}) {
				t.Errorf("identity %+v with an error", id)
			}
		})
	}
}

func TestJWTErrorsMatchJWTSentinels(t *testing.T) {
	j := newJWT(t, auth.JWTConfig{HMACSecret: testSecret})
	tok := sign(t, jwt.SigningMethodHS256, testSecret, claims(map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}), nil)
	_, err := j.Authenticate(context.Background(), auth.Credentials{Token: tok})
	if !errors.Is(err, jwt.ErrTokenExpired) || !errors.Is(err, auth.ErrExpired) {
		t.Errorf("%v: want jwt.ErrTokenExpired and auth.ErrExpired", err)
	}
}

func wantRoutes(want []string) func(t *testing.T, id auth.Identity) {
	return func(t *testing.T, id auth.Identity) {
		t.Helper()
		if id.Routes == nil || !reflect.DeepEqual(id.Routes, want) {
			t.Errorf("routes %#v, want %#v", id.Routes, want)
		}
	}
}

// forge builds a token from raw header and payload JSON and a signature.
func forge(header, payload, sig string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "." + sig
}

// tamper replaces a token's payload, keeping its header and signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"mallory","exp":9999999999,"iss":"` + testIssuer + `","aud":"` + testAudience + `"}`))
	return strings.Join(parts, ".")
}

func pemBody(p []byte) string {
	lines := strings.Split(strings.TrimSpace(string(p)), "\n")
	return strings.Join(lines[1:len(lines)-1], "")
}

func TestNewJWTConfigErrors(t *testing.T) {
	k := keyring()
	dir := t.TempDir()
	badJWKS := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(badJWKS, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	privPEM := pemBlock("PRIVATE KEY", must(x509MarshalPKCS8(k.rsa)))
	for _, tc := range []struct {
		name string
		cfg  auth.JWTConfig
		want string
	}{
		{"no key", auth.JWTConfig{}, "no key source"},
		{"short secret", auth.JWTConfig{HMACSecret: []byte("short")}, "at least 32"},
		{"alg none", auth.JWTConfig{HMACSecret: testSecret, Algorithms: []string{"none"}}, `"none" is not supported`},
		{"unknown alg", auth.JWTConfig{HMACSecret: testSecret, Algorithms: []string{"HS1"}}, "not supported"},
		{"HS without secret", auth.JWTConfig{PublicKeys: k.rsaPEM, Algorithms: []string{"HS256"}}, "needs HMACSecret"},
		{"RS without public keys", auth.JWTConfig{HMACSecret: testSecret, Algorithms: []string{"RS256"}}, "needs PublicKeys"},
		{"private key PEM", auth.JWTConfig{PublicKeys: privPEM}, "never a private key"},
		{"not PEM", auth.JWTConfig{PublicKeys: []byte("hello")}, "no PEM block"},
		{"missing JWKS file", auth.JWTConfig{JWKSFile: filepath.Join(dir, "nope.json")}, "JWKSFile"},
		{"bad JWKS file", auth.JWTConfig{JWKSFile: badJWKS}, "JWKSFile"},
		{"JWKS URL not http", auth.JWTConfig{JWKSURL: "file:///etc/passwd"}, "want an absolute http(s) URL"},
		{"JWKS URL relative", auth.JWTConfig{JWKSURL: "/jwks.json"}, "want an absolute http(s) URL"},
		{"bad claim name", auth.JWTConfig{HMACSecret: testSecret, ForwardClaims: []string{"a b"}}, "claim name"},
		{"empty claim name", auth.JWTConfig{HMACSecret: testSecret, ForwardClaims: []string{""}}, "claim name"},
		{"too many claims", auth.JWTConfig{HMACSecret: testSecret, ForwardClaims: make([]string, auth.MaxClaims+1)}, "ForwardClaims"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := auth.NewJWT(tc.cfg)
			if err == nil {
				_ = j.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, auth.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrConfig with %q", err, tc.want)
			}
		})
	}
}

func TestJWTCloseTwice(t *testing.T) {
	j, err := auth.NewJWT(auth.JWTConfig{HMACSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	_ = j.Close()
	_ = j.Close()
}
