package subjects

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// DefaultPrefix is the subject prefix and queue group used when none is
// configured.
const DefaultPrefix = "fabric"

// Space builds and parses the subjects under one prefix. The zero Space is
// not usable; create one with [NewSpace]. A Space is a small immutable value.
type Space struct {
	prefix string
	req    string // "<prefix>.req."
	evt    string // "<prefix>.evt."
	cancel string // "<prefix>.cancel."
}

// NewSpace returns the subject space under prefix; "" means [DefaultPrefix].
// A prefix is one or more dot-separated tokens of [A-Za-z0-9_-].
func NewSpace(prefix string) (Space, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	for _, tok := range strings.Split(prefix, ".") {
		if !validToken(tok, 1, 64) {
			return Space{}, fmt.Errorf("%w: %q: tokens must match [A-Za-z0-9_-]{1,64}", ErrPrefix, prefix)
		}
	}
	return Space{
		prefix: prefix,
		req:    prefix + ".req.",
		evt:    prefix + ".evt.",
		cancel: prefix + ".cancel.",
	}, nil
}

// MustSpace is like [NewSpace] but panics on an invalid prefix.
func MustSpace(prefix string) Space {
	s, err := NewSpace(prefix)
	if err != nil {
		panic(err)
	}
	return s
}

// Prefix returns the space's prefix.
func (s Space) Prefix() string { return s.prefix }

// QueueGroup returns the queue group every worker of every language joins, so
// that each request runs once: the prefix itself.
func (s Space) QueueGroup() string { return s.prefix }

// TypeTokens converts a typeName into subject tokens: '/' becomes '.'.
// typeName must be valid.
func TypeTokens(typeName string) string { return strings.ReplaceAll(typeName, "/", ".") }

// Request returns the subject a request for typeName is published on.
func (s Space) Request(typeName string) string { return s.req + TypeTokens(typeName) }

// Requests returns the wildcard matching every request subject.
func (s Space) Requests() string { return s.req + ">" }

// ParseRequest returns the typeName of a request subject.
func (s Space) ParseRequest(subject string) (typeName string, ok bool) {
	rest, ok := strings.CutPrefix(subject, s.req)
	if !ok || rest == "" || strings.IndexByte(rest, typeSeparator) >= 0 {
		return "", false // a '/' in a subject token is no typeName's token
	}
	typeName = strings.ReplaceAll(rest, ".", "/")
	return typeName, ValidateTypeName(typeName) == nil
}

// Reply returns R, the reply subject of request id on session: the subject
// NATS's no-responders status arrives on, and the root of the request's event
// subjects.
func (s Space) Reply(session, id string) string { return s.evt + session + "." + id }

// SessionEvents returns the wildcard a gateway subscribes to for a session:
// it matches R (for no-responders) and every event of every request.
func (s Space) SessionEvents(session string) string { return s.evt + session + ".>" }

// Event returns the subject of an event: "R.<type tokens>.<suffix>".
func Event(reply, typeName, suffix string) string {
	return reply + "." + TypeTokens(typeName) + "." + suffix
}

// ParseEvent splits a subject received on [Space.SessionEvents] of session
// into the message id and the tail after it: "" for R itself (a NATS status
// such as no-responders), else "<type tokens>.<suffix>". It allocates
// nothing.
func (s Space) ParseEvent(session, subject string) (id, tail string, ok bool) {
	rest, ok := strings.CutPrefix(subject, s.evt)
	if !ok {
		return "", "", false
	}
	rest, ok = strings.CutPrefix(rest, session)
	if !ok || len(rest) < 2 || rest[0] != '.' {
		return "", "", false
	}
	rest = rest[1:]
	switch i := strings.IndexByte(rest, '.'); {
	case i < 0:
		return rest, "", true
	case i == 0 || i == len(rest)-1: // an empty token: no subject R or event has one
		return "", "", false
	default:
		return rest[:i], rest[i+1:], true
	}
}

// EventRequest returns the session and message id of an event subject
// ("<prefix>.evt.<session>.<id>.<type tokens>.<suffix>") or of a reply
// subject R, without checking the rest. It allocates nothing.
func (s Space) EventRequest(subject string) (session, id string, ok bool) {
	rest, ok := strings.CutPrefix(subject, s.evt)
	if !ok {
		return "", "", false
	}
	session, rest, ok = strings.Cut(rest, ".")
	if !ok || session == "" {
		return "", "", false
	}
	id, _, _ = strings.Cut(rest, ".")
	if id == "" {
		return "", "", false
	}
	return session, id, true
}

// EventSuffix returns the suffix of an event tail (see [Space.ParseEvent]) of
// a request whose type tokens are typeTokens.
func EventSuffix(tail, typeTokens string) (suffix string, ok bool) {
	rest, ok := strings.CutPrefix(tail, typeTokens)
	if !ok || len(rest) < 2 || rest[0] != '.' {
		return "", false
	}
	suffix = rest[1:]
	return suffix, ValidateSuffix(suffix) == nil
}

// Cancel returns the subject a gateway publishes on to cancel request id of
// session.
func (s Space) Cancel(session, id string) string { return s.cancel + session + "." + id }

// Cancels returns the wildcard every worker subscribes to (outside any queue
// group) to learn of cancels.
func (s Space) Cancels() string { return s.cancel + "*.*" }

// ParseCancel splits a cancel subject into session and id.
func (s Space) ParseCancel(subject string) (session, id string, ok bool) {
	rest, ok := strings.CutPrefix(subject, s.cancel)
	if !ok {
		return "", "", false
	}
	session, id, ok = strings.Cut(rest, ".")
	return session, id, ok && session != "" && id != "" && !strings.Contains(id, ".")
}

// PushSession returns the subject of pushes to one session.
func (s Space) PushSession(session string) string { return s.prefix + ".push.session." + session }

// PushUser returns the subject of pushes to every session of a user. The user
// id is encoded with [EncodeUser].
func (s Space) PushUser(user string) string { return s.prefix + ".push.user." + EncodeUser(user) }

// PushAll returns the subject of pushes to every session.
func (s Space) PushAll() string { return s.prefix + ".push.all" }

// Takeover returns the subject on which the gateway holding a session answers
// another gateway that is resuming it. Gateways only; workers never use it.
func (s Space) Takeover(session string) string { return s.prefix + ".gw.session." + session }

// AuthConnect returns the subject of the connect hook: a gateway configured
// to delegate authentication sends each client's credentials there as a
// request and an application's responder answers with the identity.
func (s Space) AuthConnect() string { return s.prefix + ".auth.connect" }

// EncodeUser encodes a user id, which may hold any character, into one
// subject token: unpadded base64url of its UTF-8 bytes.
func EncodeUser(user string) string { return base64.RawURLEncoding.EncodeToString([]byte(user)) }

// NATS headers of the contract. NATS headers are case-sensitive: they are
// spelled exactly so, and set with direct map assignment, never through
// http.Header's canonicalising Set.
const (
	HeaderID          = "Fabric-Id"      // request → worker, event → gateway: the message id
	HeaderSession     = "Fabric-Session" // request: the session id
	HeaderUser        = "Fabric-User"    // request: the authenticated user id, when there is one
	HeaderClaims      = "Fabric-Claims"  // request: the identity's forwarded claims, a JSON object of strings, when there are any
	HeaderSeq         = "Fabric-Seq"     // event: 1, 2, … per request
	HeaderType        = "Fabric-Type"    // push: the frame type
	HeaderOrigin      = "Fabric-Origin"  // event: "gateway" on an event a gateway made (timeout, cancel), stored in durable mode
	HeaderDurable     = "Fabric-Durable" // request: "1" when a gateway stores the events: publish them to JetStream and await its acks
	HeaderTraceparent = "traceparent"    // W3C trace context
	HeaderTracestate  = "tracestate"     // W3C trace context

	// OriginGateway is HeaderOrigin's value.
	OriginGateway = "gateway"
)

// NATS's status header and the status a request gets when no subscriber is
// interested in its subject. The status arrives on the reply subject R, with
// no body.
const (
	HeaderStatus       = "Status"
	StatusNoResponders = "503"
)

// Wildcards and parsers for watchers: a debugging tool (`fabric tail`, the
// inspector) that sees every fabric message with plain subscriptions.

// anyToken is the NATS wildcard for one token.
const anyToken = "*"

func orAny(token string) string {
	if token == "" {
		return anyToken
	}
	return token
}

// EventWildcard returns the wildcard matching the events of the requests
// with session, id and typeName, each "" meaning any:
// "<prefix>.evt.<session|*>.<id|*>.<type tokens>.*", or
// "<prefix>.evt.<session|*>.<id|*>.>" for any typeName. It never matches a
// reply subject R itself, where only NATS statuses for the requester arrive.
// typeName, if not "", must be valid.
func (s Space) EventWildcard(session, id, typeName string) string {
	tail := ">"
	if typeName != "" {
		tail = TypeTokens(typeName) + "." + anyToken
	}
	return s.evt + orAny(session) + "." + orAny(id) + "." + tail
}

// ParseEventSubject parses the subject of an event of any session and
// request, "<prefix>.evt.<session>.<id>.<type tokens>.<suffix>": the
// typeName is every token between the id and the last one, the suffix. Each
// part must follow its name rule; the session, which may be a gateway's or a
// calling worker's, must be a token of [A-Za-z0-9_-]{1,64}. A reply subject
// R, which has no type tokens, is not an event.
func (s Space) ParseEventSubject(subject string) (session, id, typeName, suffix string, ok bool) {
	rest, ok := strings.CutPrefix(subject, s.evt)
	if !ok {
		return "", "", "", "", false
	}
	session, rest, _ = strings.Cut(rest, ".")
	id, rest, _ = strings.Cut(rest, ".")
	i := strings.LastIndexByte(rest, '.')
	if i < 0 || !validToken(session, 1, MaxSessionIDLen) || ValidateID(id) != nil {
		return "", "", "", "", false
	}
	tokens, suffix := rest[:i], rest[i+1:]
	if strings.IndexByte(tokens, typeSeparator) >= 0 {
		return "", "", "", "", false // a '/' in a subject token is no typeName's token
	}
	typeName = strings.ReplaceAll(tokens, ".", "/")
	if ValidateTypeName(typeName) != nil || ValidateSuffix(suffix) != nil {
		return "", "", "", "", false
	}
	return session, id, typeName, suffix, true
}

// CancelWildcard returns the wildcard matching the cancels of the requests
// with session and id, each "" meaning any. CancelWildcard("", "") is
// [Space.Cancels].
func (s Space) CancelWildcard(session, id string) string {
	return s.cancel + orAny(session) + "." + orAny(id)
}

// Push targets: the token after "<prefix>.push." in a push subject.
const (
	PushToSession = "session" // <prefix>.push.session.<session>
	PushToUser    = "user"    // <prefix>.push.user.<encoded user>
	PushToAll     = "all"     // <prefix>.push.all
)

// Pushes returns the wildcard matching every push subject.
func (s Space) Pushes() string { return s.prefix + ".push.>" }

// ParsePush splits a push subject into its target, one of [PushToSession],
// [PushToUser] and [PushToAll], and the target's key: the session id, the
// encoded user id (see [EncodeUser]), or "" for every session.
func (s Space) ParsePush(subject string) (to, key string, ok bool) {
	rest, ok := strings.CutPrefix(subject, s.prefix+".push.")
	if !ok {
		return "", "", false
	}
	if rest == PushToAll {
		return PushToAll, "", true
	}
	to, key, _ = strings.Cut(rest, ".")
	if (to != PushToSession && to != PushToUser) || !validToken(key, 1, 1<<16) {
		return "", "", false
	}
	return to, key, true
}
