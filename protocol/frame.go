package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// Subprotocol is the WebSocket subprotocol of the v1 wire contract. A gateway
// selects it when a client offers it; a client offering none is served v1.
const Subprotocol = "fabric.v1"

// Control frame types: the reserved "sys" namespace.
const (
	TypeHello   = "sys/hello"   // client → gateway, the first frame
	TypeWelcome = "sys/welcome" // gateway → client, the answer to hello
	TypePing    = "sys/ping"    // either way; the peer answers sys/pong
	TypePong    = "sys/pong"    // either way
	TypeCancel  = "sys/cancel"  // client → gateway, cancels request id
	TypeError   = "sys/error"   // gateway → client, a frame was not accepted

	TypeRefresh   = "sys/refresh"   // client → gateway, a new token for the connection
	TypeRefreshed = "sys/refreshed" // gateway → client, the answer to a sys/refresh it accepted
)

// ClientFrame is one frame from a client:
//
//	{"type": T, "id": ID, "payload": any, "after": n, "traceparent": s, "tracestate": s}
//
// Unknown fields are ignored. A field whose value is null counts as absent.
type ClientFrame struct {
	Type        string
	ID          string
	HasID       bool   // "id" was present (it may still be invalid)
	Payload     []byte // raw JSON; nil when absent. It aliases the decoded buffer.
	After       uint64 // highest seq already received, on a request re-sent during resume
	HasAfter    bool   // "after" was present
	Traceparent string
	Tracestate  string
}

// PayloadOrNull returns the payload, or the JSON literal null when absent.
func (f *ClientFrame) PayloadOrNull() []byte {
	if len(f.Payload) == 0 {
		return nullJSON
	}
	return f.Payload
}

var nullJSON = []byte("null")

// FrameDecoder decodes client frames without reflection, reusing its buffers.
// It is not safe for concurrent use: give each connection its own.
type FrameDecoder struct {
	r   bytes.Reader
	dec jsontext.Decoder
}

// Decode decodes one client frame from b. The frame's Payload aliases b. A
// frame that is not one JSON object with well-typed known fields is rejected
// with an *Error of code bad_request.
func (fd *FrameDecoder) Decode(b []byte) (ClientFrame, error) {
	fd.r.Reset(b)
	fd.dec.Reset(&fd.r)
	f, err := decodeFrame(&fd.dec, b)
	fd.r.Reset(nil) // drop the reference to b
	return f, err
}

// DecodeClientFrame decodes one client frame; see [FrameDecoder.Decode].
func DecodeClientFrame(b []byte) (ClientFrame, error) {
	var fd FrameDecoder
	return fd.Decode(b)
}

func badFrame(msg string) error { return &Error{Code: CodeBadRequest, Message: msg} }

func decodeFrame(d *jsontext.Decoder, b []byte) (ClientFrame, error) {
	var f ClientFrame
	tok, err := d.ReadToken()
	if err != nil {
		return f, badFrame("frame is not valid JSON")
	}
	if tok.Kind() != '{' {
		return f, badFrame("frame is not a JSON object")
	}
	hasType := false
	for d.PeekKind() != '}' {
		name, err := d.ReadToken()
		if err != nil {
			return f, badFrame("frame is not valid JSON")
		}
		switch key := name.String(); key {
		case "type", "id", "traceparent", "tracestate":
			v, err := d.ReadToken()
			if err != nil {
				return f, badFrame("frame is not valid JSON")
			}
			if v.Kind() == 'n' {
				continue
			}
			if v.Kind() != '"' {
				return f, badFrame(`field "` + key + `" must be a string`)
			}
			switch key {
			case "type":
				f.Type, hasType = v.String(), true
			case "id":
				f.ID, f.HasID = v.String(), true
			case "traceparent":
				f.Traceparent = v.String()
			case "tracestate":
				f.Tracestate = v.String()
			}
		case "after":
			v, err := d.ReadToken()
			if err != nil {
				return f, badFrame("frame is not valid JSON")
			}
			if v.Kind() == 'n' {
				continue
			}
			if v.Kind() != '0' { // Token.Uint panics on anything but a number
				return f, badFrame(`field "after" must be a non-negative integer`)
			}
			n, err := v.Uint()
			if err != nil {
				return f, badFrame(`field "after" must be a non-negative integer`)
			}
			f.After, f.HasAfter = n, true
		case "payload":
			v, err := d.ReadValue()
			if err != nil {
				return f, badFrame("frame is not valid JSON")
			}
			if v.Kind() == 'n' {
				continue
			}
			end := int(d.InputOffset())
			f.Payload = b[end-len(v) : end]
		default:
			if err := d.SkipValue(); err != nil {
				return f, badFrame("frame is not valid JSON")
			}
		}
	}
	if _, err := d.ReadToken(); err != nil { // '}'
		return f, badFrame("frame is not valid JSON")
	}
	if _, err := d.ReadValue(); !errors.Is(err, io.EOF) {
		return f, badFrame("frame must hold exactly one JSON object")
	}
	if !hasType {
		return f, badFrame(`field "type" is required`)
	}
	return f, nil
}

// AppendServerFrame appends a server frame to dst:
//
//	{"type": T, "id": ID, "seq": n, "payload": any, "trace": "<32 hex>"}
//
// id, seq and trace are left out when empty or zero. payload must be valid
// JSON; nil or empty means null.
func AppendServerFrame(dst []byte, typ, id string, seq uint64, payload []byte, trace string) []byte {
	dst = append(dst, `{"type":`...)
	dst = appendString(dst, typ)
	return appendFrameTail(dst, id, seq, payload, trace)
}

func appendFrameTail(dst []byte, id string, seq uint64, payload []byte, trace string) []byte {
	if id != "" {
		dst = append(dst, `,"id":`...)
		dst = appendString(dst, id)
	}
	if seq != 0 {
		dst = append(dst, `,"seq":`...)
		dst = strconv.AppendUint(dst, seq, 10)
	}
	if len(payload) > 0 {
		dst = append(dst, `,"payload":`...)
		dst = append(dst, payload...)
	}
	if trace != "" {
		dst = append(dst, `,"trace":`...)
		dst = appendString(dst, trace)
	}
	return append(dst, '}')
}

// AppendEventFrame appends the frame of an event of request id:
// type "<typeName>:<suffix>", without building the type string first. It is
// otherwise [AppendServerFrame].
func AppendEventFrame(dst []byte, typeName, suffix, id string, seq uint64, payload []byte, trace string) []byte {
	dst = append(dst, `{"type":`...)
	if needsEscape(typeName) || needsEscape(suffix) {
		dst = appendString(dst, typeName+":"+suffix)
	} else {
		dst = append(dst, '"')
		dst = append(dst, typeName...)
		dst = append(dst, ':')
		dst = append(dst, suffix...)
		dst = append(dst, '"')
	}
	return appendFrameTail(dst, id, seq, payload, trace)
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return true
		}
	}
	return false
}

// appendString appends s as a JSON string. Names in Fabric frames are plain
// ASCII, so the fast path copies them as they are.
func appendString(dst []byte, s string) []byte {
	if needsEscape(s) {
		b, _ := json.Marshal(s)
		return append(dst, b...)
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// Message is one server frame as a client sees it: an event of a request
// (ID and Seq set), a push (no ID), or a control frame (type sys/…).
type Message struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Seq     uint64          `json:"seq,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
	Trace   string          `json:"trace,omitempty"`
}

// Suffix returns the event suffix of the message's type ("progress" of
// "demo/count:progress"), or "" when it has none.
func (m *Message) Suffix() string {
	if i := strings.LastIndexByte(m.Type, ':'); i >= 0 {
		return m.Type[i+1:]
	}
	return ""
}

// Decode unmarshals the message's payload into v.
func (m *Message) Decode(v any) error {
	if len(m.Payload) == 0 {
		return json.Unmarshal(nullJSON, v)
	}
	return json.Unmarshal(m.Payload, v)
}

// Hello is the payload of sys/hello, the client's first frame.
type Hello struct {
	Token  string  `json:"token,omitempty"`
	Resume *Resume `json:"resume,omitempty"`
	Client string  `json:"client,omitempty"`
}

// DecodeHello decodes the payload of a sys/hello frame; no payload, or
// null, is an empty hello. It fails with a bad_request *Error.
func DecodeHello(payload []byte) (Hello, error) {
	var h Hello
	if len(payload) == 0 {
		return h, nil
	}
	if err := json.Unmarshal(payload, &h); err != nil {
		return Hello{}, Errorf(CodeBadRequest, "invalid sys/hello payload: %v", err)
	}
	return h, nil
}

// Resume names the session a client wants to resume.
type Resume struct {
	SessionID   string `json:"sessionId"`
	ResumeToken string `json:"resumeToken"`
}

// Welcome is the payload of sys/welcome, the gateway's answer to hello.
type Welcome struct {
	SessionID      string `json:"sessionId"`
	ResumeToken    string `json:"resumeToken"`
	Resumed        bool   `json:"resumed"`
	Gateway        string `json:"gateway"`
	PingIntervalMs int64  `json:"pingIntervalMs"`
	Limits         Limits `json:"limits"`
	// User is the authenticated user id; absent on an anonymous session.
	User string `json:"user,omitempty"`
	// ExpiresInMs is how long the client's token stays valid, counted from
	// the gateway's clock when it sent the frame; absent when it does not
	// expire. The client sends sys/refresh before then; see RefreshGraceMs.
	ExpiresInMs int64 `json:"expiresInMs,omitempty"`
	// RefreshGraceMs is how long after the token's expiry the gateway waits
	// for a sys/refresh before it closes the connection with 4504; absent
	// when the token does not expire.
	RefreshGraceMs int64 `json:"refreshGraceMs,omitempty"`
}

// Refresh is the payload of sys/refresh: a new token for the connection,
// whose user must be the session's.
type Refresh struct {
	Token string `json:"token"`
}

// DecodeRefresh decodes the payload of a sys/refresh frame. It fails with a
// bad_request *Error when the payload is not an object with a token.
func DecodeRefresh(payload []byte) (Refresh, error) {
	var r Refresh
	if len(payload) > 0 {
		if err := json.Unmarshal(payload, &r); err != nil {
			return Refresh{}, Errorf(CodeBadRequest, "invalid sys/refresh payload: %v", err)
		}
	}
	if r.Token == "" {
		return Refresh{}, Errorf(CodeBadRequest, "sys/refresh needs a token")
	}
	return r, nil
}

// Refreshed is the payload of sys/refreshed.
type Refreshed struct {
	// ExpiresInMs is how long the new token stays valid; absent when it
	// does not expire.
	ExpiresInMs int64 `json:"expiresInMs,omitempty"`
}

// Limits are the gateway's limits announced in sys/welcome.
type Limits struct {
	MaxFrameBytes int64 `json:"maxFrameBytes"`
	MaxInFlight   int   `json:"maxInFlight"`
}
