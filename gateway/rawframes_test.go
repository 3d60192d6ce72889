package gateway_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/protocol"
)

// rawWS is a WebSocket client written on a bare TCP socket, so that a test
// can send frames no WebSocket library would.
type rawWS struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// rawDial makes a real handshake offering fabric.v1 and returns the socket.
func rawDial(t *testing.T, wsURL string) *rawWS {
	t.Helper()
	u, err := url.Parse(wsURL)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(fabrictest.ReadTimeout))
	req := "GET " + u.Path + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + protocol.Subprotocol + "\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s", resp.Status)
	}
	return &rawWS{t: t, nc: nc, br: br}
}

// WebSocket opcodes and header bits.
const (
	opCont, opText, opBinary, opClose, opPing = 0x0, 0x1, 0x2, 0x8, 0x9
	finBit, rsv1Bit                           = 0x80, 0x40
)

var maskKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// frameHeader encodes a client frame header (masked unless unmasked) for a
// payload of n bytes, in the shortest length encoding.
func frameHeader(b0 byte, n uint64, masked bool) []byte {
	var maskBit byte
	if masked {
		maskBit = 0x80
	}
	var h []byte
	switch {
	case n < 126:
		h = []byte{b0, maskBit | byte(n)}
	case n <= 0xffff:
		h = binary.BigEndian.AppendUint16([]byte{b0, maskBit | 126}, uint16(n))
	default:
		h = binary.BigEndian.AppendUint64([]byte{b0, maskBit | 127}, n)
	}
	if masked {
		h = append(h, maskKey[:]...)
	}
	return h
}

// frame encodes a whole masked client frame.
func frame(b0 byte, payload []byte) []byte {
	b := frameHeader(b0, uint64(len(payload)), true)
	for i, c := range payload {
		b = append(b, c^maskKey[i%4])
	}
	return b
}

func (r *rawWS) write(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// next reads one server frame (servers never mask).
func (r *rawWS) next() (opcode byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(r.br, l[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(r.br, l[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(r.br, payload)
	return h[0] & 0x0f, payload, err
}

// hello sends sys/hello and reads the welcome.
func (r *rawWS) hello() {
	r.t.Helper()
	r.write(frame(finBit|opText, []byte(`{"type":"sys/hello"}`)))
	op, p, err := r.next()
	if err != nil || op != opText || !strings.Contains(string(p), protocol.TypeWelcome) {
		r.t.Fatalf("welcome: opcode %d %q %v", op, p, err)
	}
}

// closeCode reads until the gateway's close frame and returns its code, or
// 0 when the connection ends without one. Text frames on the way are
// skipped.
func (r *rawWS) closeCode() int {
	r.t.Helper()
	for {
		op, p, err := r.next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.t.Fatal("the connection is still open")
			}
			return 0
		}
		if op == opClose {
			if len(p) < 2 {
				return 1005
			}
			return int(binary.BigEndian.Uint16(p))
		}
	}
}

// TestMalformedFrames sends frames that break RFC 6455 on a real socket
// after a real handshake and hello: each closes its connection, with the
// code the RFC names where it names one, and no panic; a bystander on the
// same gateway keeps being served.
func TestMalformedFrames(t *testing.T) {
	const maxFrame = 4096
	f := fabrictest.Start(t, gateway.Config{MaxFrameBytes: maxFrame})
	bystander, _ := fabrictest.Hello(t, f.Gateway.URL)
	echo := []byte(`{"type":"demo/echo","id":"x","payload":1}`)
	cases := []struct {
		name  string
		bytes []byte
		half  bool // then close our writing half
		want  int  // 0: dropped without a close frame
	}{
		{"unmasked frame", append(frameHeader(finBit|opText, uint64(len(echo)), false), echo...), false, int(websocket.CloseProtocolError)},
		{"ping over 125 bytes", frame(finBit|opPing, make([]byte, 126)), false, int(websocket.CloseProtocolError)},
		{"close over 125 bytes", frame(finBit|opClose, append([]byte{0x03, 0xe8}, make([]byte, 200)...)), false, int(websocket.CloseProtocolError)},
		{"fragmented ping", frame(opPing, []byte("p")), false, int(websocket.CloseProtocolError)},
		{"reserved data opcode 3", frame(finBit|0x3, echo), false, int(websocket.CloseProtocolError)},
		{"reserved control opcode 11", frame(finBit|0xb, nil), false, int(websocket.CloseProtocolError)},
		{"RSV1 without compression", frame(finBit|rsv1Bit|opText, echo), false, int(websocket.CloseProtocolError)},
		{"RSV2 and RSV3", frame(finBit|0x30|opText, echo), false, int(websocket.CloseProtocolError)},
		{"continuation with nothing to continue", frame(finBit|opCont, echo), false, int(websocket.CloseProtocolError)},
		{"new message inside a fragmented one", append(frame(opText, echo[:10]), frame(finBit|opText, echo)...), false, int(websocket.CloseProtocolError)},
		{"invalid close code", frame(finBit|opClose, []byte{0x03, 0xed}), false, int(websocket.CloseProtocolError)},
		{"close reason not UTF-8", frame(finBit|opClose, []byte{0x03, 0xe8, 0xff, 0xfe}), false, int(websocket.CloseProtocolError)},
		{"text not UTF-8", frame(finBit|opText, []byte("{\"type\":\"demo/echo\",\"id\":\"x\",\"payload\":\"\xff\xfe\"}")), false, int(protocol.CloseInvalidUTF8)},
		{"text fragments not UTF-8 together", append(frame(opText, []byte(`{"type":"demo/echo","id":"x","payload":"`+"\xc3")), frame(finBit|opCont, []byte(`"}`))...), false, int(protocol.CloseInvalidUTF8)},
		{"length over maxFrameBytes", frameHeader(finBit|opText, maxFrame+1, true), false, int(protocol.CloseTooLarge)},
		{"64-bit length of 2^62", frameHeader(finBit|opText, 1<<62, true), false, int(protocol.CloseTooLarge)},
		{"64-bit length with its top bit set", frameHeader(finBit|opText, 1<<63, true), false, int(websocket.CloseProtocolError)},
		{"fragments over maxFrameBytes together", append(frame(opText, make([]byte, 3000)), frame(finBit|opCont, make([]byte, 3000))...), false, int(protocol.CloseTooLarge)},
		{"length shorter than the frame", append(frame(finBit|opText, echo[:5]), echo[5:]...), false, int(websocket.CloseProtocolError)},
		{"length longer than what comes", append(frameHeader(finBit|opText, 1000, true), echo...), true, 0},
		{"header cut short", []byte{finBit | opText, 0x80 | 127, 0, 0}, true, 0},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rawDial(t, f.Gateway.URL)
			r.hello()
			r.write(tc.bytes)
			if tc.half {
				_ = r.nc.(*net.TCPConn).CloseWrite()
			}
			if code := r.closeCode(); code != tc.want {
				t.Errorf("close code %d, want %d", code, tc.want)
			}
			id := "by" + string(rune('a'+i))
			checkEvents(t, id, bystander.Call("demo/echo", id, i), want{"demo/echo:response", strconv.Itoa(i)}, want{"demo/echo:finish", ""})
		})
	}
}
