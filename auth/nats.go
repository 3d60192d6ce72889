package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
)

// NATSConfig configures a [NATS] authenticator.
type NATSConfig struct {
	// Prefix is the fabric's subject prefix. "" means
	// [subjects.DefaultPrefix].
	Prefix string
	// Subject is where connect requests are sent. "" means the prefix's
	// [subjects.Space.AuthConnect]: "<prefix>.auth.connect".
	Subject string
	// Timeout bounds each request when the context has no earlier deadline.
	// 0 means 2 seconds.
	Timeout time.Duration
}

// DefaultNATSTimeout is [NATSConfig.Timeout]'s default.
const DefaultNATSTimeout = 2 * time.Second

// NATS delegates authentication to the application over NATS request/reply:
// the connect hook. Each Authenticate sends a [ConnectRequest] to the
// configured subject and expects a [ConnectReply]. Run the responder in a
// queue group so that one instance answers; give it NATS permissions so that
// only it may subscribe to the subject, since requests carry tokens.
//
// It is safe for concurrent use.
type NATS struct {
	nc      *nats.Conn
	subject string
	timeout time.Duration
}

// ConnectRequest is the body of a connect request.
type ConnectRequest struct {
	Token  string      `json:"token"`
	Source TokenSource `json:"source,omitempty"` // "hello" or "header"
	Remote string      `json:"remote,omitempty"` // the client's address
}

// ConnectReply is the body of a connect reply: either User (and the other
// identity fields) or Error.
type ConnectReply struct {
	User string `json:"user,omitempty"`
	// ExpiresAt is when the credentials expire: an RFC 3339 string or a
	// number of Unix seconds. Absent or null means never.
	ExpiresAt json.RawMessage   `json:"expiresAt,omitempty"`
	Claims    map[string]string `json:"claims,omitempty"`
	// Routes, when present (even empty), restricts the client to these
	// route patterns; absent means no restriction of its own.
	Routes *[]string `json:"routes,omitempty"`
	Roles  []string  `json:"roles,omitempty"`
	// Error rejects the credentials: code "unauthorized" (or "forbidden")
	// refuses the client; any other code means the hook itself failed.
	Error *protocol.Error `json:"error,omitempty"`
}

// NewNATS returns a connect-hook authenticator that sends requests over nc.
func NewNATS(nc *nats.Conn, cfg NATSConfig) (*NATS, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil NATS connection", ErrConfig)
	}
	space, err := subjects.NewSpace(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	subject := cfg.Subject
	if subject == "" {
		subject = space.AuthConnect()
	}
	if strings.ContainsAny(subject, "*> \t\r\n") || strings.Contains(subject, "..") ||
		strings.HasPrefix(subject, ".") || strings.HasSuffix(subject, ".") {
		return nil, fmt.Errorf("%w: connect subject %q: want a literal NATS subject", ErrConfig, subject)
	}
	switch {
	case cfg.Timeout == 0:
		cfg.Timeout = DefaultNATSTimeout
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("%w: negative Timeout", ErrConfig)
	}
	return &NATS{nc: nc, subject: subject, timeout: cfg.Timeout}, nil
}

// Subject returns the subject connect requests are sent to.
func (n *NATS) Subject() string { return n.subject }

// Authenticate asks the application to authenticate c. Errors match
// [ErrUnauthorized] when the application refused the credentials, and
// [ErrUnavailable] when no responder answered in time or the reply was
// malformed. Neither quotes the token.
func (n *NATS) Authenticate(ctx context.Context, c Credentials) (Identity, error) {
	if c.Token == "" {
		return Identity{}, unauthorized("no token")
	}
	body, err := json.Marshal(ConnectRequest{Token: c.Token, Source: c.Source, Remote: c.RemoteAddr})
	if err != nil {
		return Identity{}, unavailable("encoding the connect request", err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	msg, err := n.nc.RequestWithContext(ctx, n.subject, body)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return Identity{}, unavailable("no responder on connect subject "+n.subject, err)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return Identity{}, unavailable("connect hook timed out on "+n.subject, context.DeadlineExceeded)
	case errors.Is(err, context.Canceled):
		return Identity{}, unavailable("cancelled", context.Canceled)
	case err != nil:
		return Identity{}, unavailable("connect request: "+err.Error(), err)
	}
	return parseConnectReply(msg.Data)
}

func parseConnectReply(data []byte) (Identity, error) {
	var r ConnectReply
	if err := json.Unmarshal(data, &r); err != nil {
		return Identity{}, unavailable("malformed connect reply")
	}
	if r.Error != nil {
		msg := r.Error.Message
		if len(msg) > MaxClaimBytes || !safeText(msg) {
			msg = "credentials refused"
		}
		switch r.Error.Code {
		case protocol.CodeUnauthorized, protocol.CodeForbidden:
			if msg == "" {
				msg = "credentials refused"
			}
			return Identity{}, unauthorized("connect hook: "+msg, r.Error)
		default:
			return Identity{}, unavailable("connect hook failed with code "+strconv.Quote(string(r.Error.Code)), r.Error)
		}
	}
	if why := checkUser(r.User); why != "" {
		return Identity{}, unavailable("malformed connect reply: " + why)
	}
	id := Identity{User: r.User}
	exp, err := parseExpiresAt(r.ExpiresAt)
	if err != nil {
		return Identity{}, unavailable("malformed connect reply: " + err.Error())
	}
	if !exp.IsZero() && !exp.After(time.Now()) {
		return Identity{}, unauthorized("token expired", ErrExpired)
	}
	id.Expires = exp
	if len(r.Claims) > MaxClaims {
		return Identity{}, unavailable(fmt.Sprintf("malformed connect reply: more than %d claims", MaxClaims))
	}
	for k, v := range r.Claims {
		if k == "" || len(k) > 128 || !safeText(k) || !safeValue(v) {
			return Identity{}, unavailable("malformed connect reply: invalid claim")
		}
	}
	if len(r.Claims) > 0 {
		id.Claims = r.Claims
	}
	if r.Routes != nil {
		routes := *r.Routes
		if len(routes) > MaxClaims {
			return Identity{}, unavailable(fmt.Sprintf("malformed connect reply: more than %d routes", MaxClaims))
		}
		for _, p := range routes {
			if err := ValidatePattern(p); err != nil {
				return Identity{}, unavailable("malformed connect reply: " + err.Error())
			}
		}
		id.Routes = append([]string{}, routes...)
	}
	if len(r.Roles) > MaxClaims {
		return Identity{}, unavailable(fmt.Sprintf("malformed connect reply: more than %d roles", MaxClaims))
	}
	for _, role := range r.Roles {
		if !safeValue(role) {
			return Identity{}, unavailable("malformed connect reply: invalid role")
		}
	}
	id.Roles = r.Roles
	return id, nil
}

// parseExpiresAt reads an RFC 3339 string or a number of Unix seconds.
func parseExpiresAt(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return time.Time{}, errors.New("expiresAt: want RFC 3339 or Unix seconds")
		}
		return t, nil
	}
	var secs float64
	if err := json.Unmarshal(raw, &secs); err != nil || secs < 0 || secs > 1<<40 {
		return time.Time{}, errors.New("expiresAt: want RFC 3339 or Unix seconds")
	}
	whole := int64(secs)
	return time.Unix(whole, int64((secs-float64(whole))*1e9)), nil
}
