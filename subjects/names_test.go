package subjects_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/seed82ac63c1/fabric/subjects"
)

// seg returns a valid segment of n characters: a letter then n-1 of a
// rotation through every other allowed byte.
func seg(n int) string {
	const rest = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
	var b strings.Builder
	b.WriteByte('Z')
	for i := 1; i < n; i++ {
		b.WriteByte(rest[i%len(rest)])
	}
	return b.String()
}

// segs joins n segments "a", "b", … with '/'.
func segs(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = string(rune('a' + i))
	}
	return strings.Join(parts, "/")
}

// typeNameCases are typeNames the contract accepts (ok) or rejects, whatever
// the reserved namespace.
var typeNameCases = []struct {
	name string
	in   string
	ok   bool
}{
	// Accepted.
	{"one letter", "a", true},
	{"upper", "Z", true},
	{"two segments", "orchestrator/query", true},
	{"all byte classes", "aZ09_-/Bx-_9", true},
	{"digits after first", "a1/b2/c3", true},
	{"hyphen and underscore", "my-app/do_it", true},
	{"letter then symbols", "a-/b_", true},
	{"sys is a valid typeName", "sys/hello", true},
	{"8 segments", segs(8), true},
	{"segment of 64", seg(64), true},
	{"segment of 64 among others", "a/" + seg(64) + "/b", true},
	{"128 characters", seg(64) + "/" + seg(63), true},
	{"128 characters in 8 segments", strings.Repeat(seg(15)+"/", 7) + seg(16), true},

	// Rejected: emptiness and separators.
	{"empty", "", false},
	{"only slash", "/", false},
	{"leading slash", "/a", false},
	{"trailing slash", "a/", false},
	{"empty segment", "a//b", false},
	{"double trailing slash", "a/b//", false},
	{"backslash", `a\b`, false},

	// Rejected: the first character of a segment.
	{"digit first", "1a", false},
	{"digit first in later segment", "a/1b", false},
	{"underscore first", "_a", false},
	{"hyphen first", "-a", false},
	{"hyphen first in later segment", "a/-b", false},

	// Rejected: NATS subject syntax.
	{"dot", "a.b", false},
	{"dot in segment", "orchestrator/query.v2", false},
	{"lone dot", ".", false},
	{"star", "*", false},
	{"star segment", "a/*", false},
	{"star in segment", "a/b*", false},
	{"gt", ">", false},
	{"gt segment", "a/>", false},
	{"gt in segment", "a>b", false},

	// Rejected: whitespace and control bytes.
	{"space", "a b", false},
	{"leading space", " a", false},
	{"trailing space", "a ", false},
	{"tab", "a\tb", false},
	{"newline", "a\nb", false},
	{"carriage return", "a\rb", false},
	{"NUL", "a\x00b", false},
	{"trailing NUL", "a\x00", false},
	{"DEL", "a\x7f", false},

	// Rejected: other ASCII punctuation, including bytes next to the letter
	// ranges (@ [ ` {) that a careless case fold would let through.
	{"colon (event type)", "a/b:progress", false},
	{"at", "@a", false},
	{"bracket", "[a", false},
	{"backtick", "`a", false},
	{"brace", "{a", false},
	{"at inside", "a@b", false},
	{"plus", "a+b", false},
	{"percent", "a%20b", false},
	{"quote", `a"b`, false},

	// Rejected: non-ASCII.
	{"accent", "dé/mo", false},
	{"accent first", "émo", false},
	{"fullwidth letter", "ａ", false},
	{"latin-1 byte", "a\xe9", false},
	{"invalid UTF-8", "a\xff", false},
	{"high byte that folds onto a letter", "\xc1", false},
	{"zero width space", "a\u200bb", false},

	// Rejected: boundaries.
	{"9 segments", segs(9), false},
	{"segment of 65", seg(65), false},
	{"segment of 65 among others", "a/" + seg(65), false},
	{"129 characters", seg(64) + "/" + seg(64), false},
	{"129 characters in 8 segments", strings.Repeat(seg(15)+"/", 7) + seg(17), false},
	{"very long", strings.Repeat("a/", 1000) + "a", false},
}

func TestValidateTypeName(t *testing.T) {
	for _, tc := range typeNameCases {
		t.Run(tc.name, func(t *testing.T) {
			err := subjects.ValidateTypeName(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateTypeName(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if err != nil && !errors.Is(err, subjects.ErrTypeName) {
				t.Fatalf("ValidateTypeName(%q) = %v, want an error matching ErrTypeName", tc.in, err)
			}
		})
	}
}

func TestBoundaryHelpers(t *testing.T) {
	// The boundary cases above are only meaningful if the helpers build what
	// their names say.
	for _, n := range []int{1, 15, 16, 17, 63, 64, 65} {
		if got := len(seg(n)); got != n {
			t.Fatalf("len(seg(%d)) = %d", n, got)
		}
	}
	if n := len(strings.Repeat(seg(15)+"/", 7) + seg(16)); n != subjects.MaxTypeNameLen {
		t.Fatalf("8-segment name of %d characters, want %d", n, subjects.MaxTypeNameLen)
	}
	if n := strings.Count(segs(9), "/") + 1; n != 9 {
		t.Fatalf("segs(9) has %d segments", n)
	}
}

func TestValidateRoute(t *testing.T) {
	// Every typeName rule applies to routes.
	for _, tc := range typeNameCases {
		if subjects.IsReserved(tc.in) {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			err := subjects.ValidateRoute(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidateRoute(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if err != nil && !errors.Is(err, subjects.ErrTypeName) {
				t.Fatalf("ValidateRoute(%q) = %v, want an error matching ErrTypeName", tc.in, err)
			}
		})
	}
	// The reserved namespace.
	for _, tc := range []struct {
		in       string
		reserved bool
	}{
		{"sys", true},
		{"sys/x", true},
		{"sys/hello", true},
		{"sys/cancel", true},
		{"sys/a/b/c", true},
		{"system/x", false},
		{"system", false},
		{"sysx", false},
		{"sy", false},
		{"a/sys", false},
		{"a/sys/b", false},
		{"xsys/a", false},
		{"sys_/a", false},
		{"sys-a", false},
	} {
		t.Run("reserved "+tc.in, func(t *testing.T) {
			if got := subjects.IsReserved(tc.in); got != tc.reserved {
				t.Fatalf("IsReserved(%q) = %v, want %v", tc.in, got, tc.reserved)
			}
			err := subjects.ValidateRoute(tc.in)
			if tc.reserved {
				if !errors.Is(err, subjects.ErrReserved) {
					t.Fatalf("ValidateRoute(%q) = %v, want ErrReserved", tc.in, err)
				}
				if errors.Is(err, subjects.ErrTypeName) {
					t.Fatalf("ValidateRoute(%q) = %v: a well-formed reserved name is not ErrTypeName", tc.in, err)
				}
			} else if err != nil {
				t.Fatalf("ValidateRoute(%q) = %v, want nil", tc.in, err)
			}
		})
	}
	// An invalid name under sys is reported as invalid, not as reserved.
	for _, in := range []string{"sys/", "sys//x", "sys/x.y", "sys/" + seg(65)} {
		if err := subjects.ValidateRoute(in); !errors.Is(err, subjects.ErrTypeName) {
			t.Errorf("ValidateRoute(%q) = %v, want ErrTypeName", in, err)
		}
	}
}

func TestValidateSuffix(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"progress", true},
		{"response", true},
		{"error", true},
		{"finish", true},
		{"a", true},
		{"Z", true},
		{"a1_-B", true},
		{seg(32), true},

		{"", false},
		{seg(33), false},
		{"1a", false},
		{"_a", false},
		{"-a", false},
		{"a.b", false},
		{"a/b", false},
		{"a:b", false},
		{"*", false},
		{">", false},
		{"a*", false},
		{"a>", false},
		{"a b", false},
		{"a\t", false},
		{"a\x00", false},
		{"é", false},
		{"prógress", false},
		{"@a", false},
		{"`a", false},
	} {
		err := subjects.ValidateSuffix(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateSuffix(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !errors.Is(err, subjects.ErrSuffix) {
			t.Errorf("ValidateSuffix(%q) = %v, want ErrSuffix", tc.in, err)
		}
	}
}

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"m1", true},
		{"1", true},
		{"_", true},
		{"-", true},
		{"0123456789", true},
		{"aZ09_-", true},
		{"550e8400-e29b-41d4-a716-446655440000", true}, // a UUID fits
		{strings.Repeat("x", 64), true},
		{strings.Repeat("9", 64), true},

		{"", false},
		{strings.Repeat("x", 65), false},
		{"m.1", false},
		{".", false},
		{"m/1", false},
		{"m:1", false},
		{"*", false},
		{">", false},
		{"m*", false},
		{"m 1", false},
		{" m1", false},
		{"m1\t", false},
		{"m1\n", false},
		{"m1\x00", false},
		{"mé", false},
		{"m\xff", false},
		{"{550e8400-e29b-41d4-a716-446655440000}", false},
		{"m+1", false},
	} {
		err := subjects.ValidateID(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !errors.Is(err, subjects.ErrID) {
			t.Errorf("ValidateID(%q) = %v, want ErrID", tc.in, err)
		}
	}
}

func TestValidateSessionID(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{strings.Repeat("a", 22), true}, // 128 bits in unpadded base64url
		{"AZaz09_-AZaz09_-AZaz09", true},
		{strings.Repeat("-", 64), true},

		{"", false},
		{strings.Repeat("a", 21), false},
		{strings.Repeat("a", 65), false},
		{strings.Repeat("a", 21) + ".", false},
		{strings.Repeat("a", 21) + "*", false},
		{strings.Repeat("a", 21) + ">", false},
		{strings.Repeat("a", 21) + " ", false},
		{strings.Repeat("a", 21) + "=", false}, // padded base64
		{strings.Repeat("a", 21) + "+", false}, // standard base64
		{strings.Repeat("a", 21) + "/", false},
		{strings.Repeat("a", 20) + "é", false},
	} {
		err := subjects.ValidateSessionID(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateSessionID(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !errors.Is(err, subjects.ErrSessionID) {
			t.Errorf("ValidateSessionID(%q) = %v, want ErrSessionID", tc.in, err)
		}
	}
}

func TestEventType(t *testing.T) {
	for _, tc := range []struct {
		typeName, suffix, eventType string
	}{
		{"orchestrator/query", "progress", "orchestrator/query:progress"},
		{"demo/count", "finish", "demo/count:finish"},
		{"a", "b", "a:b"},
	} {
		if got := subjects.EventType(tc.typeName, tc.suffix); got != tc.eventType {
			t.Errorf("EventType(%q, %q) = %q, want %q", tc.typeName, tc.suffix, got, tc.eventType)
		}
		typeName, suffix, ok := subjects.SplitEventType(tc.eventType)
		if !ok || typeName != tc.typeName || suffix != tc.suffix {
			t.Errorf("SplitEventType(%q) = %q, %q, %v", tc.eventType, typeName, suffix, ok)
		}
	}
}

func TestSplitEventType(t *testing.T) {
	for _, tc := range []struct {
		in, typeName, suffix string
		ok                   bool
	}{
		{"demo/count:progress", "demo/count", "progress", true},
		{"demo/count", "demo/count", "", false},
		{"", "", "", false},
		{":", "", "", true},
		{"a:", "a", "", true},
		{":b", "", "b", true},
		{"a:b:c", "a:b", "c", true}, // the suffix follows the last ':'
	} {
		typeName, suffix, ok := subjects.SplitEventType(tc.in)
		if typeName != tc.typeName || suffix != tc.suffix || ok != tc.ok {
			t.Errorf("SplitEventType(%q) = %q, %q, %v; want %q, %q, %v", tc.in, typeName, suffix, ok, tc.typeName, tc.suffix, tc.ok)
		}
	}
}

func TestValidatePushType(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error // nil, or the sentinel the error must match
	}{
		{"demo/notice", nil},
		{"a", nil},
		{"demo/notice:created", nil},
		{"chat/room:message", nil},
		{segs(8) + ":" + seg(32), nil},

		{"", subjects.ErrTypeName},
		{"sys", subjects.ErrReserved},
		{"sys/ping", subjects.ErrReserved},
		{"sys/x:y", subjects.ErrReserved},
		{"demo.notice", subjects.ErrTypeName},
		{"demo/*", subjects.ErrTypeName},
		{":created", subjects.ErrTypeName},
		{"a:b:c", subjects.ErrTypeName},
		{"dé/mo:x", subjects.ErrTypeName},
		{"demo/notice:", subjects.ErrSuffix},
		{"demo/notice:1x", subjects.ErrSuffix},
		{"demo/notice:a.b", subjects.ErrSuffix},
		{"demo/notice:a/b", subjects.ErrSuffix},
		{"demo/notice:" + seg(33), subjects.ErrSuffix},
		{"demo/notice: x", subjects.ErrSuffix},
	} {
		err := subjects.ValidatePushType(tc.in)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("ValidatePushType(%q) = %v, want nil", tc.in, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("ValidatePushType(%q) = %v, want %v", tc.in, err, tc.want)
		}
	}
}

func BenchmarkValidateRoute(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"short", "demo/count"},
		{"typical", "orchestrator/query"},
		{"max", strings.Repeat(seg(15)+"/", 7) + seg(16)},
		{"invalid", "demo/count.v2"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.in)))
			for b.Loop() {
				_ = subjects.ValidateRoute(bc.in)
			}
		})
	}
}
