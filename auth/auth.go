package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"
)

// Sentinel errors. Every error an [Authenticator] returns matches exactly one
// of ErrUnauthorized and ErrUnavailable with errors.Is.
var (
	// ErrUnauthorized means the credentials were missing, malformed or
	// rejected. A gateway closes the connection with close code 4502 (or
	// answers a resume or refresh with code "unauthorized"); the client must
	// not retry without new credentials. The wrapped reason is safe to log:
	// it never contains the token.
	ErrUnauthorized = errors.New("auth: unauthorized")

	// ErrExpired means the token was valid but has expired. It also matches
	// ErrUnauthorized; a gateway may tell the client to refresh its token.
	ErrExpired = fmt.Errorf("%w: token expired", ErrUnauthorized)

	// ErrUnavailable means the authenticator could not decide: the connect
	// hook has no responder, timed out or answered garbage. The client is
	// not at fault and may reconnect with backoff.
	ErrUnavailable = errors.New("auth: authenticator unavailable")

	// ErrConfig is wrapped by every configuration error of [NewJWT],
	// [NewNATS] and the policy loaders.
	ErrConfig = errors.New("auth: invalid configuration")
)

// Authenticator turns a client's credentials into an [Identity]. It is called
// once per connection (on sys/hello, on resume, and on each token refresh).
// Implementations must be safe for concurrent use and must never put the
// token into an error or a log.
type Authenticator interface {
	Authenticate(ctx context.Context, c Credentials) (Identity, error)
}

// AuthenticatorFunc adapts a function to the [Authenticator] interface.
type AuthenticatorFunc func(ctx context.Context, c Credentials) (Identity, error)

// Authenticate calls f(ctx, c).
func (f AuthenticatorFunc) Authenticate(ctx context.Context, c Credentials) (Identity, error) {
	return f(ctx, c)
}

var (
	_ Authenticator = AuthenticatorFunc(nil)
	_ Authenticator = (*JWT)(nil)
	_ Authenticator = (*NATS)(nil)
)

// TokenSource says where a client's token came from.
type TokenSource string

// Token sources. There is deliberately no query-string source: a token in a
// URL ends up in proxies' access logs.
const (
	SourceHello  TokenSource = "hello"  // the "token" field of sys/hello (browsers)
	SourceHeader TokenSource = "header" // an "Authorization: Bearer" header on the upgrade request
)

// Credentials are what a client presents.
type Credentials struct {
	// Token is the bearer token, without the "Bearer " prefix.
	Token string
	// Source says where Token came from.
	Source TokenSource
	// RemoteAddr is the client's address as the gateway sees it
	// (http.Request.RemoteAddr, or the proxy-reported address when the
	// gateway trusts its proxy).
	RemoteAddr string
}

// Identity is an authenticated client.
type Identity struct {
	// User is the user id: the JWT "sub" claim, or the connect hook's
	// "user". Never empty in an identity an authenticator returns.
	User string
	// Expires is when the credentials stop being valid; the zero time means
	// never.
	Expires time.Time
	// Claims are the configured claims forwarded to workers, string values
	// only. Nil when there are none.
	Claims map[string]string
	// Routes, when not nil, restricts the client to the routes these
	// patterns match (see [ValidatePattern]); an empty non-nil slice allows
	// nothing. Nil means the credentials place no route restriction of their
	// own. See [Policy.Allowed].
	Routes []string
	// Roles are the user's roles, which a [Policy] maps to route patterns.
	Roles []string
}

// Limits on what an identity may carry: its fields travel to workers as NATS
// headers, so they are bounded and free of control characters.
const (
	MaxUserBytes  = 256 // bytes in Identity.User
	MaxClaims     = 32  // entries in Identity.Claims, Routes and Roles, each
	MaxClaimBytes = 256 // bytes in a claim value, a route pattern or a role
)

// checkUser reports why user is not a valid user id, or "".
func checkUser(user string) string {
	switch {
	case user == "":
		return "no user id (sub)"
	case len(user) > MaxUserBytes:
		return fmt.Sprintf("user id longer than %d bytes", MaxUserBytes)
	case !safeText(user):
		return "user id is not valid UTF-8 or contains control characters"
	}
	return ""
}

// safeText reports whether s is valid UTF-8 without control characters, so
// that it can travel in a NATS header or a log line as it is.
func safeText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// safeValue reports whether v may be forwarded as a claim value, a role or a
// route pattern.
func safeValue(v string) bool { return v != "" && len(v) <= MaxClaimBytes && safeText(v) }

// unauthorized returns an error matching ErrUnauthorized (and each of
// causes) whose text is "auth: unauthorized: " + reason. The causes take part
// in errors.Is but never in the text, so a library error that quotes part of
// a token cannot reach a log.
func unauthorized(reason string, causes ...error) error {
	return &reasonError{base: ErrUnauthorized, reason: reason, causes: causes}
}

func unavailable(reason string, causes ...error) error {
	return &reasonError{base: ErrUnavailable, reason: reason, causes: causes}
}

type reasonError struct {
	base   error
	reason string
	causes []error
}

func (e *reasonError) Error() string { return e.base.Error() + ": " + e.reason }

func (e *reasonError) Unwrap() []error { return append([]error{e.base}, e.causes...) }

// Option configures optional dependencies of [NewJWT].
type Option func(*options)

type options struct {
	logger     *slog.Logger
	httpClient *http.Client
}

func buildOptions(opts []Option) options {
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithLogger sets the logger for background events such as a failed JWKS
// refresh. Authenticators never log tokens. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithHTTPClient sets the HTTP client that fetches a JWKS URL. The default
// is a client of its own with [JWTConfig.JWKSTimeout] as its timeout.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) { o.httpClient = c }
}
