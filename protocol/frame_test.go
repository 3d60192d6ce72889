package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/seed82ac63c1/fabric/protocol"
)

const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

// frame is the expected result of a successful decode. Payload "" means nil.
type frame struct {
	Type        string
	ID          string
	HasID       bool
	Payload     string
	After       uint64
	HasAfter    bool
	Traceparent string
	Tracestate  string
}

func frameOf(f protocol.ClientFrame) frame {
	return frame{f.Type, f.ID, f.HasID, string(f.Payload), f.After, f.HasAfter, f.Traceparent, f.Tracestate}
}

func TestDecodeClientFrame(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want frame
	}{
		{"every field",
			`{"type":"orchestrator/query","id":"m1","payload":{"q":"x"},"after":7,"traceparent":"` + traceparent + `","tracestate":"k=v,k2=v2"}`,
			frame{Type: "orchestrator/query", ID: "m1", HasID: true, Payload: `{"q":"x"}`, After: 7, HasAfter: true, Traceparent: traceparent, Tracestate: "k=v,k2=v2"}},
		{"every field, another order",
			`{"tracestate":"k=v","after":0,"payload":[1],"traceparent":"t","id":"m1","type":"a"}`,
			frame{Type: "a", ID: "m1", HasID: true, Payload: `[1]`, HasAfter: true, Traceparent: "t", Tracestate: "k=v"}},
		{"type only", `{"type":"sys/ping"}`, frame{Type: "sys/ping"}},
		{"hello", `{"type":"sys/hello","payload":{"token":"t","resume":{"sessionId":"S","resumeToken":"R"},"client":"c/1"}}`,
			frame{Type: "sys/hello", Payload: `{"token":"t","resume":{"sessionId":"S","resumeToken":"R"},"client":"c/1"}`}},
		{"cancel", `{"type":"sys/cancel","id":"m1"}`, frame{Type: "sys/cancel", ID: "m1", HasID: true}},
		{"whitespace around and inside", " \t\r\n{ \"type\" : \"a\" ,\n \"id\" :\t\"m1\" } \r\n\t ", frame{Type: "a", ID: "m1", HasID: true}},

		// The decoder checks JSON types only; names are checked by the
		// gateway, which can then echo a valid id in its sys/error.
		{"empty type", `{"type":"","id":"m1"}`, frame{Type: "", ID: "m1", HasID: true}},
		{"invalid type name", `{"type":"a.b/*"}`, frame{Type: "a.b/*"}},
		{"empty id", `{"type":"a","id":""}`, frame{Type: "a", HasID: true}},
		{"escapes in strings", `{"type":"a\/b","id":"m\"1\\","traceparent":"\u0041\t"}`, frame{Type: "a/b", ID: `m"1\`, HasID: true, Traceparent: "A\t"}},
		{"unicode in strings", `{"type":"dé/mo","id":"😀","tracestate":"\u00e9\ud83d\ude00"}`, frame{Type: "dé/mo", ID: "😀", HasID: true, Tracestate: "é😀"}},
		{"escaped key", `{"\u0074ype":"a","\u0069d":"m1"}`, frame{Type: "a", ID: "m1", HasID: true}},

		// The payload is kept byte for byte.
		{"payload object", `{"type":"a","payload":{"n":3,"intervalMs":10}}`, frame{Type: "a", Payload: `{"n":3,"intervalMs":10}`}},
		{"payload object with spacing", `{"type":"a","payload": { "a" : [ 1 , 2 ] ,"b":{}} }`, frame{Type: "a", Payload: `{ "a" : [ 1 , 2 ] ,"b":{}}`}},
		{"payload nested", `{"type":"a","payload":{"a":[{"b":[[],{}]},null,true,false,-0.5e-3]}}`, frame{Type: "a", Payload: `{"a":[{"b":[[],{}]},null,true,false,-0.5e-3]}`}},
		{"payload array", `{"type":"a","payload":[1,"two",null]}`, frame{Type: "a", Payload: `[1,"two",null]`}},
		{"payload empty array", `{"type":"a","payload":[]}`, frame{Type: "a", Payload: `[]`}},
		{"payload empty object", `{"type":"a","payload":{}}`, frame{Type: "a", Payload: `{}`}},
		{"payload string with escapes", `{"type":"a","payload":"q\"b\\s\/n\n\u0000\u00e9\ud83d\ude00"}`, frame{Type: "a", Payload: `"q\"b\\s\/n\n\u0000\u00e9\ud83d\ude00"`}},
		{"payload raw unicode", `{"type":"a","payload":"dé😀 <>&"}`, frame{Type: "a", Payload: `"dé😀 <>&"`}},
		{"payload empty string", `{"type":"a","payload":""}`, frame{Type: "a", Payload: `""`}},
		{"payload integer", `{"type":"a","payload":42}`, frame{Type: "a", Payload: `42`}},
		{"payload zero", `{"type":"a","payload":0}`, frame{Type: "a", Payload: `0`}},
		{"payload negative float", `{"type":"a","payload":-1.5E+10}`, frame{Type: "a", Payload: `-1.5E+10`}},
		{"payload big number", `{"type":"a","payload":123456789012345678901234567890}`, frame{Type: "a", Payload: `123456789012345678901234567890`}},
		{"payload true", `{"type":"a","payload":true}`, frame{Type: "a", Payload: `true`}},
		{"payload false", `{"type":"a","payload":false}`, frame{Type: "a", Payload: `false`}},
		{"payload first", `{"payload":{"x":1},"type":"a"}`, frame{Type: "a", Payload: `{"x":1}`}},
		{"payload absent", `{"type":"a","id":"m1"}`, frame{Type: "a", ID: "m1", HasID: true}},

		// A null optional field counts as absent.
		{"payload null", `{"type":"a","payload":null}`, frame{Type: "a"}},
		{"id null", `{"type":"a","id":null}`, frame{Type: "a"}},
		{"after null", `{"type":"a","after":null}`, frame{Type: "a"}},
		{"traceparent null", `{"type":"a","traceparent":null}`, frame{Type: "a"}},
		{"tracestate null", `{"type":"a","tracestate":null}`, frame{Type: "a"}},
		{"all optional null", `{"type":"a","id":null,"payload":null,"after":null,"traceparent":null,"tracestate":null}`, frame{Type: "a"}},

		// after.
		{"after 0", `{"type":"a","id":"m1","after":0}`, frame{Type: "a", ID: "m1", HasID: true, HasAfter: true}},
		{"after 1", `{"type":"a","id":"m1","after":1}`, frame{Type: "a", ID: "m1", HasID: true, After: 1, HasAfter: true}},
		{"after max uint64", `{"type":"a","after":18446744073709551615}`, frame{Type: "a", After: math.MaxUint64, HasAfter: true}},

		// Unknown fields are ignored, whatever they hold.
		{"unknown fields", `{"type":"a","extra":{"deep":[1,{"x":null}]},"seq":5,"trace":"t","n":null,"b":true,"s":"x"}`, frame{Type: "a"}},
		{"unknown field before type", `{"zzz":[[[]]],"type":"a"}`, frame{Type: "a"}},
		{"field names are case-sensitive", `{"Type":"X","ID":"x","Payload":1,"After":-1,"type":"a"}`, frame{Type: "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := protocol.DecodeClientFrame([]byte(tc.in))
			if err != nil {
				t.Fatalf("DecodeClientFrame(%s): %v", tc.in, err)
			}
			if got := frameOf(f); got != tc.want {
				t.Fatalf("DecodeClientFrame(%s)\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
			if tc.want.Payload == "" && f.Payload != nil {
				t.Fatalf("DecodeClientFrame(%s): payload %q, want nil", tc.in, f.Payload)
			}
			if f.Payload != nil && !json.Valid(f.Payload) {
				t.Fatalf("DecodeClientFrame(%s): payload %q is not valid JSON", tc.in, f.Payload)
			}
		})
	}
}

func TestDecodeClientFrameErrors(t *testing.T) {
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	for _, tc := range []struct{ name, in string }{
		// Not JSON.
		{"empty", ""},
		{"whitespace", " \n\t"},
		{"text", "hello"},
		{"truncated", `{"type":"a"`},
		{"truncated key", `{"type`},
		{"truncated payload", `{"type":"a","payload":{"x":`},
		{"trailing comma", `{"type":"a",}`},
		{"single quotes", `{'type':'a'}`},
		{"unquoted key", `{type:"a"}`},
		{"missing colon", `{"type" "a"}`},
		{"bad literal", `{"type":"a","payload":nul}`},
		{"leading zero", `{"type":"a","payload":01}`},
		{"NaN", `{"type":"a","payload":NaN}`},
		{"bad escape", `{"type":"a\x"}`},
		{"raw control character", "{\"type\":\"a\tb\"}"},
		{"raw newline in string", "{\"type\":\"a\nb\"}"},
		{"comment", `{"type":"a"/*c*/}`},
		{"too deep", `{"type":"a","payload":` + deep + `}`},

		// JSON, but not an object.
		{"array", `["sys/ping"]`},
		{"empty array", `[]`},
		{"string", `"sys/ping"`},
		{"number", `42`},
		{"null", `null`},
		{"true", `true`},

		// Not exactly one object.
		{"two objects", `{"type":"a"}{"type":"b"}`},
		{"object and text", `{"type":"a"} x`},
		{"object and number", `{"type":"a"} 1`},
		{"object and brace", `{"type":"a"}}`},
		{"object and NUL", "{\"type\":\"a\"}\x00"},

		// Duplicate keys, of known or unknown fields, however spelled.
		{"duplicate type", `{"type":"a","type":"b"}`},
		{"duplicate type, same value", `{"type":"a","type":"a"}`},
		{"duplicate id", `{"type":"a","id":"1","id":"2"}`},
		{"duplicate payload", `{"type":"a","payload":1,"payload":2}`},
		{"duplicate after", `{"type":"a","after":1,"after":2}`},
		{"duplicate null", `{"type":"a","id":null,"id":"m1"}`},
		{"duplicate unknown", `{"type":"a","x":1,"x":2}`},
		{"duplicate escaped", `{"type":"a","\u0074ype":"b"}`},
		{"duplicate inside payload", `{"type":"a","payload":{"k":1,"k":2}}`},

		// type.
		{"no type", `{}`},
		{"no type, with id", `{"id":"m1","payload":{"type":"a"}}`},
		{"type null", `{"type":null}`},
		{"type number", `{"type":1}`},
		{"type true", `{"type":true}`},
		{"type object", `{"type":{"name":"a"}}`},
		{"type array", `{"type":["a"]}`},

		// id and trace context.
		{"id number", `{"type":"a","id":1}`},
		{"id true", `{"type":"a","id":true}`},
		{"id object", `{"type":"a","id":{}}`},
		{"id array", `{"type":"a","id":["m1"]}`},
		{"traceparent number", `{"type":"a","traceparent":1}`},
		{"tracestate object", `{"type":"a","tracestate":{}}`},

		// after: a plain non-negative integer.
		{"after negative", `{"type":"a","after":-1}`},
		{"after negative zero", `{"type":"a","after":-0}`},
		{"after fractional", `{"type":"a","after":1.5}`},
		{"after with fraction zero", `{"type":"a","after":1.0}`},
		{"after exponent", `{"type":"a","after":1e2}`},
		{"after too large", `{"type":"a","after":18446744073709551616}`},
		{"after string", `{"type":"a","after":"1"}`},
		{"after empty string", `{"type":"a","after":""}`},
		{"after true", `{"type":"a","after":true}`},
		{"after false", `{"type":"a","after":false}`},
		{"after object", `{"type":"a","after":{}}`},
		{"after array", `{"type":"a","after":[1]}`},

		// Invalid UTF-8, anywhere.
		{"invalid UTF-8 in type", "{\"type\":\"a\xff\"}"},
		{"invalid UTF-8 in id", "{\"type\":\"a\",\"id\":\"\xc3\x28\"}"},
		{"invalid UTF-8 in key", "{\"\xff\":1,\"type\":\"a\"}"},
		{"invalid UTF-8 in payload", "{\"type\":\"a\",\"payload\":\"\xe9\"}"},
		{"invalid UTF-8 in unknown field", "{\"type\":\"a\",\"x\":[\"\xed\xa0\x80\"]}"},
		{"overlong encoding", "{\"type\":\"\xc0\xaf\"}"},
		{"lone surrogate escape", `{"type":"\ud800"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := protocol.DecodeClientFrame([]byte(tc.in))
			if err == nil {
				t.Fatalf("DecodeClientFrame(%.80q) = %+v, want an error", tc.in, frameOf(f))
			}
			checkBadRequest(t, err)
		})
	}
}

// checkBadRequest fails unless err is a *protocol.Error with code
// bad_request and a message.
func checkBadRequest(t *testing.T, err error) {
	t.Helper()
	var e *protocol.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *protocol.Error", err, err)
	}
	if e.Code != protocol.CodeBadRequest || e.Message == "" {
		t.Fatalf("error %+v, want code bad_request with a message", e)
	}
	if !errors.Is(err, &protocol.Error{Code: protocol.CodeBadRequest}) {
		t.Fatalf("errors.Is(%v, bad_request) is false", err)
	}
}

// TestFrameDecoderReuse decodes frames, good and bad, one after another with
// one decoder: no state leaks from one frame to the next.
func TestFrameDecoderReuse(t *testing.T) {
	frames := []struct {
		in   string
		want *frame // nil: an error
	}{
		{`{"type":"a","id":"m1","payload":[1],"after":3,"traceparent":"t","tracestate":"s"}`,
			&frame{Type: "a", ID: "m1", HasID: true, Payload: "[1]", After: 3, HasAfter: true, Traceparent: "t", Tracestate: "s"}},
		{`{"type":"b"}`, &frame{Type: "b"}},
		{`{"type":"c","payload":{`, nil},
		{`{"type":"d","payload":"x"}`, &frame{Type: "d", Payload: `"x"`}},
		{`[1,2`, nil},
		{`{"type":"e","id":"m2"} {"type":"f"}`, nil},
		{`{"type":"g","after":"x"}`, nil},
		{`{"type":"h","id":"m3"}`, &frame{Type: "h", ID: "m3", HasID: true}},
		{`{"type":"i","type":"j"}`, nil},
		{`{"type":"k"}`, &frame{Type: "k"}},
	}
	var fd protocol.FrameDecoder
	for round := range 3 {
		for _, tc := range frames {
			f, err := fd.Decode([]byte(tc.in))
			switch {
			case tc.want == nil && err == nil:
				t.Fatalf("round %d: Decode(%s) = %+v, want an error", round, tc.in, frameOf(f))
			case tc.want == nil:
				checkBadRequest(t, err)
			case err != nil:
				t.Fatalf("round %d: Decode(%s): %v", round, tc.in, err)
			case frameOf(f) != *tc.want:
				t.Fatalf("round %d: Decode(%s)\n got %+v\nwant %+v", round, tc.in, frameOf(f), *tc.want)
			}
		}
	}
}

func TestDecodePayloadAliasesInput(t *testing.T) {
	b := []byte(`{"type":"a","payload":{"x":1}}`)
	f, err := protocol.DecodeClientFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	start := bytes.Index(b, []byte(`{"x":1}`))
	if unsafe.SliceData(f.Payload) != &b[start] {
		t.Fatal("the payload does not alias the decoded buffer")
	}
}

func TestPayloadOrNull(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"type":"a"}`, "null"},
		{`{"type":"a","payload":null}`, "null"},
		{`{"type":"a","payload":{"x":1}}`, `{"x":1}`},
		{`{"type":"a","payload":0}`, `0`},
	} {
		f, err := protocol.DecodeClientFrame([]byte(tc.in))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(f.PayloadOrNull()); got != tc.want {
			t.Errorf("%s: PayloadOrNull() = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestAppendServerFrame(t *testing.T) {
	const trace = "0af7651916cd43dd8448eb211c80319c"
	for _, tc := range []struct {
		name, typ, id string
		seq           uint64
		payload       []byte
		trace         string
		want          string
	}{
		{"ping", protocol.TypePing, "", 0, nil, "", `{"type":"sys/ping"}`},
		{"event", "demo/count:progress", "m1", 1, []byte(`{"i":1}`), "", `{"type":"demo/count:progress","id":"m1","seq":1,"payload":{"i":1}}`},
		{"every field", "orchestrator/query:response", "m1", 7, []byte(`[1,"x"]`), trace,
			`{"type":"orchestrator/query:response","id":"m1","seq":7,"payload":[1,"x"],"trace":"` + trace + `"}`},
		{"finish without payload", "demo/count:finish", "m1", 5, nil, "", `{"type":"demo/count:finish","id":"m1","seq":5}`},
		{"empty payload is left out", "demo/count:finish", "m1", 5, []byte{}, "", `{"type":"demo/count:finish","id":"m1","seq":5}`},
		{"null payload is kept", "demo/echo:response", "m1", 1, []byte(`null`), "", `{"type":"demo/echo:response","id":"m1","seq":1,"payload":null}`},
		{"push", "demo/notice", "", 0, []byte(`{"x":1}`), "", `{"type":"demo/notice","payload":{"x":1}}`},
		{"sys/error with id", protocol.TypeError, "m1", 0, []byte(`{"code":"bad_request","message":"m"}`), "",
			`{"type":"sys/error","id":"m1","payload":{"code":"bad_request","message":"m"}}`},
		{"trace only", "a", "", 0, nil, trace, `{"type":"a","trace":"` + trace + `"}`},
		{"max seq", "a:b", "m", math.MaxUint64, nil, "", `{"type":"a:b","id":"m","seq":18446744073709551615}`},
		{"payload kept byte for byte", "a", "", 0, []byte(`{ "a" : "é" }`), "", `{"type":"a","payload":{ "a" : "é" }}`},
		{"empty type", "", "", 0, nil, "", `{"type":""}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := protocol.AppendServerFrame(nil, tc.typ, tc.id, tc.seq, tc.payload, tc.trace)
			if string(got) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			checkServerFrame(t, got, tc.typ, tc.id, tc.seq, tc.payload, tc.trace)
		})
	}
}

// checkServerFrame fails unless b is one valid JSON object that encoding/json
// reads back as the frame's fields, with the empty ones left out.
func checkServerFrame(t *testing.T, b []byte, typ, id string, seq uint64, payload []byte, trace string) {
	t.Helper()
	if !json.Valid(b) {
		t.Fatalf("server frame %q is not valid JSON", b)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatalf("server frame %q: %v", b, err)
	}
	for key, present := range map[string]bool{"type": true, "id": id != "", "seq": seq != 0, "payload": len(payload) > 0, "trace": trace != ""} {
		if _, ok := fields[key]; ok != present {
			t.Fatalf("server frame %s: field %q present=%v, want %v", b, key, ok, present)
		}
	}
	if len(fields) > 5 {
		t.Fatalf("server frame %s has unknown fields", b)
	}
	var m protocol.Message
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("server frame %q: %v", b, err)
	}
	if m.Type != jsonString(typ) || m.ID != jsonString(id) || m.Seq != seq || !bytes.Equal(m.Payload, payload) || m.Trace != jsonString(trace) {
		t.Fatalf("server frame %s reads back as %+v", b, m)
	}
}

// jsonString returns s as encoding/json carries it: invalid UTF-8 becomes
// U+FFFD.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

func TestAppendServerFrameEscapes(t *testing.T) {
	for _, s := range []string{
		`quote"`,
		`back\slash`,
		"new\nline",
		"tab\t",
		"nul\x00",
		"bell\x07 and \x1f",
		"del\x7f",
		"<script>&</script>",
		"dé/mo",
		"😀",
		"line\u2028sep\u2029",
		"invalid \xff UTF-8 \xc3\x28",
		"",
	} {
		b := protocol.AppendServerFrame(nil, s, s, 1, []byte(`{}`), s)
		checkServerFrame(t, b, s, s, 1, []byte(`{}`), s)
		if s != "" && bytes.ContainsAny(b, "\x00\n\t\x07") {
			t.Errorf("frame %q holds a raw control character", b)
		}
	}
}

func TestAppendServerFrameAppends(t *testing.T) {
	dst := []byte("prefix:")
	got := protocol.AppendServerFrame(dst, "a", "m1", 2, []byte(`1`), "")
	if string(got) != `prefix:{"type":"a","id":"m1","seq":2,"payload":1}` {
		t.Fatalf("got %s", got)
	}
	buf := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(100, func() {
		buf = protocol.AppendServerFrame(buf[:0], "orchestrator/query:progress", "550e8400-e29b-41d4-a716-446655440000", 12, []byte(`{"i":1}`), "0af7651916cd43dd8448eb211c80319c")
	})
	if allocs != 0 {
		t.Fatalf("AppendServerFrame into a large enough buffer: %v allocations, want 0", allocs)
	}
}

// TestServerFrameRoundTrip: what a gateway encodes, a client decodes into
// the same Message.
func TestServerFrameRoundTrip(t *testing.T) {
	for _, want := range []protocol.Message{
		{Type: "sys/ping"},
		{Type: "demo/count:progress", ID: "m1", Seq: 1, Payload: json.RawMessage(`{"i":1}`)},
		{Type: "demo/count:finish", ID: "m1", Seq: 5},
		{Type: "demo/notice", Payload: json.RawMessage(`"hi"`), Trace: "0af7651916cd43dd8448eb211c80319c"},
	} {
		b := protocol.AppendServerFrame(nil, want.Type, want.ID, want.Seq, want.Payload, want.Trace)
		var got protocol.Message
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got.Type != want.Type || got.ID != want.ID || got.Seq != want.Seq || !bytes.Equal(got.Payload, want.Payload) || got.Trace != want.Trace {
			t.Fatalf("%s: got %+v, want %+v", b, got, want)
		}
		// encoding/json agrees on the encoding, up to field spelling.
		std, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, std) {
			t.Fatalf("AppendServerFrame %s, encoding/json %s", b, std)
		}
	}
}

func TestMessageSuffix(t *testing.T) {
	for _, tc := range []struct{ typ, suffix string }{
		{"demo/count:progress", "progress"},
		{"orchestrator/query:finish", "finish"},
		{"a:b:c", "c"},
		{"a:", ""},
		{"sys/ping", ""},
		{"demo/notice", ""},
		{"", ""},
	} {
		m := protocol.Message{Type: tc.typ}
		if got := m.Suffix(); got != tc.suffix {
			t.Errorf("Message{Type: %q}.Suffix() = %q, want %q", tc.typ, got, tc.suffix)
		}
	}
}

func TestMessageDecode(t *testing.T) {
	m := protocol.Message{Type: "demo/count:progress", Payload: json.RawMessage(`{"i":3}`)}
	var p struct{ I int }
	if err := m.Decode(&p); err != nil || p.I != 3 {
		t.Fatalf("Decode: %+v, %v", p, err)
	}

	// No payload decodes as null: v is left as it is.
	empty := protocol.Message{Type: "demo/count:finish"}
	p.I = 7
	if err := empty.Decode(&p); err != nil || p.I != 7 {
		t.Fatalf("Decode of no payload into a struct: %+v, %v", p, err)
	}
	var v any = "untouched"
	if err := empty.Decode(&v); err != nil || v != nil {
		t.Fatalf("Decode of no payload into any: %v, %v", v, err)
	}
	var ptr *int
	if err := empty.Decode(&ptr); err != nil || ptr != nil {
		t.Fatalf("Decode of no payload into a pointer: %v, %v", ptr, err)
	}

	var w protocol.Welcome
	welcome := protocol.Message{Type: protocol.TypeWelcome, Payload: json.RawMessage(
		`{"sessionId":"S","resumeToken":"R","resumed":true,"gateway":"g1","pingIntervalMs":25000,"limits":{"maxFrameBytes":1048576,"maxInFlight":64}}`)}
	if err := welcome.Decode(&w); err != nil {
		t.Fatal(err)
	}
	if w != (protocol.Welcome{SessionID: "S", ResumeToken: "R", Resumed: true, Gateway: "g1", PingIntervalMs: 25000,
		Limits: protocol.Limits{MaxFrameBytes: 1 << 20, MaxInFlight: 64}}) {
		t.Fatalf("welcome %+v", w)
	}

	// Errors.
	if err := (&protocol.Message{Payload: json.RawMessage(`{"i":"x"}`)}).Decode(&p); err == nil {
		t.Fatal("Decode of a mistyped payload: no error")
	}
	if err := (&protocol.Message{Payload: json.RawMessage(`{`)}).Decode(&v); err == nil {
		t.Fatal("Decode of invalid JSON: no error")
	}
}

// TestControlPayloads checks the JSON spelling of the sys/hello and
// sys/welcome payloads against the contract.
func TestControlPayloads(t *testing.T) {
	b, err := json.Marshal(protocol.Welcome{})
	if err != nil {
		t.Fatal(err)
	}
	const wantWelcome = `{"sessionId":"","resumeToken":"","resumed":false,"gateway":"","pingIntervalMs":0,"limits":{"maxFrameBytes":0,"maxInFlight":0}}`
	if string(b) != wantWelcome {
		t.Fatalf("welcome %s, want %s (resumed is always present)", b, wantWelcome)
	}

	var h protocol.Hello
	if err := json.Unmarshal([]byte(`{"token":"t","resume":{"sessionId":"S","resumeToken":"R"},"client":"c"}`), &h); err != nil {
		t.Fatal(err)
	}
	if h.Token != "t" || h.Client != "c" || h.Resume == nil || *h.Resume != (protocol.Resume{SessionID: "S", ResumeToken: "R"}) {
		t.Fatalf("hello %+v", h)
	}
	if b, _ := json.Marshal(protocol.Hello{}); string(b) != `{}` {
		t.Fatalf("empty hello %s, want {}", b)
	}
}

func TestConstants(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{protocol.Subprotocol, "fabric.v1"},
		{protocol.TypeHello, "sys/hello"},
		{protocol.TypeWelcome, "sys/welcome"},
		{protocol.TypePing, "sys/ping"},
		{protocol.TypePong, "sys/pong"},
		{protocol.TypeCancel, "sys/cancel"},
		{protocol.TypeError, "sys/error"},
		{protocol.SuffixProgress, "progress"},
		{protocol.SuffixResponse, "response"},
		{protocol.SuffixError, "error"},
		{protocol.SuffixFinish, "finish"},
	} {
		if tc.got != tc.want {
			t.Errorf("constant %q, want %q", tc.got, tc.want)
		}
	}
}

func TestRoute(t *testing.T) {
	type params struct{ N int }
	type result struct{ N int }
	r := protocol.NewRoute[params, result]("demo/count")
	if r.Type() != "demo/count" {
		t.Fatalf("Type() = %q", r.Type())
	}
	type progress struct{ I int }
	info := r.WithEvents(protocol.Event[progress]("progress")).Info()
	if info.Type != "demo/count" || info.Params != reflect.TypeFor[params]() || len(info.Events) != 2 ||
		info.Events[0] != (protocol.EventDecl{Suffix: "progress", Type: reflect.TypeFor[progress]()}) ||
		info.Events[1] != (protocol.EventDecl{Suffix: "response", Type: reflect.TypeFor[result]()}) {
		t.Fatalf("Info() = %+v", info)
	}
	if len(r.Info().Events) != 1 {
		t.Fatal("WithEvents changed the route it was called on")
	}
}

func BenchmarkDecodeClientFrame(b *testing.B) {
	for _, bc := range []struct{ name, frame string }{
		{"ping", `{"type":"sys/ping"}`},
		{"request", `{"type":"orchestrator/query","id":"550e8400-e29b-41d4-a716-446655440000","payload":{"query":"what is the weather in Paris","options":{"limit":10,"stream":true}}}`},
		{"resume", `{"type":"orchestrator/query","id":"m1","payload":{"q":"x"},"after":17,"traceparent":"` + traceparent + `","tracestate":"k=v"}`},
		{"large payload", `{"type":"demo/echo","id":"m1","payload":{"data":"` + strings.Repeat("x", 64<<10) + `"}}`},
	} {
		in := []byte(bc.frame)
		b.Run(bc.name, func(b *testing.B) {
			b.Run("DecodeClientFrame", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(in)))
				for b.Loop() {
					if _, err := protocol.DecodeClientFrame(in); err != nil {
						b.Fatal(err)
					}
				}
			})
			// A connection reuses one FrameDecoder: the gateway's hot path.
			b.Run("FrameDecoder", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(in)))
				var fd protocol.FrameDecoder
				for b.Loop() {
					if _, err := fd.Decode(in); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func BenchmarkAppendServerFrame(b *testing.B) {
	payload := []byte(`{"i":1,"text":"a progress update of moderate length"}`)
	for _, bc := range []struct{ name, typ, id string }{
		{"event", "orchestrator/query:progress", "550e8400-e29b-41d4-a716-446655440000"},
		{"escaped", "orchestrator/query:progress", "needs \"escaping\" <here>"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 256)
			for i := uint64(1); b.Loop(); i++ {
				buf = protocol.AppendServerFrame(buf[:0], bc.typ, bc.id, i, payload, "0af7651916cd43dd8448eb211c80319c")
			}
			b.SetBytes(int64(len(buf)))
		})
	}
	b.Run("new buffer", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = protocol.AppendServerFrame(nil, "orchestrator/query:progress", "m1", 1, payload, "")
		}
	})
}

func TestAppendEventFrameMatchesServerFrame(t *testing.T) {
	for _, tc := range []struct{ typeName, suffix, id string }{
		{"demo/count", "progress", "m1"},
		{"a", "finish", ""},
		{"odd\"name", "x<y", "id"},
	} {
		want := protocol.AppendServerFrame(nil, tc.typeName+":"+tc.suffix, tc.id, 7, []byte(`{"i":1}`), "")
		got := protocol.AppendEventFrame(nil, tc.typeName, tc.suffix, tc.id, 7, []byte(`{"i":1}`), "")
		if string(got) != string(want) {
			t.Errorf("AppendEventFrame = %s, want %s", got, want)
		}
	}
}
