package inspector

import (
	"testing"
	"time"

	"github.com/seed82ac63c1/fabric/internal/tail"
)

// TestState folds hand-made records, in orders a live fabric makes more
// rarely, and checks each request's state.
func TestState(t *testing.T) {
	at := time.Date(2025, 6, 1, 14, 0, 0, 0, time.UTC)
	req := tail.Record{Kind: tail.KindRequest, Route: "a/b"}
	evt := func(suffix, code string) tail.Record {
		return tail.Record{Kind: tail.KindEvent, Route: "a/b", Suffix: suffix, Code: code}
	}
	cancel := tail.Record{Kind: tail.KindCancel}
	gw := func(r tail.Record) tail.Record {
		r.Origin = tail.OriginGateway
		return r
	}
	for _, tc := range []struct {
		name  string
		recs  []tail.Record
		state State
		code  string
		end   bool
	}{
		{"request only", []tail.Record{req}, StateInFlight, "", false},
		{"progress", []tail.Record{req, evt("progress", "")}, StateInFlight, "", false},
		{"finished", []tail.Record{req, evt("response", ""), evt("finish", "")}, StateFinished, "", true},
		{"error, not yet finished", []tail.Record{req, evt("error", "nope")}, StateError, "nope", false},
		{"error without a code", []tail.Record{req, evt("error", ""), evt("finish", "")}, StateError, "internal", true},
		{"first error wins", []tail.Record{req, evt("error", "timeout"), evt("error", "cancelled"), evt("finish", "")}, StateError, "timeout", true},
		{"a gateway's error wins", []tail.Record{req, cancel, evt("error", "cancelled"), gw(evt("error", "timeout")), evt("finish", "")}, StateError, "timeout", true},
		{"the first gateway's error wins", []tail.Record{req, gw(evt("error", "timeout")), gw(evt("error", "interrupted")), evt("finish", "")}, StateError, "timeout", true},
		{"cancel, no finish yet", []tail.Record{req, cancel}, StateCancelled, "", false},
		{"cancel, then a plain finish", []tail.Record{req, cancel, evt("finish", "")}, StateCancelled, "", true},
		{"error{cancelled}", []tail.Record{req, evt("error", "cancelled"), evt("finish", "")}, StateCancelled, "cancelled", true},
		{"events before their request", []tail.Record{evt("finish", ""), req}, StateFinished, "", true},
		{"a cancel for a request never seen", []tail.Record{cancel}, StateCancelled, "", false},
	} {
		in := &Inspector{cfg: Config{Capacity: 10, MaxEvents: 10, JaegerURL: DefaultJaegerURL}, requests: map[key]*Request{}, streams: map[*stream]struct{}{}}
		for i, r := range tc.recs {
			r.Session, r.ID, r.Time = "S", "m1", at.Add(time.Duration(i)*time.Millisecond)
			in.add(r)
		}
		got := in.Requests(Filter{})
		if len(got) != 1 {
			t.Fatalf("%s: %d requests", tc.name, len(got))
		}
		r := got[0]
		if r.State != tc.state || r.Code != tc.code || (r.End != nil) != tc.end || !r.Time.Equal(at) {
			t.Errorf("%s: state %s, code %q, end %v, time %v; want %s, %q, %v", tc.name, r.State, r.Code, r.End, r.Time, tc.state, tc.code, tc.end)
		}
	}

	// Pushes, and messages without a session or id, belong to no request.
	in := &Inspector{cfg: Config{Capacity: 10, MaxEvents: 10}, requests: map[key]*Request{}, streams: map[*stream]struct{}{}}
	in.add(tail.Record{Kind: tail.KindPush, Session: "S", Route: "x"})
	in.add(tail.Record{Kind: tail.KindRequest, Route: "x"})
	if n := len(in.Requests(Filter{})); n != 0 {
		t.Errorf("%d requests from pushes and anonymous requests", n)
	}
}
