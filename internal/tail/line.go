package tail

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/seed82ac63c1/fabric/subjects"
)

// ShortSession is how many characters of a session id [Line] prints.
const ShortSession = 8

// Line formats rec as one line for a terminal, without a newline:
//
//	14:03:07.123  xMlfmDyW  m1          demo/count:progress         #1   4bf92f3577b34da6a3ce929d0e0e4736  {"i":1}
//
// The time (HH:MM:SS.mmm, in rec.Time's location), the session's first
// characters, the message id, what happened ("→ route" for a request,
// "route:suffix" for an event, with " [gateway]" when a gateway made it,
// "✕ cancel route" and "⇢ push type to …"), the seq, the trace id, and the
// payload preview, with "…" when it was cut short. "-" stands for a missing
// field. Control characters are escaped, so that a payload cannot drive the
// terminal.
func Line(rec Record) string {
	var what string
	switch rec.Kind {
	case KindRequest:
		what = "→ " + rec.Route
	case KindEvent:
		what = rec.Route + ":" + rec.Suffix
		if rec.Origin == OriginGateway {
			what += " [gateway]"
		}
	case KindCancel:
		what = strings.TrimSpace("✕ cancel " + rec.Route)
	case KindPush:
		typ := rec.Route
		if rec.Suffix != "" {
			typ += ":" + rec.Suffix
		}
		if typ == "" {
			typ = "(bad type)"
		}
		what = "⇢ push " + typ + " to " + rec.To
		if rec.To == subjects.PushToUser {
			what += " " + rec.User
		}
	}
	seq := "-"
	if rec.Seq > 0 {
		seq = fmt.Sprintf("#%d", rec.Seq)
	}
	payload := rec.Payload
	if rec.Truncated && payload != "" {
		payload += "…"
	}
	session := rec.Session
	if len(session) > ShortSession {
		session = session[:ShortSession]
	}
	return strings.TrimRight(fmt.Sprintf("%s  %-*s  %-10s  %-28s  %-4s  %-32s  %s",
		rec.Time.Format("15:04:05.000"), ShortSession, orDash(session), orDash(rec.ID),
		what, seq, orDash(rec.TraceID), printable(payload)), " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printable escapes control characters and invalid UTF-8 as a Go quoted
// string would, and leaves everything else as it is.
func printable(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r == utf8.RuneError || !unicode.IsPrint(r) }) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}
