package subjects_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/seed82ac63c1/fabric/subjects"
)

const session = "AbCdEfGhIjKlMnOpQrStUv" // 22 characters, a valid session id

func TestNewSpace(t *testing.T) {
	for _, tc := range []struct {
		in, prefix string
		ok         bool
	}{
		{"", "fabric", true},
		{"fabric", "fabric", true},
		{"acme", "acme", true},
		{"acme.prod", "acme.prod", true},
		{"a.b.c.d", "a.b.c.d", true},
		{"A-1_x", "A-1_x", true},
		{"0", "0", true},
		{strings.Repeat("p", 64), strings.Repeat("p", 64), true},

		{".", "", false},
		{"a..b", "", false},
		{".a", "", false},
		{"a.", "", false},
		{"a.*", "", false},
		{"*", "", false},
		{">", "", false},
		{"a.>", "", false},
		{"a b", "", false},
		{"a\tb", "", false},
		{"a/b", "", false},
		{"a:b", "", false},
		{"é", "", false},
		{"a\x00", "", false},
		{strings.Repeat("p", 65), "", false},
	} {
		s, err := subjects.NewSpace(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("NewSpace(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, subjects.ErrPrefix) {
				t.Errorf("NewSpace(%q) = %v, want ErrPrefix", tc.in, err)
			}
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("MustSpace(%q) did not panic", tc.in)
					}
				}()
				subjects.MustSpace(tc.in)
			}()
			continue
		}
		if s.Prefix() != tc.prefix || s.QueueGroup() != tc.prefix {
			t.Errorf("NewSpace(%q): prefix %q, queue group %q, want %q", tc.in, s.Prefix(), s.QueueGroup(), tc.prefix)
		}
		if m := subjects.MustSpace(tc.in); m != s {
			t.Errorf("MustSpace(%q) = %+v, want %+v", tc.in, m, s)
		}
	}
}

func TestSubjects(t *testing.T) {
	fabric := subjects.MustSpace("")
	acme := subjects.MustSpace("acme.prod")
	for _, tc := range []struct {
		name, got, want string
	}{
		{"request", fabric.Request("orchestrator/query"), "fabric.req.orchestrator.query"},
		{"request one segment", fabric.Request("echo"), "fabric.req.echo"},
		{"request 8 segments", fabric.Request("a/b/c/d/e/f/g/h"), "fabric.req.a.b.c.d.e.f.g.h"},
		{"requests", fabric.Requests(), "fabric.req.>"},
		{"reply", fabric.Reply("S", "m1"), "fabric.evt.S.m1"},
		{"session events", fabric.SessionEvents("S"), "fabric.evt.S.>"},
		{"event", subjects.Event(fabric.Reply("S", "m1"), "orchestrator/query", "progress"), "fabric.evt.S.m1.orchestrator.query.progress"},
		{"finish", subjects.Event(fabric.Reply("S", "m1"), "demo/count", "finish"), "fabric.evt.S.m1.demo.count.finish"},
		{"cancel", fabric.Cancel("S", "m1"), "fabric.cancel.S.m1"},
		{"cancels", fabric.Cancels(), "fabric.cancel.*.*"},
		{"push session", fabric.PushSession("S"), "fabric.push.session.S"},
		{"push user", fabric.PushUser("alice"), "fabric.push.user.YWxpY2U"},
		{"push all", fabric.PushAll(), "fabric.push.all"},
		{"takeover", fabric.Takeover("S"), "fabric.gw.session.S"},
		{"auth connect", fabric.AuthConnect(), "fabric.auth.connect"},

		{"custom request", acme.Request("orchestrator/query"), "acme.prod.req.orchestrator.query"},
		{"custom requests", acme.Requests(), "acme.prod.req.>"},
		{"custom reply", acme.Reply("S", "m1"), "acme.prod.evt.S.m1"},
		{"custom session events", acme.SessionEvents("S"), "acme.prod.evt.S.>"},
		{"custom event", subjects.Event(acme.Reply("S", "m1"), "orchestrator/query", "progress"), "acme.prod.evt.S.m1.orchestrator.query.progress"},
		{"custom cancel", acme.Cancel("S", "m1"), "acme.prod.cancel.S.m1"},
		{"custom cancels", acme.Cancels(), "acme.prod.cancel.*.*"},
		{"custom push session", acme.PushSession("S"), "acme.prod.push.session.S"},
		{"custom push user", acme.PushUser("alice"), "acme.prod.push.user.YWxpY2U"},
		{"custom push all", acme.PushAll(), "acme.prod.push.all"},
		{"custom takeover", acme.Takeover("S"), "acme.prod.gw.session.S"},
		{"custom auth connect", acme.AuthConnect(), "acme.prod.auth.connect"},
		{"custom queue group", acme.QueueGroup(), "acme.prod"},

		{"type tokens", subjects.TypeTokens("a/b/c"), "a.b.c"},
		{"type tokens one segment", subjects.TypeTokens("a"), "a"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestParseRequest(t *testing.T) {
	fabric := subjects.MustSpace("")
	acme := subjects.MustSpace("acme.prod")
	for _, tc := range []struct {
		space    subjects.Space
		subject  string
		typeName string
		ok       bool
	}{
		{fabric, "fabric.req.orchestrator.query", "orchestrator/query", true},
		{fabric, "fabric.req.echo", "echo", true},
		{fabric, "fabric.req.a.b.c.d.e.f.g.h", "a/b/c/d/e/f/g/h", true},
		{fabric, "fabric.req.sys.hello", "sys/hello", true}, // a valid typeName; routing decides
		{acme, "acme.prod.req.orchestrator.query", "orchestrator/query", true},

		{fabric, "fabric.req.", "", false},
		{fabric, "fabric.req", "", false},
		{fabric, "fabric.evt.S.m1", "", false},
		{fabric, "acme.prod.req.orchestrator.query", "", false},
		{acme, "fabric.req.orchestrator.query", "", false},
		{acme, "acme.req.orchestrator.query", "", false},
		{fabric, "fabricx.req.a", "", false},
		{fabric, "fabric.req.a..b", "", false},
		{fabric, "fabric.req.a.", "", false},
		{fabric, "fabric.req.*", "", false},
		{fabric, "fabric.req.>", "", false},
		{fabric, "fabric.req.a.b.c.d.e.f.g.h.i", "", false},
		{fabric, "fabric.req.1a", "", false},
		{fabric, "fabric.req.a/b", "", false}, // '/' is not a subject character of a typeName
		{fabric, "fabric.req." + seg(65), "", false},
	} {
		typeName, ok := tc.space.ParseRequest(tc.subject)
		if ok != tc.ok || (ok && typeName != tc.typeName) {
			t.Errorf("%s: ParseRequest(%q) = %q, %v; want %q, %v", tc.space.Prefix(), tc.subject, typeName, ok, tc.typeName, tc.ok)
		}
	}
}

func TestRequestRoundTrip(t *testing.T) {
	for _, prefix := range []string{"", "acme.prod", "x"} {
		space := subjects.MustSpace(prefix)
		for _, tc := range typeNameCases {
			if !tc.ok {
				continue
			}
			subject := space.Request(tc.in)
			if got, ok := space.ParseRequest(subject); !ok || got != tc.in {
				t.Errorf("%q: ParseRequest(Request(%q)) = %q, %v", prefix, tc.in, got, ok)
			}
			if want := strings.Count(tc.in, "/") + strings.Count(space.Prefix(), ".") + 3; strings.Count(subject, ".")+1 != want {
				t.Errorf("%q: Request(%q) = %q: want %d tokens", prefix, tc.in, subject, want)
			}
		}
	}
}

func TestParseEvent(t *testing.T) {
	fabric := subjects.MustSpace("")
	acme := subjects.MustSpace("acme.prod")
	for _, tc := range []struct {
		name     string
		space    subjects.Space
		session  string
		subject  string
		id, tail string
		ok       bool
	}{
		{"event", fabric, "S", "fabric.evt.S.m1.orchestrator.query.progress", "m1", "orchestrator.query.progress", true},
		{"R itself", fabric, "S", "fabric.evt.S.m1", "m1", "", true},
		{"finish", fabric, session, subjects.Event(fabric.Reply(session, "m-1_x"), "demo/count", "finish"), "m-1_x", "demo.count.finish", true},
		{"custom prefix", acme, "S", "acme.prod.evt.S.m1.orchestrator.query.progress", "m1", "orchestrator.query.progress", true},
		{"custom prefix R", acme, "S", "acme.prod.evt.S.m1", "m1", "", true},

		{"other session", fabric, "S", "fabric.evt.T.m1", "", "", false},
		{"session prefix of another", fabric, "S", "fabric.evt.SX.m1", "", "", false},
		{"session only", fabric, "S", "fabric.evt.S", "", "", false},
		{"session and dot", fabric, "S", "fabric.evt.S.", "", "", false},
		{"other prefix", fabric, "S", "acme.prod.evt.S.m1", "", "", false},
		{"custom space, default prefix", acme, "S", "fabric.evt.S.m1", "", "", false},
		{"request subject", fabric, "S", "fabric.req.S.m1", "", "", false},
		{"cancel subject", fabric, "S", "fabric.cancel.S.m1", "", "", false},
		{"empty", fabric, "S", "", "", "", false},
		{"empty id", fabric, "S", "fabric.evt.S..orchestrator.query.progress", "", "", false},
		{"empty id, R", fabric, "S", "fabric.evt.S..", "", "", false},
		{"trailing dot after id", fabric, "S", "fabric.evt.S.m1.", "", "", false},
	} {
		id, tail, ok := tc.space.ParseEvent(tc.session, tc.subject)
		if id != tc.id || tail != tc.tail || ok != tc.ok {
			t.Errorf("%s: ParseEvent(%q, %q) = %q, %q, %v; want %q, %q, %v", tc.name, tc.session, tc.subject, id, tail, ok, tc.id, tc.tail, tc.ok)
		}
	}
}

func TestEventRequest(t *testing.T) {
	fabric := subjects.MustSpace("")
	acme := subjects.MustSpace("acme.prod")
	for _, tc := range []struct {
		space       subjects.Space
		subject     string
		session, id string
		ok          bool
	}{
		{fabric, subjects.Event(fabric.Reply("S", "m1"), "orchestrator/query", "progress"), "S", "m1", true},
		{fabric, fabric.Reply("S", "m1"), "S", "m1", true},
		{acme, subjects.Event(acme.Reply("S", "m-2"), "demo/count", "finish"), "S", "m-2", true},
		{acme, subjects.Event(fabric.Reply("S", "m1"), "demo/count", "finish"), "", "", false},
		{fabric, "fabric.evt.S", "", "", false},
		{fabric, "fabric.evt.S.", "", "", false},
		{fabric, "fabric.evt..m1.x", "", "", false},
		{fabric, "fabric.req.S.m1", "", "", false},
	} {
		session, id, ok := tc.space.EventRequest(tc.subject)
		if session != tc.session || id != tc.id || ok != tc.ok {
			t.Errorf("EventRequest(%q) = %q, %q, %v; want %q, %q, %v", tc.subject, session, id, ok, tc.session, tc.id, tc.ok)
		}
	}
}

func TestParseEventAllocs(t *testing.T) {
	space := subjects.MustSpace("")
	subject := subjects.Event(space.Reply(session, "m1"), "orchestrator/query", "progress")
	allocs := testing.AllocsPerRun(100, func() {
		id, tail, _ := space.ParseEvent(session, subject)
		_, _ = subjects.EventSuffix(tail, "orchestrator.query")
		_ = id
	})
	if allocs != 0 {
		t.Fatalf("ParseEvent + EventSuffix: %v allocations, want 0", allocs)
	}
}

func TestEventSuffix(t *testing.T) {
	for _, tc := range []struct {
		tail, typeTokens, suffix string
		ok                       bool
	}{
		{"orchestrator.query.progress", "orchestrator.query", "progress", true},
		{"orchestrator.query.finish", "orchestrator.query", "finish", true},
		{"echo.response", "echo", "response", true},
		{"a.b." + seg(32), "a.b", seg(32), true},

		{"", "orchestrator.query", "", false},
		{"orchestrator.query", "orchestrator.query", "", false},
		{"orchestrator.query.", "orchestrator.query", "", false},
		{"orchestrator.queryx.progress", "orchestrator.query", "", false},
		{"orchestrator.other.progress", "orchestrator.query", "", false},
		{"orchestrator.query.a.b", "orchestrator.query", "", false}, // a longer type
		{"orchestrator.query.1x", "orchestrator.query", "", false},
		{"orchestrator.query.*", "orchestrator.query", "", false},
		{"a.b." + seg(33), "a.b", "", false},
	} {
		suffix, ok := subjects.EventSuffix(tc.tail, tc.typeTokens)
		if ok != tc.ok || (ok && suffix != tc.suffix) {
			t.Errorf("EventSuffix(%q, %q) = %q, %v; want %q, %v", tc.tail, tc.typeTokens, suffix, ok, tc.suffix, tc.ok)
		}
	}
}

// TestEventRoundTrip builds an event subject from its parts and parses it
// back the way a gateway does.
func TestEventRoundTrip(t *testing.T) {
	for _, prefix := range []string{"", "acme.prod"} {
		space := subjects.MustSpace(prefix)
		for _, typeName := range []string{"a", "orchestrator/query", segs(8), seg(64) + "/" + seg(63)} {
			for _, id := range []string{"m1", "-", strings.Repeat("z", 64), "550e8400-e29b-41d4-a716-446655440000"} {
				for _, suffix := range []string{"progress", "finish", seg(32)} {
					subject := subjects.Event(space.Reply(session, id), typeName, suffix)
					gotID, tail, ok := space.ParseEvent(session, subject)
					if !ok || gotID != id {
						t.Fatalf("ParseEvent(%q) = %q, %q, %v", subject, gotID, tail, ok)
					}
					gotSuffix, ok := subjects.EventSuffix(tail, subjects.TypeTokens(typeName))
					if !ok || gotSuffix != suffix {
						t.Fatalf("EventSuffix(%q) = %q, %v; want %q", tail, gotSuffix, ok, suffix)
					}
					if !matchSubject(space.SessionEvents(session), subject) {
						t.Fatalf("%q does not match %q", space.SessionEvents(session), subject)
					}
					// The documented wildcard for every event of a route with
					// one suffix, e.g. fabric.evt.*.*.orchestrator.query.error.
					route := space.Prefix() + ".evt.*.*." + subjects.TypeTokens(typeName) + "." + suffix
					if !matchSubject(route, subject) {
						t.Fatalf("%q does not match %q", route, subject)
					}
				}
			}
		}
	}
}

func TestParseCancel(t *testing.T) {
	fabric := subjects.MustSpace("")
	acme := subjects.MustSpace("acme.prod")
	for _, tc := range []struct {
		space       subjects.Space
		subject     string
		session, id string
		ok          bool
	}{
		{fabric, "fabric.cancel.S.m1", "S", "m1", true},
		{fabric, fabric.Cancel(session, "550e8400-e29b-41d4-a716-446655440000"), session, "550e8400-e29b-41d4-a716-446655440000", true},
		{acme, "acme.prod.cancel.S.m1", "S", "m1", true},

		{fabric, "fabric.cancel.S", "", "", false},
		{fabric, "fabric.cancel.S.", "", "", false},
		{fabric, "fabric.cancel..m1", "", "", false},
		{fabric, "fabric.cancel.", "", "", false},
		{fabric, "fabric.cancel.S.m1.x", "", "", false},
		{fabric, "fabric.evt.S.m1", "", "", false},
		{fabric, "acme.prod.cancel.S.m1", "", "", false},
		{acme, "fabric.cancel.S.m1", "", "", false},
	} {
		session, id, ok := tc.space.ParseCancel(tc.subject)
		if ok != tc.ok || (ok && (session != tc.session || id != tc.id)) {
			t.Errorf("ParseCancel(%q) = %q, %q, %v; want %q, %q, %v", tc.subject, session, id, ok, tc.session, tc.id, tc.ok)
		}
	}
}

func TestEncodeUser(t *testing.T) {
	for _, user := range []string{
		"alice",
		"alice@example.com",
		"a.b*c>d e",
		"dé/mo",
		"用户",
		"\x00\xff",
		strings.Repeat("u", 300),
	} {
		enc := subjects.EncodeUser(user)
		if enc == "" || strings.ContainsAny(enc, ".*> \t\r\n=+/") {
			t.Errorf("EncodeUser(%q) = %q: not one subject token", user, enc)
		}
		for i := 0; i < len(enc); i++ {
			if c := enc[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
				t.Errorf("EncodeUser(%q) = %q: byte %q outside [A-Za-z0-9_-]", user, enc, c)
			}
		}
		dec, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil || string(dec) != user {
			t.Errorf("EncodeUser(%q) = %q: decodes to %q, %v", user, enc, dec, err)
		}
		if got, want := subjects.MustSpace("").PushUser(user), "fabric.push.user."+enc; got != want {
			t.Errorf("PushUser(%q) = %q, want %q", user, got, want)
		}
	}
	if a, b := subjects.EncodeUser("Alice"), subjects.EncodeUser("alice"); a == b {
		t.Errorf("EncodeUser folds case: %q", a)
	}
}

func TestHeaders(t *testing.T) {
	// NATS headers are case-sensitive: the contract spells them exactly so.
	for _, tc := range []struct{ got, want string }{
		{subjects.HeaderID, "Fabric-Id"},
		{subjects.HeaderSession, "Fabric-Session"},
		{subjects.HeaderUser, "Fabric-User"},
		{subjects.HeaderSeq, "Fabric-Seq"},
		{subjects.HeaderType, "Fabric-Type"},
		{subjects.HeaderTraceparent, "traceparent"},
		{subjects.HeaderTracestate, "tracestate"},
	} {
		if tc.got != tc.want {
			t.Errorf("header %q, want %q", tc.got, tc.want)
		}
	}
}

func TestLimits(t *testing.T) {
	if subjects.MaxTypeNameLen != 128 || subjects.MaxTypeSegments != 8 || subjects.MaxSegmentLen != 64 ||
		subjects.MaxSuffixLen != 32 || subjects.MaxIDLen != 64 || subjects.ReservedSegment != "sys" ||
		subjects.DefaultPrefix != "fabric" {
		t.Fatal("a limit of the v1 wire contract changed")
	}
}

// matchSubject reports whether a NATS subject matches a subscription pattern
// with the wildcards '*' (one token) and '>' (one or more trailing tokens).
func matchSubject(pattern, subject string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, tok := range p {
		switch {
		case tok == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case tok != "*" && tok != s[i]:
			return false
		}
	}
	return len(p) == len(s)
}

func TestWildcards(t *testing.T) {
	for _, prefix := range []string{"", "acme.prod"} {
		space := subjects.MustSpace(prefix)
		other := subjects.MustSpace("other")
		reply := space.Reply(session, "m1")
		for _, tc := range []struct {
			pattern, subject string
			match            bool
		}{
			{space.Requests(), space.Request("orchestrator/query"), true},
			{space.Requests(), space.Request("a"), true},
			{space.Requests(), other.Request("a"), false},
			{space.Requests(), space.Cancel(session, "m1"), false},
			{space.SessionEvents(session), reply, true}, // no-responders arrives on R itself
			{space.SessionEvents(session), subjects.Event(reply, "a/b", "progress"), true},
			{space.SessionEvents(session), subjects.Event(space.Reply("other-session-id-0000000", "m1"), "a/b", "progress"), false},
			{space.SessionEvents(session), space.Cancel(session, "m1"), false},
			{space.Cancels(), space.Cancel(session, "m1"), true},
			{space.Cancels(), other.Cancel(session, "m1"), false},
			{space.Cancels(), space.Reply(session, "m1"), false},
		} {
			if got := matchSubject(tc.pattern, tc.subject); got != tc.match {
				t.Errorf("%q matches %q: %v, want %v", tc.pattern, tc.subject, got, tc.match)
			}
		}
	}
}

func TestWatcherWildcards(t *testing.T) {
	fabric := subjects.MustSpace("")
	acme := subjects.MustSpace("acme.prod")
	for _, tc := range []struct{ name, got, want string }{
		{"every event", fabric.EventWildcard("", "", ""), "fabric.evt.*.*.>"},
		{"a session's events", fabric.EventWildcard("S", "", ""), "fabric.evt.S.*.>"},
		{"a request's events", fabric.EventWildcard("S", "m1", ""), "fabric.evt.S.m1.>"},
		{"an id in any session", fabric.EventWildcard("", "m1", ""), "fabric.evt.*.m1.>"},
		{"a route's events", fabric.EventWildcard("", "", "demo/count"), "fabric.evt.*.*.demo.count.*"},
		{"a route's events in a session", fabric.EventWildcard("S", "", "a"), "fabric.evt.S.*.a.*"},
		{"custom prefix", acme.EventWildcard("", "", "a/b"), "acme.prod.evt.*.*.a.b.*"},
		{"every cancel", fabric.CancelWildcard("", ""), fabric.Cancels()},
		{"a session's cancels", fabric.CancelWildcard("S", ""), "fabric.cancel.S.*"},
		{"an id's cancels", acme.CancelWildcard("", "m1"), "acme.prod.cancel.*.m1"},
		{"pushes", fabric.Pushes(), "fabric.push.>"},
		{"custom pushes", acme.Pushes(), "acme.prod.push.>"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}

	// What each wildcard matches, against the subjects the builders make.
	reply := fabric.Reply(session, "m1")
	for _, tc := range []struct {
		pattern, subject string
		match            bool
	}{
		{fabric.EventWildcard("", "", ""), subjects.Event(reply, "demo/count", "progress"), true},
		{fabric.EventWildcard("", "", ""), reply, false}, // R only carries statuses for the requester
		{fabric.EventWildcard("", "", ""), fabric.Cancel(session, "m1"), false},
		{fabric.EventWildcard("", "", ""), acme.Reply(session, "m1") + ".a.progress", false},
		{fabric.EventWildcard(session, "", ""), subjects.Event(reply, "a/b/c", "x"), true},
		{fabric.EventWildcard("other", "", ""), subjects.Event(reply, "a/b/c", "x"), false},
		{fabric.EventWildcard("", "m1", ""), subjects.Event(reply, "a", "finish"), true},
		{fabric.EventWildcard("", "m2", ""), subjects.Event(reply, "a", "finish"), false},
		{fabric.EventWildcard("", "", "demo/count"), subjects.Event(reply, "demo/count", "finish"), true},
		{fabric.EventWildcard("", "", "demo/count"), subjects.Event(reply, "demo/count/more", "finish"), false},
		{fabric.EventWildcard("", "", "demo"), subjects.Event(reply, "demo/count", "finish"), false},
		{fabric.EventWildcard("", "", "demo/count"), reply, false},
		{fabric.CancelWildcard(session, ""), fabric.Cancel(session, "m1"), true},
		{fabric.CancelWildcard("other", ""), fabric.Cancel(session, "m1"), false},
		{fabric.Pushes(), fabric.PushSession(session), true},
		{fabric.Pushes(), fabric.PushUser("alice"), true},
		{fabric.Pushes(), fabric.PushAll(), true},
		{fabric.Pushes(), fabric.Takeover(session), false},
		{fabric.Pushes(), acme.PushAll(), false},
	} {
		if got := matchSubject(tc.pattern, tc.subject); got != tc.match {
			t.Errorf("%q matches %q: %v, want %v", tc.pattern, tc.subject, got, tc.match)
		}
	}
}

func TestParseEventSubject(t *testing.T) {
	fabric := subjects.MustSpace("")
	acme := subjects.MustSpace("acme.prod")
	for _, tc := range []struct {
		name                          string
		space                         subjects.Space
		subject                       string
		session, id, typeName, suffix string
		ok                            bool
	}{
		{"event", fabric, "fabric.evt.S.m1.orchestrator.query.progress", "S", "m1", "orchestrator/query", "progress", true},
		{"one segment", fabric, "fabric.evt.S.m1.echo.response", "S", "m1", "echo", "response", true},
		{"built", fabric, subjects.Event(fabric.Reply(session, "m-1_x"), "a/b/c/d/e/f/g/h", "finish"), session, "m-1_x", "a/b/c/d/e/f/g/h", "finish", true},
		{"custom prefix", acme, "acme.prod.evt.S.m1.demo.count.error", "S", "m1", "demo/count", "error", true},

		{"R itself", fabric, "fabric.evt.S.m1", "", "", "", "", false},
		{"no type", fabric, "fabric.evt.S.m1.progress", "", "", "", "", false},
		{"empty session", fabric, "fabric.evt..m1.a.progress", "", "", "", "", false},
		{"empty id", fabric, "fabric.evt.S..a.progress", "", "", "", "", false},
		{"empty type token", fabric, "fabric.evt.S.m1.a..b.progress", "", "", "", "", false},
		{"empty suffix", fabric, "fabric.evt.S.m1.a.", "", "", "", "", false},
		{"bad suffix", fabric, "fabric.evt.S.m1.a.1x", "", "", "", "", false},
		{"bad type", fabric, "fabric.evt.S.m1.1a.progress", "", "", "", "", false},
		{"slash in a token", fabric, "fabric.evt.S.m1.a/b.progress", "", "", "", "", false},
		{"nine segments", fabric, "fabric.evt.S.m1.a.b.c.d.e.f.g.h.i.progress", "", "", "", "", false},
		{"wildcard session", fabric, "fabric.evt.*.m1.a.progress", "", "", "", "", false},
		{"wildcard tail", fabric, "fabric.evt.S.m1.>", "", "", "", "", false},
		{"other prefix", fabric, "acme.prod.evt.S.m1.a.progress", "", "", "", "", false},
		{"custom space, default prefix", acme, "fabric.evt.S.m1.a.progress", "", "", "", "", false},
		{"request", fabric, "fabric.req.demo.count", "", "", "", "", false},
		{"cancel", fabric, "fabric.cancel.S.m1", "", "", "", "", false},
		{"empty", fabric, "", "", "", "", "", false},
	} {
		session, id, typeName, suffix, ok := tc.space.ParseEventSubject(tc.subject)
		if ok != tc.ok || session != tc.session || id != tc.id || typeName != tc.typeName || suffix != tc.suffix {
			t.Errorf("%s: ParseEventSubject(%q) = %q, %q, %q, %q, %v; want %q, %q, %q, %q, %v", tc.name, tc.subject,
				session, id, typeName, suffix, ok, tc.session, tc.id, tc.typeName, tc.suffix, tc.ok)
		}
	}
}

func TestParsePush(t *testing.T) {
	fabric := subjects.MustSpace("")
	acme := subjects.MustSpace("acme.prod")
	for _, tc := range []struct {
		space   subjects.Space
		subject string
		to, key string
		ok      bool
	}{
		{fabric, fabric.PushSession(session), subjects.PushToSession, session, true},
		{fabric, fabric.PushUser("alice@example.com"), subjects.PushToUser, subjects.EncodeUser("alice@example.com"), true},
		{fabric, fabric.PushAll(), subjects.PushToAll, "", true},
		{acme, acme.PushSession("S"), subjects.PushToSession, "S", true},
		{acme, acme.PushAll(), subjects.PushToAll, "", true},

		{fabric, "fabric.push", "", "", false},
		{fabric, "fabric.push.", "", "", false},
		{fabric, "fabric.push.session", "", "", false},
		{fabric, "fabric.push.session.", "", "", false},
		{fabric, "fabric.push.session.S.x", "", "", false},
		{fabric, "fabric.push.user.a=b", "", "", false},
		{fabric, "fabric.push.all.x", "", "", false},
		{fabric, "fabric.push.group.x", "", "", false},
		{fabric, "fabric.gw.session.S", "", "", false},
		{fabric, acme.PushAll(), "", "", false},
		{acme, fabric.PushAll(), "", "", false},
	} {
		to, key, ok := tc.space.ParsePush(tc.subject)
		if ok != tc.ok || to != tc.to || key != tc.key {
			t.Errorf("ParsePush(%q) = %q, %q, %v; want %q, %q, %v", tc.subject, to, key, ok, tc.to, tc.key, tc.ok)
		}
	}
}

// TestAuthConnectIsNoOtherSubject checks that the connect hook's subject
// lies outside every wildcard a gateway or worker subscribes to, so that no
// request, event, cancel or push handler ever sees a client's credentials.
func TestAuthConnectIsNoOtherSubject(t *testing.T) {
	for _, prefix := range []string{"", "acme.prod"} {
		s := subjects.MustSpace(prefix)
		subject := s.AuthConnect()
		if _, ok := s.ParseRequest(subject); ok {
			t.Errorf("%s parses as a request", subject)
		}
		if _, _, _, _, ok := s.ParseEventSubject(subject); ok {
			t.Errorf("%s parses as an event", subject)
		}
		if _, _, ok := s.ParseCancel(subject); ok {
			t.Errorf("%s parses as a cancel", subject)
		}
		if _, _, ok := s.ParsePush(subject); ok {
			t.Errorf("%s parses as a push", subject)
		}
		for _, wildcard := range []string{s.Requests(), s.Cancels(), s.Pushes(), s.EventWildcard("", "", "")} {
			if strings.HasPrefix(subject, strings.TrimRight(wildcard, ">*.")) {
				t.Errorf("%s lies under %s", subject, wildcard)
			}
		}
	}
}
