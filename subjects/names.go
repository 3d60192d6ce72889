package subjects

import (
	"errors"
	"fmt"
	"strings"
)

// Limits of the names in the v1 wire contract.
const (
	MaxTypeNameLen     = 128 // characters in a whole typeName
	MaxTypeSegments    = 8   // segments joined by '/'
	MaxSegmentLen      = 64  // characters in one segment
	MaxSuffixLen       = 32  // characters in an event suffix
	MaxIDLen           = 64  // characters in a message id
	MinSessionIDLen    = 22  // 128 random bits in unpadded base64url
	MaxSessionIDLen    = 64  // characters in a session id
	ReservedSegment    = "sys"
	typeSeparator      = '/'
	eventTypeSeparator = ':'
)

// Sentinel errors returned (wrapped, with the offending detail) by the
// validators. Match them with errors.Is.
var (
	ErrTypeName  = errors.New("subjects: invalid typeName")
	ErrReserved  = errors.New("subjects: reserved typeName")
	ErrSuffix    = errors.New("subjects: invalid event suffix")
	ErrID        = errors.New("subjects: invalid message id")
	ErrSessionID = errors.New("subjects: invalid session id")
	ErrPrefix    = errors.New("subjects: invalid prefix")
)

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// isNameByte reports whether c may follow the first letter of a segment or
// suffix, and whether it may appear anywhere in an id: [A-Za-z0-9_-].
func isNameByte(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' || c == '-' }

// validSegment checks [A-Za-z][A-Za-z0-9_-]{0,max-1}.
func validSegment(s string, max int) bool {
	if len(s) == 0 || len(s) > max || !isLetter(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

// ValidateTypeName checks a route typeName: 1–8 segments joined by '/', each
// [A-Za-z][A-Za-z0-9_-]{0,63}, at most 128 characters. It does not reject
// the reserved first segment "sys"; see [ValidateRoute].
func ValidateTypeName(s string) error {
	if len(s) == 0 {
		return fmt.Errorf("%w: empty", ErrTypeName)
	}
	if len(s) > MaxTypeNameLen {
		return fmt.Errorf("%w: longer than %d characters", ErrTypeName, MaxTypeNameLen)
	}
	segments := 0
	for rest := s; ; {
		seg, tail, more := strings.Cut(rest, "/")
		segments++
		if segments > MaxTypeSegments {
			return fmt.Errorf("%w: more than %d segments", ErrTypeName, MaxTypeSegments)
		}
		if !validSegment(seg, MaxSegmentLen) {
			return fmt.Errorf("%w: segment %d must match [A-Za-z][A-Za-z0-9_-]{0,63}", ErrTypeName, segments)
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

// IsReserved reports whether typeName's first segment is "sys", the
// namespace of control frames.
func IsReserved(typeName string) bool {
	return typeName == ReservedSegment || strings.HasPrefix(typeName, ReservedSegment+"/")
}

// ValidateRoute checks a typeName that a client may request or a worker may
// serve: a valid typeName outside the reserved "sys" namespace.
func ValidateRoute(typeName string) error {
	if err := ValidateTypeName(typeName); err != nil {
		return err
	}
	if IsReserved(typeName) {
		return fmt.Errorf("%w: the first segment %q is reserved for control frames", ErrReserved, ReservedSegment)
	}
	return nil
}

// ValidateSuffix checks an event suffix: [A-Za-z][A-Za-z0-9_-]{0,31}.
func ValidateSuffix(s string) error {
	if !validSegment(s, MaxSuffixLen) {
		return fmt.Errorf("%w: must match [A-Za-z][A-Za-z0-9_-]{0,31}", ErrSuffix)
	}
	return nil
}

// ValidateID checks a message id: [A-Za-z0-9_-]{1,64}.
func ValidateID(s string) error {
	if !validToken(s, 1, MaxIDLen) {
		return fmt.Errorf("%w: must match [A-Za-z0-9_-]{1,64}", ErrID)
	}
	return nil
}

// ValidateSessionID checks a session id: [A-Za-z0-9_-]{22,64}.
func ValidateSessionID(s string) error {
	if !validToken(s, MinSessionIDLen, MaxSessionIDLen) {
		return fmt.Errorf("%w: must match [A-Za-z0-9_-]{22,64}", ErrSessionID)
	}
	return nil
}

func validToken(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

// EventType joins a typeName and a suffix into an event's type,
// "<typeName>:<suffix>".
func EventType(typeName, suffix string) string {
	return typeName + string(eventTypeSeparator) + suffix
}

// SplitEventType splits "<typeName>:<suffix>" into its parts. ok is false
// when there is no ':' separator.
func SplitEventType(eventType string) (typeName, suffix string, ok bool) {
	i := strings.LastIndexByte(eventType, eventTypeSeparator)
	if i < 0 {
		return eventType, "", false
	}
	return eventType[:i], eventType[i+1:], true
}

// ValidatePushType checks the type of a push frame: a route typeName, or an
// event type "<typeName>:<suffix>", outside the reserved "sys" namespace.
func ValidatePushType(t string) error {
	typeName, suffix, hasSuffix := SplitEventType(t)
	if err := ValidateRoute(typeName); err != nil {
		return err
	}
	if hasSuffix {
		return ValidateSuffix(suffix)
	}
	return nil
}
