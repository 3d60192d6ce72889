package protocol

// Code is an error code carried in an ":error" event payload or a sys/error
// frame. Worker handlers may use codes of their own; the fabric itself only
// makes the ones below.
type Code string

// Error codes made by the fabric.
const (
	CodeBadRequest   Code = "bad_request"   // the frame or its payload is invalid
	CodeUnauthorized Code = "unauthorized"  // missing or invalid credentials
	CodeForbidden    Code = "forbidden"     // credentials valid, route not allowed
	CodeNoResponders Code = "no_responders" // no worker serves the route
	CodeTimeout      Code = "timeout"       // the worker fell silent past the inactivity timeout
	CodeCancelled    Code = "cancelled"     // the client cancelled the request
	CodeInterrupted  Code = "interrupted"   // the request's stream was lost in a disconnect
	CodeTooLarge     Code = "too_large"     // the payload exceeds a size limit
	CodeRateLimited  Code = "rate_limited"  // the client sends faster than allowed
	CodeOverloaded   Code = "overloaded"    // too many requests in flight
	CodeInternal     Code = "internal"      // a failure inside the fabric or a handler
)

// ErrorCodes lists the fabric's error codes with their meaning, in catalogue
// order. Code generators read it.
var ErrorCodes = []struct {
	Code        Code
	Description string
}{
	{CodeBadRequest, "The frame or its payload is invalid."},
	{CodeUnauthorized, "Missing or invalid credentials."},
	{CodeForbidden, "The credentials are valid but do not allow this route."},
	{CodeNoResponders, "No worker serves this route."},
	{CodeTimeout, "The worker sent nothing for the request's inactivity timeout."},
	{CodeCancelled, "The client cancelled the request."},
	{CodeInterrupted, "The request's event stream was lost in a disconnect."},
	{CodeTooLarge, "The payload exceeds a size limit."},
	{CodeRateLimited, "The client sends faster than allowed."},
	{CodeOverloaded, "Too many requests are in flight on this connection."},
	{CodeInternal, "A failure inside the fabric or a worker handler."},
}

// CloseCode is a WebSocket close code used by Fabric.
//
// Ranges: 1000–1011 are the standard codes; 4000–4499 mean "reconnect with
// backoff"; 4500–4999 mean "do not reconnect without new credentials or a
// fix".
type CloseCode int

// Close codes.
const (
	CloseNormal         CloseCode = 1000 // the client or server ended the session
	CloseGoingAway      CloseCode = 1001 // the gateway is going away: reconnect at once, elsewhere
	CloseBadFrame       CloseCode = 1002 // a malformed WebSocket frame (RFC 6455 protocol error)
	CloseUnsupported    CloseCode = 1003 // a binary frame was received
	CloseInvalidUTF8    CloseCode = 1007 // a text frame was not valid UTF-8
	CloseTooLarge       CloseCode = 1009 // a frame exceeded maxFrameBytes
	CloseInternal       CloseCode = 1011 // an internal gateway failure
	CloseTryAgainLater  CloseCode = 1013 // the gateway cannot serve the client now (its authenticator is unavailable)
	ClosePingTimeout    CloseCode = 4000 // the client sent nothing for two ping intervals
	CloseSlowConsumer   CloseCode = 4001 // the client read too slowly; its outbound queue overflowed
	CloseRateLimited    CloseCode = 4002 // the client kept sending over its message rate
	CloseUserLimit      CloseCode = 4003 // the user has as many connections to this gateway as allowed
	CloseProtocol       CloseCode = 4500 // protocol violation: the first frame was not sys/hello
	CloseHelloTimeout   CloseCode = 4501 // no sys/hello within the hello timeout
	CloseUnauthorized   CloseCode = 4502 // authentication failed
	CloseSessionResumed CloseCode = 4503 // the session was resumed on another connection
	CloseTokenExpired   CloseCode = 4504 // the token expired and no sys/refresh came within the grace period
)

// Reconnect reports whether a client may reconnect after this close code, and
// whether it should do so at once rather than after a backoff.
func (c CloseCode) Reconnect() (allowed, immediately bool) {
	switch {
	case c == CloseNormal:
		return false, false
	case c == CloseGoingAway:
		return true, true
	case c >= 4500 && c <= 4999:
		return false, false
	default:
		return true, false
	}
}

// CloseCodes lists the close codes with their names and meanings, in
// catalogue order. Code generators and docs read it.
var CloseCodes = []struct {
	Code        CloseCode
	Name        string
	Description string
}{
	{CloseNormal, "normal", "The client or the gateway ended the session."},
	{CloseGoingAway, "going_away", "The gateway is shutting down: reconnect at once, to any gateway, and resume."},
	{CloseBadFrame, "bad_frame", "A malformed WebSocket frame: reserved bits or opcode, an unmasked frame, a fragmented or oversized control frame (RFC 6455 protocol error)."},
	{CloseUnsupported, "binary_frame", "A binary frame was received; the protocol uses text frames only."},
	{CloseInvalidUTF8, "invalid_utf8", "A text frame was not valid UTF-8."},
	{CloseTooLarge, "frame_too_large", "A frame exceeded maxFrameBytes."},
	{CloseInternal, "internal", "An internal gateway failure."},
	{CloseTryAgainLater, "try_again_later", "The gateway cannot serve the client now: its authenticator did not answer. Reconnect with backoff."},
	{ClosePingTimeout, "ping_timeout", "The client sent nothing for two ping intervals. Reconnect with backoff."},
	{CloseSlowConsumer, "slow_consumer", "The client read too slowly and its outbound queue overflowed. Reconnect with backoff."},
	{CloseRateLimited, "rate_limited", "The client kept sending faster than its message rate after frames were refused with rate_limited. Reconnect with backoff, and send slower."},
	{CloseUserLimit, "user_limit", "The user already has as many connections to this gateway as allowed. Reconnect with backoff, or close another connection."},
	{CloseProtocol, "protocol_violation", "The first frame was not a valid sys/hello. Fix the client."},
	{CloseHelloTimeout, "hello_timeout", "No sys/hello arrived within the hello timeout. Fix the client."},
	{CloseUnauthorized, "unauthorized", "Authentication failed. Reconnect only with new credentials."},
	{CloseSessionResumed, "session_resumed", "The session was resumed on another connection, which now owns it."},
	{CloseTokenExpired, "token_expired", "The token expired and no sys/refresh came within the grace period. Reconnect only with a new token."},
}
