package wsframe_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/seed82ac63c1/fabric/internal/wsframe"
)

var key = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// clientFrame is a masked client frame: b0 is FIN, RSV and opcode.
func clientFrame(b0 byte, payload []byte) []byte {
	n := len(payload)
	var b []byte
	switch {
	case n < 126:
		b = []byte{b0, 0x80 | byte(n)}
	case n <= 0xFFFF:
		b = binary.BigEndian.AppendUint16([]byte{b0, 0x80 | 126}, uint16(n))
	default:
		b = binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, uint64(n))
	}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

type result struct {
	op   wsframe.Opcode
	data string // the message, or the control frame's payload
}

// readAll calls Next until it fails and returns what it read and the error.
func readAll(t *testing.T, rd *wsframe.Reader, in []byte) ([]result, error) {
	t.Helper()
	r := bytes.NewReader(in)
	var got []result
	var msg bytes.Buffer
	for {
		op, ctrl, err := rd.Next(r, &msg)
		if err != nil {
			return got, err
		}
		if op.IsControl() {
			got = append(got, result{op, string(ctrl)})
			continue
		}
		got = append(got, result{op, msg.String()})
		msg.Reset()
	}
}

func TestReaderFrames(t *testing.T) {
	long := strings.Repeat("abcdefghijk", 7000) // 77,000 bytes: a 64-bit length, several read chunks
	const fin = 0x80
	cases := []struct {
		name  string
		in    []byte
		limit int64
		want  []result
		err   error // nil: io.EOF after want
	}{
		{"text", clientFrame(fin|1, []byte("hello")), 0, []result{{wsframe.OpText, "hello"}}, nil},
		{"empty text", clientFrame(fin|1, nil), 0, []result{{wsframe.OpText, ""}}, nil},
		{"binary", clientFrame(fin|2, []byte{0, 1, 2}), 0, []result{{wsframe.OpBinary, "\x00\x01\x02"}}, nil},
		{"16-bit length", clientFrame(fin|1, []byte(long[:300])), 0, []result{{wsframe.OpText, long[:300]}}, nil},
		{"64-bit length", clientFrame(fin|1, []byte(long)), 0, []result{{wsframe.OpText, long}}, nil},
		{"fragments with a ping between", bytes.Join([][]byte{
			clientFrame(1, []byte("hel")), clientFrame(fin|9, []byte("p")), clientFrame(0, []byte("lo ")), clientFrame(fin, []byte("world")),
		}, nil), 0, []result{{wsframe.OpPing, "p"}, {wsframe.OpText, "hello world"}}, nil},
		{"close", clientFrame(fin|8, []byte{0x03, 0xe8, 'b', 'y', 'e'}), 0, []result{{wsframe.OpClose, "\x03\xe8bye"}}, nil},
		{"pong", clientFrame(fin|0xA, nil), 0, []result{{wsframe.OpPong, ""}}, nil},
		{"at the limit", clientFrame(fin|1, []byte("12345")), 5, []result{{wsframe.OpText, "12345"}}, nil},
		{"over the limit", clientFrame(fin|1, []byte("123456")), 5, nil, wsframe.ErrTooLarge},
		{"fragments over the limit", append(clientFrame(1, []byte("123")), clientFrame(fin, []byte("456"))...), 5, nil, wsframe.ErrTooLarge},
		{"unmasked", []byte{fin | 1, 1, 'x'}, 0, nil, &wsframe.ProtocolError{}},
		{"RSV1", clientFrame(fin|0x40|1, []byte("x")), 0, nil, &wsframe.ProtocolError{}},
		{"reserved opcode", clientFrame(fin|3, nil), 0, nil, &wsframe.ProtocolError{}},
		{"reserved control opcode", clientFrame(fin|0xB, nil), 0, nil, &wsframe.ProtocolError{}},
		{"fragmented ping", clientFrame(9, nil), 0, nil, &wsframe.ProtocolError{}},
		{"ping over 125 bytes", clientFrame(fin|9, make([]byte, 126)), 0, nil, &wsframe.ProtocolError{}},
		{"lone continuation", clientFrame(fin, []byte("x")), 0, nil, &wsframe.ProtocolError{}},
		{"text inside a message", append(clientFrame(1, []byte("a")), clientFrame(fin|1, []byte("b"))...), 0, nil, &wsframe.ProtocolError{}},
		{"length with its top bit set", append([]byte{fin | 1, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0}, key[:]...), 0, nil, &wsframe.ProtocolError{}},
		{"cut inside the header", []byte{fin | 1, 0x80 | 126, 0}, 0, nil, io.ErrUnexpectedEOF},
		{"cut inside the payload", clientFrame(fin|1, []byte("hello"))[:8], 0, nil, io.ErrUnexpectedEOF},
		{"cut inside a control payload", clientFrame(fin|9, []byte("hello"))[:8], 0, nil, io.ErrUnexpectedEOF},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rd := wsframe.Reader{Limit: tc.limit}
			got, err := readAll(t, &rd, tc.in)
			want := tc.err
			if want == nil {
				want = io.EOF
			}
			var pe *wsframe.ProtocolError
			if _, isPE := want.(*wsframe.ProtocolError); isPE {
				if !errors.As(err, &pe) {
					t.Errorf("err %v, want a protocol error", err)
				}
			} else if !errors.Is(err, want) {
				t.Errorf("err %v, want %v", err, want)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d results %q, want %q", len(got), got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("result %d: %v %q, want %v %q", i, got[i].op, got[i].data, tc.want[i].op, tc.want[i].data)
				}
			}
		})
	}
}

// TestReaderGorillaClient reads, after a gorilla handshake, what a real
// WebSocket client library writes: with a small write buffer it fragments
// long messages, and a ping goes between two of them.
func TestReaderGorillaClient(t *testing.T) {
	type read struct {
		res []result
		err error
	}
	done := make(chan read, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			done <- read{err: err}
			return
		}
		nc := ws.NetConn()
		defer nc.Close()
		var res []result
		var msg bytes.Buffer
		rd := wsframe.Reader{Limit: 1 << 20}
		for {
			op, ctrl, err := rd.Next(nc, &msg)
			switch {
			case err != nil:
				done <- read{res, err}
				return
			case op == wsframe.OpClose:
				res = append(res, result{op, string(ctrl)})
				done <- read{res, nil}
				return
			case op.IsControl():
				res = append(res, result{op, string(ctrl)})
			default:
				res = append(res, result{op, msg.String()})
				msg.Reset()
			}
		}
	}))
	defer srv.Close()
	d := websocket.Dialer{WriteBufferSize: 256}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	long := strings.Repeat("0123456789", 7000)
	want := []result{
		{wsframe.OpText, "short"},
		{wsframe.OpText, long},
		{wsframe.OpPing, "are you there"},
		{wsframe.OpBinary, long[:1000]},
		{wsframe.OpText, ""},
		{wsframe.OpClose, "\x03\xe8done"},
	}
	for _, m := range want {
		switch m.op {
		case wsframe.OpPing:
			err = ws.WriteControl(websocket.PingMessage, []byte(m.data), time.Now().Add(5*time.Second))
		case wsframe.OpClose:
			err = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "done"), time.Now().Add(5*time.Second))
		default:
			err = ws.WriteMessage(int(m.op), []byte(m.data))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	got := <-done
	if got.err != nil {
		t.Fatalf("server: %v", got.err)
	}
	if len(got.res) != len(want) {
		t.Fatalf("got %d results, want %d", len(got.res), len(want))
	}
	for i := range want {
		if got.res[i] != want[i] {
			t.Errorf("result %d: %v of %d bytes, want %v of %d", i, got.res[i].op, len(got.res[i].data), want[i].op, len(want[i].data))
		}
	}
}

func TestClosePayload(t *testing.T) {
	cases := []struct {
		payload []byte
		code    int
		reason  string
		ok      bool
	}{
		{nil, wsframe.CloseNoStatusReceived, "", true},
		{wsframe.ClosePayload(1000, "bye"), 1000, "bye", true},
		{wsframe.ClosePayload(4500, "app"), 4500, "app", true},
		{wsframe.ClosePayload(1014, ""), 1014, "", true},
		{[]byte{3}, 0, "", false},
		{wsframe.ClosePayload(1005, "x"), wsframe.CloseNoStatusReceived, "", true}, // 1005 is never sent: an empty payload
		{[]byte{0x03, 0xed}, 0, "", false},                                         // 1005 received
		{[]byte{0x03, 0xee}, 0, "", false},                                         // 1006
		{[]byte{0x03, 0xf7}, 0, "", false},                                         // 1015
		{[]byte{0x0b, 0xb7}, 0, "", false},                                         // 2999
		{[]byte{0x13, 0x88}, 0, "", false},                                         // 5000
		{[]byte{0x03, 0xe8, 0xff}, 0, "", false},                                   // reason not UTF-8
	}
	for _, tc := range cases {
		code, reason, err := wsframe.ParseClose(tc.payload)
		if (err == nil) != tc.ok || code != tc.code || reason != tc.reason {
			t.Errorf("ParseClose(% x) = %d %q %v; want %d %q ok=%v", tc.payload, code, reason, err, tc.code, tc.reason, tc.ok)
		}
	}
	long := strings.Repeat("é", 100) // 200 bytes: cut to 122, at a rune boundary
	p := wsframe.ClosePayload(1000, long)
	if len(p) > wsframe.MaxControlPayload || !utf8.Valid(p[2:]) {
		t.Errorf("a long reason gives %d bytes, UTF-8 %v", len(p), utf8.Valid(p[2:]))
	}
}

func TestAppendHeader(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536, 1 << 20} {
		h := wsframe.AppendHeader(nil, wsframe.OpText, n)
		if len(h) != wsframe.HeaderLen(n) {
			t.Errorf("%d bytes: header of %d, HeaderLen %d", n, len(h), wsframe.HeaderLen(n))
		}
		// A gorilla client reads the frame.
		frame := append(h, make([]byte, n)...)
		op, p, err := readServerFrame(frame)
		if err != nil || op != websocket.TextMessage || len(p) != n {
			t.Errorf("%d bytes: gorilla read opcode %d, %d bytes, %v", n, op, len(p), err)
		}
	}
}

// readServerFrame has a gorilla client read one frame that a server
// writes on the raw socket after a gorilla handshake.
func readServerFrame(frame []byte) (int, []byte, error) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		_, _ = ws.NetConn().Write(frame)
	}))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		return 0, nil, err
	}
	defer ws.Close()
	ws.SetReadLimit(2 << 20)
	return ws.ReadMessage()
}

// FuzzReader feeds arbitrary bytes to a Reader: it never panics, never
// returns a message over its limit, and a control frame's payload is never
// over 125 bytes.
func FuzzReader(f *testing.F) {
	f.Add(clientFrame(0x81, []byte("hello")))
	f.Add(append(clientFrame(0x01, []byte("hel")), clientFrame(0x80, []byte("lo"))...))
	f.Add(clientFrame(0x89, []byte("ping")))
	f.Add(clientFrame(0x88, []byte{0x03, 0xe8}))
	f.Add([]byte{0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0x10, 0, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, in []byte) {
		rd := wsframe.Reader{Limit: 1024}
		r := bytes.NewReader(in)
		var msg bytes.Buffer
		for {
			op, ctrl, err := rd.Next(r, &msg)
			if err != nil {
				return
			}
			if op.IsControl() {
				if len(ctrl) > wsframe.MaxControlPayload {
					t.Fatalf("control payload of %d bytes", len(ctrl))
				}
				if op == wsframe.OpClose {
					_, _, _ = wsframe.ParseClose(ctrl)
				}
				continue
			}
			if op != wsframe.OpText && op != wsframe.OpBinary {
				t.Fatalf("data message with opcode %d", op)
			}
			if msg.Len() > 1024 {
				t.Fatalf("message of %d bytes over the 1024 limit", msg.Len())
			}
			msg.Reset()
		}
	})
}

// BenchmarkReaderNext reads a typical request frame: 2-byte header, mask,
// a 100-byte JSON payload.
func BenchmarkReaderNext(b *testing.B) {
	benchmarkReader(b, []byte(`{"type":"orchestrator/query","id":"m-000001","payload":{"q":"what is the weather like in Paris today?"}}`))
}

// BenchmarkReaderNextLarge reads a 64 KiB text frame: unmasking dominates.
func BenchmarkReaderNextLarge(b *testing.B) {
	benchmarkReader(b, bytes.Repeat([]byte("x"), 64<<10))
}

func benchmarkReader(b *testing.B, payload []byte) {
	frame := clientFrame(0x81, payload)
	r := bytes.NewReader(frame)
	var rd wsframe.Reader
	var msg bytes.Buffer
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(frame)
		msg.Reset()
		if _, _, err := rd.Next(r, &msg); err != nil {
			b.Fatal(err)
		}
	}
}
