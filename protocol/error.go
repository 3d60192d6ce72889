package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Error is an error that crosses the wire: the payload of an ":error" event
// or of a sys/error frame.
type Error struct {
	Code    Code            `json:"code"`
	Message string          `json:"message"`
	Details json.RawMessage `json:"details,omitempty"`
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Message
}

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, &protocol.Error{Code: protocol.CodeTimeout}) matches any
// timeout.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// AsError returns err as an *Error if it is or wraps one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Payload returns the JSON encoding of e, as sent on the wire.
func (e *Error) Payload() []byte {
	b, err := json.Marshal(e)
	if err != nil { // Details is not valid JSON
		b, _ = json.Marshal(&Error{Code: e.Code, Message: e.Message})
	}
	return b
}
