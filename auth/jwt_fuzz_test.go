package auth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/seed82ac63c1/fabric/auth"
)

// FuzzJWT feeds arbitrary strings to a verifier that has every kind of key
// (an HMAC secret, RSA and EC PEM keys, a JWKS file) and every claim rule.
// Nothing may panic; every failure is ErrUnauthorized and quotes no part of
// the token; every success is a well-formed identity. The committed corpus
// in testdata/fuzz/FuzzJWT holds HS256 tokens signed with testSecret, valid
// until 2100, and hostile shapes.
func FuzzJWT(f *testing.F) {
	k := keyring()
	path := filepath.Join(f.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwksJSON(f, jwkSpec{kid: "rsa-1", alg: "RS256", key: &k.rsa.PublicKey}), 0o600); err != nil {
		f.Fatal(err)
	}
	cfg := fullConfig()
	cfg.JWKSFile = path
	j := newJWT(f, cfg)

	for _, s := range []string{
		"", ".", "..", "...", "a.b.c", "eyJ.eyJ.", "\x00", "Bearer x",
		sign(f, jwt.SigningMethodHS256, testSecret, claims(nil), nil),
		sign(f, jwt.SigningMethodRS256, k.rsa, claims(nil), map[string]any{"kid": "rsa-1"}),
		sign(f, jwt.SigningMethodES256, k.ec, claims(map[string]any{"routes": "demo/*"}), nil),
		sign(f, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil), nil),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		id, err := j.Authenticate(context.Background(), auth.Credentials{Token: token, Source: auth.SourceHello})
		if err != nil {
			if !errors.Is(err, auth.ErrUnauthorized) || errors.Is(err, auth.ErrUnavailable) {
				t.Fatalf("%v: want ErrUnauthorized only", err)
			}
			checkNoLeak(t, err, token)
			return
		}
		if strings.Count(token, ".") != 2 {
			t.Fatalf("accepted a token of %d segments", strings.Count(token, ".")+1)
		}
		if id.User == "" || len(id.User) > auth.MaxUserBytes || !utf8.ValidString(id.User) || strings.ContainsAny(id.User, "\r\n\x00") {
			t.Fatalf("bad user %q", id.User)
		}
		if id.Expires.IsZero() {
			t.Fatal("accepted a token without exp")
		}
		for _, r := range id.Routes {
			if err := auth.ValidatePattern(r); err != nil {
				t.Fatalf("accepted route pattern: %v", err)
			}
		}
	})
}

// TestFuzzCorpusValidSeed keeps the committed corpus honest: its valid seed
// must pass, so that fuzzing starts from the success path too.
func TestFuzzCorpusValidSeed(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzJWT", "hs256-valid"))
	if err != nil {
		t.Fatal(err)
	}
	_, quoted, _ := strings.Cut(strings.TrimSpace(string(data)), "string(")
	token, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := newJWT(t, fullConfig()).Authenticate(context.Background(), auth.Credentials{Token: token})
	if err != nil || id.User != "alice" || id.Claims["tenant"] != "acme" || len(id.Routes) != 2 {
		t.Fatalf("got %+v, %v", id, err)
	}
}
