package tail

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/subjects"
)

func TestTraceID(t *testing.T) {
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	d := decoder{space: subjects.MustSpace(""), payloadBytes: 10}
	for _, tc := range []struct{ traceparent, want string }{
		{"00-" + id + "-00f067aa0ba902b7-01", id},
		{"00-" + id + "-00f067aa0ba902b7-00", id},

		{"", ""},
		{"garbage", ""},
		{"00-" + id + "-00f067aa0ba902b7-0", ""},
		{"ff-" + id + "-00f067aa0ba902b7-01", ""},
		{"00-" + strings.ToUpper(id) + "-00f067aa0ba902b7-01", ""},
		{"00-" + strings.Repeat("0", 32) + "-00f067aa0ba902b7-01", ""},
		{"00-" + id + "-" + strings.Repeat("0", 16) + "-01", ""},
		{"00-" + id[:31] + "g-00f067aa0ba902b7-01", ""},
	} {
		h := nats.Header{}
		if tc.traceparent != "" {
			h[subjects.HeaderTraceparent] = []string{tc.traceparent}
		}
		for _, subject := range []string{"fabric.req.demo.count", "fabric.evt.S.m1.demo.count.progress", "fabric.cancel.S.m1", "fabric.push.all"} {
			rec, ok := d.decode(&nats.Msg{Subject: subject, Header: h}, time.Now())
			if !ok || rec.TraceID != tc.want {
				t.Errorf("%s with traceparent %q: trace id %q, %v; want %q", subject, tc.traceparent, rec.TraceID, ok, tc.want)
			}
		}
	}
	// NATS headers are case-sensitive: "Traceparent" is not the header.
	rec, _ := d.decode(&nats.Msg{Subject: "fabric.req.a", Header: nats.Header{"Traceparent": {"00-" + id + "-00f067aa0ba902b7-01"}}}, time.Now())
	if rec.TraceID != "" {
		t.Errorf("Traceparent gave trace id %q", rec.TraceID)
	}
}

func TestDecode(t *testing.T) {
	d := decoder{space: subjects.MustSpace("acme"), payloadBytes: 10}
	for _, tc := range []struct {
		msg  nats.Msg
		want Record
	}{
		{nats.Msg{Subject: "acme.req.a.b", Reply: "acme.evt.S.m1", Header: nats.Header{"Fabric-Id": {"m1"}, "Fabric-Session": {"S"}, "Fabric-User": {"u"}}, Data: []byte("null")},
			Record{Kind: KindRequest, Session: "S", ID: "m1", Route: "a/b", User: "u", Size: 4, Payload: "null"}},
		{nats.Msg{Subject: "acme.evt.S.m1.a.b.error", Reply: "_INBOX.ack", Header: nats.Header{"Fabric-Seq": {"7"}}, Data: []byte(`{"code":"nope","message":"a long message"}`)},
			Record{Kind: KindEvent, Session: "S", ID: "m1", Route: "a/b", Suffix: "error", Seq: 7, Origin: OriginWorker, Code: "nope", Size: 42, Payload: `{"code":"n`, Truncated: true}},
		{nats.Msg{Subject: "acme.evt.S.m1.a.finish", Header: nats.Header{"Fabric-Seq": {"x"}, "Fabric-Origin": {"gateway"}}},
			Record{Kind: KindEvent, Session: "S", ID: "m1", Route: "a", Suffix: "finish", Origin: OriginGateway}},
		{nats.Msg{Subject: "acme.evt.S.m1.a.error", Data: []byte("not json")},
			Record{Kind: KindEvent, Session: "S", ID: "m1", Route: "a", Suffix: "error", Origin: OriginWorker, Size: 8, Payload: "not json"}},
		{nats.Msg{Subject: "acme.cancel.S.m1"},
			Record{Kind: KindCancel, Session: "S", ID: "m1"}},
		{nats.Msg{Subject: "acme.push.session.S", Header: nats.Header{"Fabric-Type": {"chat/message:new"}}, Data: []byte("{}")},
			Record{Kind: KindPush, To: "session", Session: "S", Route: "chat/message", Suffix: "new", Size: 2, Payload: "{}"}},
		{nats.Msg{Subject: "acme.push.user.YWxpY2U", Header: nats.Header{"Fabric-Type": {"sys/x"}}},
			Record{Kind: KindPush, To: "user", User: "YWxpY2U"}},
		{nats.Msg{Subject: "acme.push.all", Header: nats.Header{"Fabric-Type": {"news"}}},
			Record{Kind: KindPush, To: "all", Route: "news"}},
	} {
		at := time.Now()
		got, ok := d.decode(&tc.msg, at)
		tc.want.Time, tc.want.Subject = at, tc.msg.Subject
		if !ok || got != tc.want {
			t.Errorf("%s:\n got %+v, %v\nwant %+v", tc.msg.Subject, got, ok, tc.want)
		}
	}
	for _, subject := range []string{"acme.evt.S.m1", "acme.gw.session.S", "fabric.req.a", "$JS.API.INFO", "acme.req.", "acme.push.nobody.x"} {
		if rec, ok := d.decode(&nats.Msg{Subject: subject}, time.Now()); ok {
			t.Errorf("%s: decoded as %+v", subject, rec)
		}
	}
}

func TestPreview(t *testing.T) {
	for _, tc := range []struct {
		in        string
		max       int
		want      string
		truncated bool
	}{
		{"", 10, "", false},
		{"abc", 3, "abc", false},
		{"abcd", 3, "abc", true},
		{"abc", 0, "", true},
		{"abc", -1, "", true},
		{"", -1, "", false},
		{"é", 1, "", true},
		{"aé", 2, "a", true},
		{"aéb", 3, "aé", true},
		{"€uro", 2, "", true},
		{"€uro", 3, "€", true},
		{"\xff\xfe", 1, "\xff", true}, // not UTF-8: cut where asked
	} {
		got, truncated := preview([]byte(tc.in), tc.max)
		if got != tc.want || truncated != tc.truncated {
			t.Errorf("preview(%q, %d) = %q, %v; want %q, %v", tc.in, tc.max, got, truncated, tc.want, tc.truncated)
		}
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":"b"}`:        `{"a":"b"}`,
		"héllo wörld ✓":    "héllo wörld ✓",
		"a\x1b[31mred":     `a\x1b[31mred`,
		"tab\there\nline":  `tab\there\nline`,
		"bad \xff byte":    `bad \xff byte`,
		"real \uFFFD char": "real \uFFFD char",
		"zero\u200bwidth":  `zero\u200bwidth`,
		"c1 \u009b":        `c1 \u009b`,
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRecent(t *testing.T) {
	r := newRecent[int](2)
	a, b, c := key{"s", "a"}, key{"s", "b"}, key{"s", "c"}
	r.put(a, 1)
	r.put(b, 2)
	r.put(a, 10) // an update keeps its place
	r.put(c, 3)  // forgets a, the oldest
	if _, ok := r.get(a); ok {
		t.Error("a is still remembered")
	}
	if v, ok := r.get(b); !ok || v != 2 {
		t.Errorf("b = %v, %v", v, ok)
	}
	r.delete(b)
	r.put(a, 4) // room for a again: b's place is free
	if v, ok := r.get(c); !ok || v != 3 {
		t.Errorf("c = %v, %v", v, ok)
	}
	for i := range 1000 {
		r.put(key{"s", string(rune('A' + i%50))}, i)
	}
	if len(r.m) > 2 || len(r.queue) > 4 {
		t.Errorf("%d entries, %d queued: not bounded", len(r.m), len(r.queue))
	}
}
