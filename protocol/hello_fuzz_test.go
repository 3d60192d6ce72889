package protocol_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/seed82ac63c1/fabric/protocol"
)

// FuzzDecodeHello checks what a gateway does with the frames that carry a
// client's token: the frame decoder, then DecodeHello on a sys/hello's
// payload, or DecodeRefresh on a sys/refresh's. None panics; each fails
// only with a bad_request *Error; the strings of an accepted hello or
// refresh are valid UTF-8 (they reach logs and the authenticator), a
// refresh always has a token; and the hello survives a re-encoding.
func FuzzDecodeHello(f *testing.F) {
	for _, s := range []string{
		`{"type":"sys/hello"}`,
		`{"type":"sys/hello","payload":null}`,
		`{"type":"sys/hello","payload":{}}`,
		`{"type":"sys/hello","payload":{"client":"fabric-ts/0.1.0"}}`,
		`{"type":"sys/hello","payload":{"token":"eyJhbGciOiJIUzI1NiJ9.e30.x","client":"go"}}`,
		`{"type":"sys/hello","payload":{"resume":{"sessionId":"xMlfmDyWf0WvG_EY-0_Acw","resumeToken":"HHCg6Vhd5P-vmXphrqIwaMeXunj5UUOLAsTH7k-hnlU"}}}`,
		`{"type":"sys/hello","payload":{"resume":null}}`,
		`{"type":"sys/hello","payload":{"resume":{}}}`,
		`{"type":"sys/hello","payload":{"resume":"x"}}`,
		`{"type":"sys/hello","payload":{"resume":{"sessionId":1}}}`,
		`{"type":"sys/hello","payload":{"token":1}}`,
		`{"type":"sys/hello","payload":{"TOKEN":"a","token":"b"}}`,
		`{"type":"sys/hello","payload":{"token":"a","token":"b"}}`,
		`{"type":"sys/hello","payload":{"client":"a\r\nStatus: 503\u0000"}}`,
		"{\"type\":\"sys/hello\",\"payload\":{\"client\":\"\xff\xfe\"}}",
		`{"type":"sys/hello","payload":{"client":"\ud800"}}`,
		`{"type":"sys/hello","payload":[]}`,
		`{"type":"sys/hello","payload":"hello"}`,
		`{"type":"sys/hello","payload":{"a":{"b":[1,2,{"c":null}]}}}`,
		`{"type":"sys/hello","payload":{"client":"x"} }`,
		`{"type":"sys/hello","payload":{`,
		`{"type":"demo/echo","id":"m1"}`,
		``,
		`{"type":"sys/refresh","id":"r1","payload":{"token":"eyJhbGciOiJIUzI1NiJ9.e30.x"}}`,
		`{"type":"sys/refresh","id":"r1","payload":{"token":""}}`,
		`{"type":"sys/refresh","id":"r1","payload":{"token":7}}`,
		`{"type":"sys/refresh","id":"r1","payload":null}`,
		`{"type":"sys/refresh","id":"r1"}`,
		`{"type":"sys/refresh","payload":{"token":"\ud800"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := protocol.DecodeClientFrame(b)
		if err != nil {
			checkBadRequest(t, err)
			return
		}
		if fr.Type == protocol.TypeRefresh {
			r, err := protocol.DecodeRefresh(fr.Payload)
			switch {
			case err != nil:
				checkBadRequest(t, err)
			case r.Token == "" || !utf8.ValidString(r.Token):
				t.Fatalf("%q: accepted a refresh with token %q", b, r.Token)
			}
			return
		}
		if fr.Type != protocol.TypeHello {
			return
		}
		h, err := protocol.DecodeHello(fr.Payload)
		if err != nil {
			checkBadRequest(t, err)
			return
		}
		strs := []string{h.Token, h.Client}
		if h.Resume != nil {
			strs = append(strs, h.Resume.SessionID, h.Resume.ResumeToken)
		}
		for _, s := range strs {
			if !utf8.ValidString(s) {
				t.Fatalf("%q: accepted a hello with invalid UTF-8 %q", b, s)
			}
		}
		enc, err := json.Marshal(h)
		if err != nil {
			t.Fatalf("%q: re-encoding %+v: %v", b, h, err)
		}
		again, err := protocol.DecodeHello(enc)
		if err != nil || !reflect.DeepEqual(again, h) {
			t.Fatalf("%q: %+v re-encoded as %s decodes as %+v, %v", b, h, enc, again, err)
		}
	})
}
