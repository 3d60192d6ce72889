package protocol_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"

	"github.com/seed82ac63c1/fabric/protocol"
)

// constants returns the values of the constants of type typ declared in
// codes.go, so that a code added without a catalogue entry fails the test.
func constants(t *testing.T, typ string) map[string]string {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), "codes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]string{}
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != typ {
				continue
			}
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					t.Fatalf("constant %s is not a literal", name.Name)
				}
				v := lit.Value
				if lit.Kind == token.STRING {
					v, _ = strconv.Unquote(v)
				}
				values[name.Name] = v
			}
		}
	}
	if len(values) == 0 {
		t.Fatalf("no constants of type %s in codes.go", typ)
	}
	return values
}

func TestErrorCodes(t *testing.T) {
	// The codes the contract names, spelled exactly so.
	want := map[protocol.Code]string{
		protocol.CodeBadRequest:   "bad_request",
		protocol.CodeUnauthorized: "unauthorized",
		protocol.CodeForbidden:    "forbidden",
		protocol.CodeNoResponders: "no_responders",
		protocol.CodeTimeout:      "timeout",
		protocol.CodeCancelled:    "cancelled",
		protocol.CodeInterrupted:  "interrupted",
		protocol.CodeTooLarge:     "too_large",
		protocol.CodeRateLimited:  "rate_limited",
		protocol.CodeOverloaded:   "overloaded",
		protocol.CodeInternal:     "internal",
	}
	for code, spelling := range want {
		if string(code) != spelling {
			t.Errorf("code %q, want %q", code, spelling)
		}
	}
	declared := constants(t, "Code")
	if len(declared) != len(want) {
		t.Errorf("codes.go declares %d codes %v, the contract names %d", len(declared), declared, len(want))
	}

	seen := map[protocol.Code]int{}
	for _, e := range protocol.ErrorCodes {
		seen[e.Code]++
		if e.Description == "" {
			t.Errorf("code %q has no description", e.Code)
		}
	}
	for name, v := range declared {
		if n := seen[protocol.Code(v)]; n != 1 {
			t.Errorf("%s (%q) is in ErrorCodes %d times, want once", name, v, n)
		}
	}
	if len(protocol.ErrorCodes) != len(declared) {
		t.Errorf("ErrorCodes has %d entries, codes.go declares %d codes", len(protocol.ErrorCodes), len(declared))
	}
}

func TestCloseCodes(t *testing.T) {
	// The codes the contract gives a number.
	for _, tc := range []struct {
		code protocol.CloseCode
		want int
	}{
		{protocol.CloseNormal, 1000},
		{protocol.CloseGoingAway, 1001},
		{protocol.CloseBadFrame, 1002},
		{protocol.CloseUnsupported, 1003},
		{protocol.CloseInvalidUTF8, 1007},
		{protocol.CloseTooLarge, 1009},
		{protocol.CloseInternal, 1011},
	} {
		if int(tc.code) != tc.want {
			t.Errorf("close code %d, want %d", tc.code, tc.want)
		}
	}
	// Ranges: a ping timeout or slow consumer reconnects with backoff; a
	// protocol violation or failed authentication does not reconnect.
	for _, tc := range []struct {
		code   protocol.CloseCode
		lo, hi int
	}{
		{protocol.ClosePingTimeout, 4000, 4499},
		{protocol.CloseSlowConsumer, 4000, 4499},
		{protocol.CloseRateLimited, 4000, 4499},
		{protocol.CloseProtocol, 4500, 4999},
		{protocol.CloseHelloTimeout, 4500, 4999},
		{protocol.CloseUnauthorized, 4500, 4999},
		{protocol.CloseSessionResumed, 4500, 4999},
	} {
		if int(tc.code) < tc.lo || int(tc.code) > tc.hi {
			t.Errorf("close code %d outside %d–%d", tc.code, tc.lo, tc.hi)
		}
	}

	declared := constants(t, "CloseCode")
	seen := map[protocol.CloseCode]int{}
	names := map[string]int{}
	for _, c := range protocol.CloseCodes {
		seen[c.Code]++
		names[c.Name]++
		if c.Name == "" || c.Description == "" {
			t.Errorf("close code %d: name %q, description %q", c.Code, c.Name, c.Description)
		}
		if !(c.Code >= 1000 && c.Code <= 1015) && !(c.Code >= 4000 && c.Code <= 4999) {
			t.Errorf("close code %d is neither standard nor in 4000–4999", c.Code)
		}
	}
	for name, v := range declared {
		n, _ := strconv.Atoi(v)
		if seen[protocol.CloseCode(n)] != 1 {
			t.Errorf("%s (%s) is in CloseCodes %d times, want once", name, v, seen[protocol.CloseCode(n)])
		}
	}
	for name, n := range names {
		if n != 1 {
			t.Errorf("close code name %q used %d times", name, n)
		}
	}
	if len(protocol.CloseCodes) != len(declared) {
		t.Errorf("CloseCodes has %d entries, codes.go declares %d codes", len(protocol.CloseCodes), len(declared))
	}
}

// reconnectRule is the contract's reconnect policy for a close code.
func reconnectRule(c protocol.CloseCode) (allowed, immediately bool) {
	switch {
	case c == 1000: // normal: the session is over
		return false, false
	case c == 1001: // going away: at once, elsewhere
		return true, true
	case c >= 4000 && c <= 4499: // with backoff
		return true, false
	case c >= 4500 && c <= 4999: // not without new credentials or a fix
		return false, false
	default:
		// 1002, 1003, 1007, 1009, 1011 and codes a client sees without a close frame
		// (1005, 1006): the contract does not forbid a retry, so with backoff.
		return true, false
	}
}

func TestReconnect(t *testing.T) {
	codes := []protocol.CloseCode{1005, 1006, 1011, 1012, 4000, 4250, 4499, 4500, 4750, 4999}
	for _, c := range protocol.CloseCodes {
		codes = append(codes, c.Code)
	}
	for _, c := range codes {
		allowed, immediately := c.Reconnect()
		wantAllowed, wantImmediately := reconnectRule(c)
		if allowed != wantAllowed || immediately != wantImmediately {
			t.Errorf("CloseCode(%d).Reconnect() = %v, %v; want %v, %v", c, allowed, immediately, wantAllowed, wantImmediately)
		}
		if immediately && !allowed {
			t.Errorf("CloseCode(%d): immediately without allowed", c)
		}
	}
	// Spot checks that do not go through the rule above.
	if a, i := protocol.CloseNormal.Reconnect(); a || i {
		t.Error("1000 reconnects")
	}
	if a, i := protocol.CloseGoingAway.Reconnect(); !a || !i {
		t.Error("1001 does not reconnect at once")
	}
	if a, i := protocol.ClosePingTimeout.Reconnect(); !a || i {
		t.Error("4000 does not reconnect with backoff")
	}
	if a, _ := protocol.CloseUnauthorized.Reconnect(); a {
		t.Error("4502 reconnects")
	}
	if a, i := protocol.CloseCode(1006).Reconnect(); !a || i {
		t.Error("1006 does not reconnect with backoff")
	}
}
