package protocol_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/seed82ac63c1/fabric/protocol"
)

// wireFrame is a client frame as encoding/json spells it, the independent
// encoder the fuzz target checks the decoder against.
type wireFrame struct {
	Type        string          `json:"type"`
	ID          *string         `json:"id,omitempty"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	After       *uint64         `json:"after,omitempty"`
	Traceparent string          `json:"traceparent,omitempty"`
	Tracestate  string          `json:"tracestate,omitempty"`
}

// FuzzDecodeClientFrame checks the client frame decoder on any input: it
// never panics; it fails only with a bad_request *Error; what it accepts,
// encoding/json reads the same way; its frame survives a re-encoding; and a
// server frame built from its fields is valid JSON that reads back the same.
func FuzzDecodeClientFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"orchestrator/query","id":"m1","payload":{"q":"x"},"after":7,"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","tracestate":"k=v"}`,
		`{"type":"sys/hello","payload":{"token":"t","resume":{"sessionId":"S","resumeToken":"R"}}}`,
		`{"type":"sys/cancel","id":"m1"}`,
		`{"type":"sys/ping"}`,
		`{"type":"a","payload":null,"id":null,"after":null,"traceparent":null,"tracestate":null}`,
		`{"type":"a","payload":"q\"b\\s\/n\n\u0000\u00e9\ud83d\ude00"}`,
		`{"type":"a","payload": { "a" : [ 1 , 2.5e-3 , true , null ] } }`,
		`{"\u0074ype":"a","x":{"y":[1,{"z":null}]}}`,
		`{"type":"","id":""}`,
		`{"type":"a","after":18446744073709551615}`,
		`{"type":"a","after":18446744073709551616}`,
		`{"type":"a","after":-1}`,
		`{"type":"a","after":1.5}`,
		`{"type":"a","after":"1"}`,
		`{"type":"a","after":{}}`,
		`{"type":"a","type":"b"}`,
		`{"type":"a","\u0074ype":"b"}`,
		`{"type":"a"}{"type":"b"}`,
		`{"type":"a"} x`,
		`{"type":1}`,
		`{"id":"m1"}`,
		`["sys/ping"]`,
		`"sys/ping"`,
		`42`,
		`null`,
		``,
		`{`,
		"{\"type\":\"a\xff\"}",
		`{"type":"\ud800"}`,
		`{"type":"<script>&"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		fr, err := protocol.DecodeClientFrame(b)

		// A reused decoder, dirtied by another frame, agrees.
		var fd protocol.FrameDecoder
		_, _ = fd.Decode([]byte(`{"type":"x","id":"y","payload":[1,2],"after":3,"traceparent":"t","tracestate":"s"}`))
		fr2, err2 := fd.Decode(b)
		if (err == nil) != (err2 == nil) || frameOf(fr) != frameOf(fr2) {
			t.Fatalf("%q: DecodeClientFrame gives %+v, %v; a reused FrameDecoder %+v, %v", b, frameOf(fr), err, frameOf(fr2), err2)
		}
		if !bytes.Equal(b, in) {
			t.Fatalf("the decoder modified its input %q into %q", in, b)
		}

		if err != nil {
			checkBadRequest(t, err)
			return
		}

		// encoding/json reads the accepted frame the same way. "type" was
		// present as a string, though maybe an empty or invalid name: names
		// are the gateway's to check, so that its sys/error can echo a valid
		// id.
		if !json.Valid(b) {
			t.Fatalf("%q: accepted, but encoding/json finds it invalid", b)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(b, &fields); err != nil {
			t.Fatalf("%q: accepted, but it is not a JSON object: %v", b, err)
		}
		str := func(key string) (string, bool) {
			raw, ok := fields[key]
			if !ok || string(raw) == "null" {
				return "", false
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				t.Fatalf("%q: accepted, but %q is not a string: %v", b, key, err)
			}
			return s, true
		}
		if typ, ok := str("type"); !ok || typ != fr.Type {
			t.Fatalf("%q: type %q, encoding/json reads %q (present %v)", b, fr.Type, typ, ok)
		}
		if id, ok := str("id"); ok != fr.HasID || id != fr.ID {
			t.Fatalf("%q: id %q (%v), encoding/json reads %q (%v)", b, fr.ID, fr.HasID, id, ok)
		}
		if tp, _ := str("traceparent"); tp != fr.Traceparent {
			t.Fatalf("%q: traceparent %q, encoding/json reads %q", b, fr.Traceparent, tp)
		}
		if ts, _ := str("tracestate"); ts != fr.Tracestate {
			t.Fatalf("%q: tracestate %q, encoding/json reads %q", b, fr.Tracestate, ts)
		}
		if raw, ok := fields["after"]; ok && string(raw) != "null" {
			var n uint64
			if err := json.Unmarshal(raw, &n); err != nil || !fr.HasAfter || n != fr.After {
				t.Fatalf("%q: after %d (%v), encoding/json reads %d, %v", b, fr.After, fr.HasAfter, n, err)
			}
		} else if fr.HasAfter {
			t.Fatalf("%q: HasAfter with no after", b)
		}
		if raw, ok := fields["payload"]; ok && string(raw) != "null" {
			if !bytes.Equal(fr.Payload, raw) {
				t.Fatalf("%q: payload %q, encoding/json reads %q", b, fr.Payload, raw)
			}
		} else if fr.Payload != nil {
			t.Fatalf("%q: payload %q with none in the frame", b, fr.Payload)
		}
		if fr.Payload != nil && !json.Valid(fr.Payload) {
			t.Fatalf("%q: payload %q is not valid JSON", b, fr.Payload)
		}

		// Re-encoded by encoding/json, the frame decodes to the same values.
		w := wireFrame{Type: fr.Type, Payload: fr.Payload, Traceparent: fr.Traceparent, Tracestate: fr.Tracestate}
		if fr.HasID {
			w.ID = &fr.ID
		}
		if fr.HasAfter {
			w.After = &fr.After
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(w); err != nil {
			t.Fatalf("%q: re-encoding %+v: %v", b, w, err)
		}
		again, err := protocol.DecodeClientFrame(buf.Bytes())
		if err != nil {
			t.Fatalf("%q re-encoded as %s: %v", b, buf.Bytes(), err)
		}
		want := frameOf(fr)
		if fr.Payload != nil {
			var c bytes.Buffer
			if err := json.Compact(&c, fr.Payload); err != nil {
				t.Fatal(err)
			}
			want.Payload = c.String() // encoding/json compacts a RawMessage
		}
		if got := frameOf(again); got != want {
			t.Fatalf("%q re-encoded as %s decodes as\n%+v, want\n%+v", b, buf.Bytes(), got, want)
		}

		// A server frame built from the decoded fields is valid JSON.
		out := protocol.AppendServerFrame(nil, fr.Type, fr.ID, fr.After, fr.Payload, fr.Traceparent)
		checkServerFrame(t, out, fr.Type, fr.ID, fr.After, fr.Payload, fr.Traceparent)
	})
}
