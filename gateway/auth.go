package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/seed82ac63c1/fabric/auth"
	"github.com/seed82ac63c1/fabric/protocol"
)

// identity is an authenticated client as the gateway keeps it: immutable,
// replaced as a whole when the client refreshes its token.
type identity struct {
	auth.Identity
	claims string // the Fabric-Claims header's value; "" when there are none
}

// anonymous is the identity of every client when authentication is not
// configured.
var anonymous = &identity{}

func newIdentity(id auth.Identity) *identity {
	i := &identity{Identity: id}
	if len(id.Claims) > 0 {
		b, _ := json.Marshal(id.Claims) // strings only: cannot fail
		i.claims = string(b)
	}
	return i
}

var (
	// errNoToken: a client of a gateway that requires authentication
	// presented no token.
	errNoToken = fmt.Errorf("%w: no token", auth.ErrUnauthorized)
	// errExpiredPastGrace: a token whose expiry plus RefreshGrace has
	// passed, though its authenticator's leeway accepted it.
	errExpiredPastGrace = fmt.Errorf("%w (beyond the refresh grace)", auth.ErrExpired)
	// errUserLimit: valid credentials of a user at MaxConnectionsPerUser.
	errUserLimit = errors.New("too many connections for this user")
)

// bearerToken returns the token of an "Authorization: Bearer" header, or "".
func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > len("Bearer ") && strings.EqualFold(h[:len("Bearer ")], "Bearer ") {
		return strings.TrimSpace(h[len("Bearer "):])
	}
	return ""
}

// tokenInQuery reports whether the upgrade request's URL carries what looks
// like a token. Such requests are refused: a URL ends up in proxies' access
// logs and browser histories, so a token there has already leaked; refusing
// tells the developer at once instead of in an incident.
func tokenInQuery(r *http.Request) bool {
	q := r.URL.Query()
	for _, k := range []string{"token", "access_token", "jwt", "auth", "authorization"} {
		if q.Has(k) {
			return true
		}
	}
	return false
}

// authenticate checks token with the configured authenticator, within
// AuthConfig.Timeout, and counts the result under kind. It returns the
// metric's result label with the error.
func (g *Gateway) authenticate(kind, token string, source auth.TokenSource, remote string) (*identity, string, error) {
	a := g.cfg.Auth
	result := authOK
	var id auth.Identity
	var err error
	if token == "" {
		result, err = authMissing, errNoToken
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), a.Timeout)
		id, err = a.Authenticator.Authenticate(ctx, auth.Credentials{Token: token, Source: source, RemoteAddr: remote})
		cancel()
		if err == nil && !id.Expires.IsZero() && time.Until(id.Expires)+a.RefreshGrace <= 0 {
			// Accepted within the authenticator's clock-skew leeway, but past
			// the grace a connection would get: it could not live.
			err = errExpiredPastGrace
		}
		switch {
		case err == nil:
		case errors.Is(err, auth.ErrExpired):
			result = authExpired
		case errors.Is(err, auth.ErrUnauthorized):
			result = authRejected
		default: // ErrUnavailable, or an authenticator of the application's breaking its contract
			result = authUnavailable
		}
	}
	if err != nil {
		g.metrics.authentications.WithLabelValues(kind, result).Inc()
		return nil, result, err
	}
	return newIdentity(id), result, nil
}

// closeReason is the reason of a close or sys/error for an authentication
// failure: the authenticator's reason, which never quotes the token.
func closeReason(err error) string {
	return strings.TrimPrefix(err.Error(), "auth: ")
}

// authenticateHello authenticates the client of c from its hello's token,
// or else its Authorization header. On failure it closes c and returns
// false: 4502 for bad or missing credentials, 1013 when the authenticator
// cannot decide, 4003 when the user is at MaxConnectionsPerUser.
func (c *conn) authenticateHello(h *protocol.Hello) bool {
	g := c.gw
	if g.cfg.Auth == nil {
		c.ident = anonymous
		return true
	}
	token, source := h.Token, auth.SourceHello
	if token == "" {
		token, source = c.bearer, auth.SourceHeader
	}
	c.bearer = ""
	h.Token = ""
	id, result, err := g.authenticate("hello", token, source, c.nc.RemoteAddr().String())
	if err == nil && !g.addUserConn(id.User) {
		result, err = authUserLimit, errUserLimit
		g.metrics.authentications.WithLabelValues("hello", result).Inc()
	}
	if err != nil {
		c.logger().Info("authentication failed", "result", result, "reason", closeReason(err))
		switch result {
		case authUnavailable:
			c.close(protocol.CloseTryAgainLater, "authentication unavailable: try again")
		case authUserLimit:
			c.close(protocol.CloseUserLimit, "too many connections for this user")
		default:
			c.close(protocol.CloseUnauthorized, truncateReason(closeReason(err)))
		}
		return false
	}
	g.metrics.authentications.WithLabelValues("hello", authOK).Inc()
	c.ident = id
	c.countedUser = id.User
	c.setLogFields(func(f *logFields) { f.user = id.User })
	c.armExpiry(id.Expires)
	return true
}

// truncateReason keeps a close reason within the 123 bytes a close frame
// allows.
func truncateReason(s string) string {
	const max = 120
	if len(s) <= max {
		return s
	}
	for i := max; i > 0; i-- {
		if s[i]&0xC0 != 0x80 { // a rune's first byte
			return s[:i]
		}
	}
	return ""
}

// refresh handles sys/refresh: a new token for the connection. The token's
// user must be the session's. On success the new identity applies to the
// session's next requests and the expiry moves; on failure the client gets
// sys/error and the old token's expiry stands.
func (c *conn) refresh(f *protocol.ClientFrame) {
	g := c.gw
	id := validID(*f)
	if g.cfg.Auth == nil {
		c.reject(id, protocol.Errorf(protocol.CodeBadRequest, "authentication is not configured on this gateway"))
		return
	}
	req, err := protocol.DecodeRefresh(f.Payload)
	if err != nil {
		c.reject(id, err)
		return
	}
	ident, result, err := g.authenticate("refresh", req.Token, auth.SourceHello, c.nc.RemoteAddr().String())
	if err == nil && ident.User != c.ident.User {
		result, err = authWrongUser, errors.New("the token is for another user")
		g.metrics.authentications.WithLabelValues("refresh", result).Inc()
	}
	if err != nil {
		c.logger().Info("token refresh refused", "result", result, "reason", closeReason(err))
		if result == authUnavailable {
			c.reject(id, protocol.Errorf(protocol.CodeInternal, "authentication unavailable: try again"))
		} else {
			c.reject(id, protocol.Errorf(protocol.CodeUnauthorized, "%s", closeReason(err)))
		}
		return
	}
	g.metrics.authentications.WithLabelValues("refresh", authOK).Inc()
	c.ident = ident
	c.sess.setIdentity(c, ident)
	c.armExpiry(ident.Expires)
	payload, _ := json.Marshal(protocol.Refreshed{ExpiresInMs: expiresInMs(ident.Expires)})
	c.enqueue(protocol.AppendServerFrame(nil, protocol.TypeRefreshed, id, 0, payload, ""))
}

// expiresInMs is the welcome's and sys/refreshed's expiresInMs: at least 1
// for a token that expires, 0 (absent) for one that does not.
func expiresInMs(expires time.Time) int64 {
	if expires.IsZero() {
		return 0
	}
	return max(time.Until(expires).Milliseconds(), 1)
}

// armExpiry closes c with 4504 RefreshGrace after expires, unless a refresh
// arms it again first. A zero expires disarms it.
func (c *conn) armExpiry(expires time.Time) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.expiryTimer != nil {
		c.expiryTimer.Stop()
		c.expiryTimer = nil
	}
	if c.closing || expires.IsZero() {
		return
	}
	c.expiryTimer = time.AfterFunc(time.Until(expires)+c.gw.cfg.Auth.RefreshGrace, func() {
		c.logger().Info("token expired and was not refreshed: closing")
		c.close(protocol.CloseTokenExpired, "token expired")
	})
}

// addUserConn counts a connection of user, unless the user is at
// MaxConnectionsPerUser.
func (g *Gateway) addUserConn(user string) bool {
	limit := g.cfg.Auth.MaxConnectionsPerUser
	g.mu.Lock()
	defer g.mu.Unlock()
	if limit > 0 && g.userConns[user] >= limit {
		return false
	}
	g.userConns[user]++
	return true
}

func (g *Gateway) removeUserConn(user string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.userConns[user]--; g.userConns[user] <= 0 {
		delete(g.userConns, user)
	}
}

// allowed reports whether the session's identity may call route.
func (s *session) allowedLocked(route string) bool {
	a := s.gw.cfg.Auth
	return a == nil || a.Policy.Allowed(s.ident.Identity, route)
}

// setIdentity replaces the session's identity after c's token refresh, if
// c is still its connection.
func (s *session) setIdentity(c *conn, id *identity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == c {
		s.ident = id
	}
}
