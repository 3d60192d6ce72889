package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testIssuer   = "https://issuer.test"
	testAudience = "fabric"
)

// testSecret is the HMAC secret of the tests and of the committed fuzz
// corpus. It protects nothing.
var testSecret = []byte("fabric-test-secret-0123456789-abcdef")

type testKeyring struct {
	rsa, rsa2 *rsa.PrivateKey
	ec        *ecdsa.PrivateKey
	rsaPEM    []byte // the public key of rsa, PKIX PEM
	ecPEM     []byte // the public key of ec, PKIX PEM
}

// keyring returns keys generated once per test binary.
var keyring = sync.OnceValue(func() *testKeyring {
	k := &testKeyring{}
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	k.rsaPEM = publicPEM(&k.rsa.PublicKey)
	k.ecPEM = publicPEM(&k.ec.PublicKey)
	return k
})

func publicPEM(pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// claims returns valid claims for user alice, with over applied (a nil
// value deletes the claim).
func claims(over map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub": "alice",
		"iss": testIssuer,
		"aud": testAudience,
		"exp": time.Now().Add(time.Hour).Unix(),
		"iat": time.Now().Unix(),
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// sign signs c with method and key, adding header fields.
func sign(t testing.TB, method jwt.SigningMethod, key any, c jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwksJSON returns a JWK Set of the public keys, each with kid and alg.
func jwksJSON(t testing.TB, keys ...jwkSpec) []byte {
	t.Helper()
	var set jwkset.JWKSMarshal
	for _, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(k.key, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(k.alg), USE: jwkset.UseSig},
		})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type jwkSpec struct {
	kid, alg string
	key      any
}

// checkNoLeak fails if err's text quotes any part of token.
func checkNoLeak(t testing.TB, err error, token string) {
	t.Helper()
	if err == nil || token == "" {
		return
	}
	text := err.Error()
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(text, part) {
			t.Errorf("error %q quotes the token", text)
		}
	}
	if strings.Contains(text, "eyJ") {
		t.Errorf("error %q quotes a JOSE segment", text)
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func x509MarshalPKCS8(key any) ([]byte, error) { return x509.MarshalPKCS8PrivateKey(key) }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
