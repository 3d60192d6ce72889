package tail

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
	"github.com/seed82ac63c1/fabric/tracing"
)

// Kind is what a record's message was.
type Kind string

// The kinds of message a watcher sees.
const (
	KindRequest Kind = "request" // <prefix>.req.<type tokens>
	KindEvent   Kind = "event"   // <prefix>.evt.<session>.<id>.<type tokens>.<suffix>
	KindCancel  Kind = "cancel"  // <prefix>.cancel.<session>.<id>
	KindPush    Kind = "push"    // <prefix>.push.…
)

// Who made an event: [Record.Origin].
const (
	OriginWorker  = "worker"
	OriginGateway = subjects.OriginGateway // timeout, cancel, no_responders… (durable mode stores them)
)

// Record is one message of the fabric, as a watcher saw it. Fields that do
// not apply to its kind are empty.
type Record struct {
	// Time is when the watcher received the message.
	Time time.Time `json:"time"`
	Kind Kind      `json:"kind"`
	// Session and ID name the request: from its Fabric-Session and
	// Fabric-Id headers for a request, from the subject for an event or a
	// cancel. A push to a session has its Session.
	Session string `json:"session,omitempty"`
	ID      string `json:"id,omitempty"`
	// Route is the request's typeName. A cancel has it when the watcher
	// saw the request or one of its events; a push has the typeName of its
	// Fabric-Type.
	Route string `json:"route,omitempty"`
	// Suffix is an event's suffix (progress, error, finish…), or the suffix
	// of a push whose Fabric-Type is an event type.
	Suffix string `json:"suffix,omitempty"`
	// Seq is an event's Fabric-Seq; 0 when it has none or a bad one.
	Seq uint64 `json:"seq,omitempty"`
	// Origin is who made an event: OriginWorker, or OriginGateway for the
	// events a gateway makes and stores (Fabric-Origin: gateway).
	Origin string `json:"origin,omitempty"`
	// Code is the error code of an :error event.
	Code string `json:"code,omitempty"`
	// TraceID is the trace id of the message's W3C traceparent, 32 lowercase
	// hex digits; "" when it has none or an invalid one.
	TraceID string `json:"traceId,omitempty"`
	// User is a request's Fabric-User, or the encoded user a push goes to.
	User string `json:"user,omitempty"`
	// To is a push's target: session, user or all.
	To string `json:"to,omitempty"`
	// Size is the payload's size in bytes.
	Size int `json:"size"`
	// Payload is the payload's first bytes (cut at a character boundary),
	// and Truncated tells whether there was more.
	Payload   string `json:"payload,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	// Subject is the NATS subject the message came on.
	Subject string `json:"subject"`
}

// Failed reports whether rec is an :error event.
func (rec *Record) Failed() bool {
	return rec.Kind == KindEvent && rec.Suffix == protocol.SuffixError
}

// Finished reports whether rec is a :finish event.
func (rec *Record) Finished() bool {
	return rec.Kind == KindEvent && rec.Suffix == protocol.SuffixFinish
}

// preview returns the first max bytes of b, cut back to the start of a
// character, and whether anything was cut. max < 0 means none at all.
func preview(b []byte, max int) (string, bool) {
	if max < 0 {
		return "", len(b) > 0
	}
	if len(b) <= max {
		return string(b), false
	}
	n := max
	for n > 0 && !utf8.RuneStart(b[n]) {
		n--
	}
	return string(b[:n]), true
}

// decoder turns messages into records.
type decoder struct {
	space        subjects.Space
	payloadBytes int
}

// decode returns the record of m, or false when m is none of the fabric's
// messages a watcher reports.
func (d *decoder) decode(m *nats.Msg, now time.Time) (Record, bool) {
	rec := Record{Time: now, Subject: m.Subject, Size: len(m.Data), TraceID: tracing.TraceID(tracing.SpanContextOf(m.Header))}
	rec.Payload, rec.Truncated = preview(m.Data, d.payloadBytes)
	if session, id, typeName, suffix, ok := d.space.ParseEventSubject(m.Subject); ok {
		rec.Kind, rec.Session, rec.ID, rec.Route, rec.Suffix = KindEvent, session, id, typeName, suffix
		rec.Origin = OriginWorker
		if header(m, subjects.HeaderOrigin) == subjects.OriginGateway {
			rec.Origin = OriginGateway
		}
		if seq, err := strconv.ParseUint(header(m, subjects.HeaderSeq), 10, 64); err == nil {
			rec.Seq = seq
		}
		if suffix == protocol.SuffixError {
			var e struct {
				Code string `json:"code"`
			}
			if json.Unmarshal(m.Data, &e) == nil {
				rec.Code = e.Code
			}
		}
		return rec, true
	}
	if typeName, ok := d.space.ParseRequest(m.Subject); ok {
		rec.Kind, rec.Route = KindRequest, typeName
		rec.Session = header(m, subjects.HeaderSession)
		rec.ID = header(m, subjects.HeaderID)
		rec.User = header(m, subjects.HeaderUser)
		return rec, true
	}
	if session, id, ok := d.space.ParseCancel(m.Subject); ok {
		rec.Kind, rec.Session, rec.ID = KindCancel, session, id
		return rec, true
	}
	if to, key, ok := d.space.ParsePush(m.Subject); ok {
		rec.Kind, rec.To = KindPush, to
		switch to {
		case subjects.PushToSession:
			rec.Session = key
		case subjects.PushToUser:
			rec.User = key
		}
		if typ := header(m, subjects.HeaderType); subjects.ValidatePushType(typ) == nil {
			rec.Route, rec.Suffix, _ = subjects.SplitEventType(typ)
		}
		return rec, true
	}
	return Record{}, false
}

// header returns the first value of a header, spelled exactly as given
// (NATS headers are case-sensitive).
func header(m *nats.Msg, name string) string {
	if vs := m.Header[name]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}
