package subjects_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/seed82ac63c1/fabric/subjects"
)

// Regular-expression oracles for the name rules of the v1 wire contract,
// written independently of the hand-written byte loops they check.
var (
	typeNameRE  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}(/[A-Za-z][A-Za-z0-9_-]{0,63}){0,7}$`)
	suffixRE    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,31}$`)
	idRE        = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	sessionIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{22,64}$`)
)

// FuzzTypeNameToSubject checks the name → subject mapping for any string: a
// name the validators accept becomes a well-formed subject that parses back
// to it, a name they reject is rejected exactly by the contract's rules, and
// nothing panics. The same string is also tried as a subject to parse.
func FuzzTypeNameToSubject(f *testing.F) {
	for _, s := range []string{
		"a", "orchestrator/query", "demo/count", "a/b/c/d/e/f/g/h", "a/b/c/d/e/f/g/h/i",
		"sys", "sys/x", "system/x", "sys/", "/a", "a/", "a//b", "a.b", "a*", ">", "a b", "a\tb",
		"dé/mo", "a\x00", "\xc1", "@", "`", "1a", "_a", "-a",
		strings.Repeat("a", 64), strings.Repeat("a", 65),
		strings.Repeat("a", 64) + "/" + strings.Repeat("b", 63), strings.Repeat("a", 64) + "/" + strings.Repeat("b", 64),
		"demo/notice:created", "a:b:c", "m1", "550e8400-e29b-41d4-a716-446655440000",
		"fabric.req.orchestrator.query", "fabric.req.a/b", "fabric.req.a..b",
		"fabric.evt.S.m1", "fabric.evt.S.m1.a.b.progress", "fabric.evt.S..x", "fabric.evt.S.m1.",
		"fabric.cancel.S.m1", "fabric.cancel.S.m1.x",
		"fabric.evt.S.m1.progress", "fabric.evt.S.m1.a..b.x", "fabric.evt.*.m1.a.b",
		"fabric.push.session.S", "fabric.push.user.YWxpY2U", "fabric.push.all", "fabric.push.all.x", "fabric.push.session.",
	} {
		f.Add(s)
	}
	space := subjects.MustSpace("")
	acme := subjects.MustSpace("acme.prod")
	f.Fuzz(func(t *testing.T, s string) {
		// The validators agree with the contract's rules.
		validType := typeNameRE.MatchString(s) && len(s) <= subjects.MaxTypeNameLen
		reserved := s == "sys" || strings.HasPrefix(s, "sys/")
		if got := subjects.ValidateTypeName(s) == nil; got != validType {
			t.Fatalf("ValidateTypeName(%q) ok=%v, contract says %v", s, got, validType)
		}
		if got := subjects.IsReserved(s); got != reserved {
			t.Fatalf("IsReserved(%q) = %v, want %v", s, got, reserved)
		}
		if got := subjects.ValidateSuffix(s) == nil; got != suffixRE.MatchString(s) {
			t.Fatalf("ValidateSuffix(%q) ok=%v, contract says %v", s, got, !got)
		}
		if got := subjects.ValidateID(s) == nil; got != idRE.MatchString(s) {
			t.Fatalf("ValidateID(%q) ok=%v, contract says %v", s, got, !got)
		}
		if got := subjects.ValidateSessionID(s) == nil; got != sessionIDRE.MatchString(s) {
			t.Fatalf("ValidateSessionID(%q) ok=%v, contract says %v", s, got, !got)
		}
		typeName, suffix, hasSuffix := subjects.SplitEventType(s)
		wantPush := typeNameRE.MatchString(typeName) && len(typeName) <= subjects.MaxTypeNameLen &&
			!subjects.IsReserved(typeName) && (!hasSuffix || suffixRE.MatchString(suffix))
		if got := subjects.ValidatePushType(s) == nil; got != wantPush {
			t.Fatalf("ValidatePushType(%q) ok=%v, want %v", s, got, wantPush)
		}

		// The same string as a received subject: parsers never panic and
		// accept only what the builders make.
		if tn, ok := space.ParseRequest(s); ok && space.Request(tn) != s {
			t.Fatalf("ParseRequest(%q) = %q, but Request(%q) = %q", s, tn, tn, space.Request(tn))
		}
		if sess, id, ok := space.ParseCancel(s); ok && space.Cancel(sess, id) != s {
			t.Fatalf("ParseCancel(%q) = %q, %q, but Cancel gives %q", s, sess, id, space.Cancel(sess, id))
		}
		if id, tail, ok := space.ParseEvent("S", s); ok {
			want := space.Reply("S", id)
			if tail != "" {
				want += "." + tail
			}
			if id == "" || want != s {
				t.Fatalf("ParseEvent(%q) = %q, %q, which rebuilds %q", s, id, tail, want)
			}
		}
		if sess, id, tn, sfx, ok := space.ParseEventSubject(s); ok {
			if want := subjects.Event(space.Reply(sess, id), tn, sfx); want != s {
				t.Fatalf("ParseEventSubject(%q) = %q, %q, %q, %q, which rebuilds %q", s, sess, id, tn, sfx, want)
			}
			if subjects.ValidateID(id) != nil || subjects.ValidateTypeName(tn) != nil || subjects.ValidateSuffix(sfx) != nil {
				t.Fatalf("ParseEventSubject(%q) = %q, %q, %q, %q: a part breaks its rule", s, sess, id, tn, sfx)
			}
		}
		if to, key, ok := space.ParsePush(s); ok {
			want := space.PushAll()
			if to != subjects.PushToAll {
				want = strings.TrimSuffix(space.Pushes(), ">") + to + "." + key
			}
			if want != s || (to == subjects.PushToSession && space.PushSession(key) != s) {
				t.Fatalf("ParsePush(%q) = %q, %q, which rebuilds %q", s, to, key, want)
			}
		}

		err := subjects.ValidateRoute(s)
		if (err == nil) != (validType && !reserved) {
			t.Fatalf("ValidateRoute(%q) = %v, want ok=%v", s, err, validType && !reserved)
		}
		if err != nil {
			return
		}
		segments := strings.Count(s, "/") + 1
		for _, sp := range []subjects.Space{space, acme} {
			subject := sp.Request(s)
			checkSubject(t, subject)
			if got := strings.Count(subject, ".") + 1; got != segments+strings.Count(sp.Prefix(), ".")+2 {
				t.Fatalf("Request(%q) = %q: %d tokens for %d segments", s, subject, got, segments)
			}
			if got, ok := sp.ParseRequest(subject); !ok || got != s {
				t.Fatalf("ParseRequest(Request(%q)) = %q, %v", s, got, ok)
			}

			reply := sp.Reply(session, "m1")
			event := subjects.Event(reply, s, subjects.ReservedSegment) // any valid suffix
			checkSubject(t, event)
			id, tail, ok := sp.ParseEvent(session, event)
			if !ok || id != "m1" {
				t.Fatalf("ParseEvent(%q) = %q, %q, %v", event, id, tail, ok)
			}
			if sfx, ok := subjects.EventSuffix(tail, subjects.TypeTokens(s)); !ok || sfx != subjects.ReservedSegment {
				t.Fatalf("EventSuffix(%q) = %q, %v", tail, sfx, ok)
			}
			if sess, id, tn, sfx, ok := sp.ParseEventSubject(event); !ok || sess != session || id != "m1" || tn != s || sfx != subjects.ReservedSegment {
				t.Fatalf("ParseEventSubject(%q) = %q, %q, %q, %q, %v", event, sess, id, tn, sfx, ok)
			}
		}
		if subjects.ValidatePushType(s) != nil || subjects.ValidatePushType(subjects.EventType(s, "x")) != nil {
			t.Fatalf("route %q is not a valid push type", s)
		}
	})
}

// checkSubject fails unless subject is a literal NATS subject: no wildcard,
// no whitespace or control byte, no empty token, ASCII only.
func checkSubject(t *testing.T, subject string) {
	t.Helper()
	for _, tok := range strings.Split(subject, ".") {
		if tok == "" {
			t.Fatalf("subject %q has an empty token", subject)
		}
	}
	for _, r := range subject {
		if r == '*' || r == '>' || unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII {
			t.Fatalf("subject %q holds %q", subject, r)
		}
	}
}
