package wsframe

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"
)

// Opcode is a frame's opcode (RFC 6455 §5.2).
type Opcode byte

// The opcodes RFC 6455 defines; the others are reserved.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (close, ping, pong or a
// reserved one).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// MaxControlPayload is the largest payload of a control frame.
const MaxControlPayload = 125

// Close codes this package produces or treats specially (RFC 6455 §7.4.1).
const (
	CloseProtocolError    = 1002
	CloseNoStatusReceived = 1005 // not sent: what a close frame without a code means
	CloseMessageTooBig    = 1009
)

// ErrTooLarge is returned by Reader.Next for a message whose payload,
// summed over its fragments, would exceed the Reader's Limit. The
// connection should be closed with CloseMessageTooBig.
var ErrTooLarge = errors.New("wsframe: message larger than the limit")

// ProtocolError is a frame that breaks RFC 6455. The connection should be
// closed with CloseProtocolError.
type ProtocolError struct {
	Reason string // what was wrong, for logs and the close frame
}

func (e *ProtocolError) Error() string { return "wsframe: " + e.Reason }

func protocolError(reason string) error { return &ProtocolError{Reason: reason} }

// AppendHeader appends the header of a final, unmasked frame (a server's)
// with opcode op and n payload bytes.
func AppendHeader(b []byte, op Opcode, n int) []byte {
	b0 := 0x80 | byte(op)
	switch {
	case n < 126:
		return append(b, b0, byte(n))
	case n <= 0xFFFF:
		return append(b, b0, 126, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, b0, 127), uint64(n))
	}
}

// HeaderLen is the length of AppendHeader's header for n payload bytes.
func HeaderLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xFFFF:
		return 4
	default:
		return 10
	}
}

// AppendFrame appends a whole final, unmasked frame.
func AppendFrame(b []byte, op Opcode, payload []byte) []byte {
	return append(AppendHeader(b, op, len(payload)), payload...)
}

// ClosePayload is the payload of a close frame with code and reason; code
// CloseNoStatusReceived gives an empty payload. A reason is cut, at a rune
// boundary, to what fits in a control frame.
func ClosePayload(code int, reason string) []byte {
	if code == CloseNoStatusReceived {
		return nil
	}
	for len(reason) > MaxControlPayload-2 {
		_, size := utf8.DecodeLastRuneInString(reason)
		reason = reason[:len(reason)-size]
	}
	return append(binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code)), reason...)
}

// ParseClose reads a close frame's payload: an empty payload is
// CloseNoStatusReceived; a code a peer may not send or a reason that is not
// UTF-8 is a *ProtocolError.
func ParseClose(payload []byte) (code int, reason string, err error) {
	switch {
	case len(payload) == 0:
		return CloseNoStatusReceived, "", nil
	case len(payload) == 1:
		return 0, "", protocolError("close frame with a one-byte payload")
	}
	code = int(binary.BigEndian.Uint16(payload))
	if !validReceivedCloseCode(code) {
		return 0, "", protocolError("invalid close code")
	}
	if !utf8.Valid(payload[2:]) {
		return 0, "", protocolError("close reason is not UTF-8")
	}
	return code, string(payload[2:]), nil
}

// validReceivedCloseCode reports whether a peer may send code: the codes
// RFC 6455 and the IANA registry define for use in a close frame, and the
// ranges for libraries (3000–3999) and applications (4000–4999). 1004–1006
// and 1015 are reserved or must not be sent.
func validReceivedCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	default:
		return code >= 3000 && code <= 4999
	}
}
