package gateway

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// tokenSigner signs and checks resume tokens: an HMAC-SHA256, keyed with a
// secret every gateway shares, over the session id and its user. Any gateway
// can check a token without shared state, and a token is worthless for any
// other session or user.
type tokenSigner struct{ secret []byte }

const tokenContext = "fabric.v1 resume\x00"

func (t tokenSigner) sign(sessionID, user string) string {
	return base64.RawURLEncoding.EncodeToString(t.mac(sessionID, user))
}

func (t tokenSigner) verify(sessionID, user, token string) bool {
	got, err := base64.RawURLEncoding.DecodeString(token)
	return err == nil && hmac.Equal(got, t.mac(sessionID, user))
}

func (t tokenSigner) mac(sessionID, user string) []byte {
	m := hmac.New(sha256.New, t.secret)
	m.Write([]byte(tokenContext))
	m.Write([]byte(sessionID))
	m.Write([]byte{0})
	m.Write([]byte(user))
	return m.Sum(nil)
}

// newSessionID returns 128 random bits as 22 characters of [A-Za-z0-9_-].
func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func randomSecret() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}
