package wsframe

import (
	"bytes"
	"encoding/binary"
	"io"
)

// readChunk bounds how much of a message buffer grows ahead of the bytes
// that have arrived: a frame that declares a large length and then trickles
// in holds what it has sent, not what it declared.
const readChunk = 32 << 10

// Reader reads the frames a client sends: it checks each header, unmasks
// each payload, answers nothing, and reassembles fragmented messages. Its
// zero value has no message size limit.
type Reader struct {
	// Limit is the largest data message, in payload bytes summed over its
	// fragments; 0 means no limit.
	Limit int64

	hdr    [14]byte // the frame header being read: kept here so that it does not escape per frame
	msgOp  Opcode   // the fragmented message in progress (OpText or OpBinary); 0 when none
	msgLen int64    // its payload bytes so far
}

// InMessage reports whether a fragmented message has begun and not ended:
// its payload so far is in the buffer last given to Next.
func (rd *Reader) InMessage() bool { return rd.msgOp != 0 }

// Next reads frames from r until it has read a whole data message or one
// control frame. A data message's payload is appended to msg and its opcode
// (OpText or OpBinary) returned. A control frame's opcode is returned with
// its payload in ctrl, a new slice; msg keeps what it has, since a control
// frame may come between a message's fragments (see InMessage), and the
// next call must be given the same buffer.
//
// Errors: a *ProtocolError for a frame that breaks RFC 6455, ErrTooLarge
// for a message over Limit, io.EOF when r ends between frames, and r's
// error (io.ErrUnexpectedEOF when it ends inside a frame). Once Next has
// returned an error, the Reader must not be used again.
func (rd *Reader) Next(r io.Reader, msg *bytes.Buffer) (op Opcode, ctrl []byte, err error) {
	for {
		op, fin, n, key, err := rd.readHeader(r)
		if err != nil {
			return 0, nil, err
		}
		if op.IsControl() {
			ctrl = make([]byte, n)
			if _, err := io.ReadFull(r, ctrl); err != nil {
				return 0, nil, unexpected(err)
			}
			maskBytes(key, 0, ctrl)
			return op, ctrl, nil
		}
		if err := rd.readPayload(r, msg, n, key); err != nil {
			return 0, nil, err
		}
		if fin {
			op, rd.msgOp, rd.msgLen = rd.msgOp, 0, 0
			return op, nil, nil
		}
	}
}

// readHeader reads and checks one frame header. For a data frame it also
// checks the frame against the message in progress and the limit, and
// starts or continues that message.
func (rd *Reader) readHeader(r io.Reader) (op Opcode, fin bool, n int64, key [4]byte, err error) {
	h := rd.hdr[:]
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return 0, false, 0, key, err // io.EOF here is a clean end between frames
	}
	b0, b1 := h[0], h[1]
	fin, op = b0&0x80 != 0, Opcode(b0&0x0F)
	if b0&0x70 != 0 {
		return 0, false, 0, key, protocolError("reserved bits set (no extension was negotiated)")
	}
	if b1&0x80 == 0 {
		return 0, false, 0, key, protocolError("client frame not masked")
	}
	n = int64(b1 & 0x7F)
	ext := 0
	switch n {
	case 126:
		ext = 2
	case 127:
		ext = 8
	}
	if _, err := io.ReadFull(r, h[2:2+ext+4]); err != nil {
		return 0, false, 0, key, unexpected(err)
	}
	switch ext {
	case 2:
		n = int64(binary.BigEndian.Uint16(h[2:]))
	case 8:
		u := binary.BigEndian.Uint64(h[2:])
		if u>>63 != 0 {
			return 0, false, 0, key, protocolError("payload length with its most significant bit set")
		}
		n = int64(u)
	}
	copy(key[:], h[2+ext:])

	switch op {
	case OpClose, OpPing, OpPong:
		switch {
		case !fin:
			return 0, false, 0, key, protocolError("fragmented control frame")
		case n > MaxControlPayload:
			return 0, false, 0, key, protocolError("control frame payload over 125 bytes")
		}
		return op, fin, n, key, nil
	case OpText, OpBinary:
		if rd.msgOp != 0 {
			return 0, false, 0, key, protocolError("new message inside a fragmented message")
		}
		rd.msgOp, rd.msgLen = op, 0
	case OpContinuation:
		if rd.msgOp == 0 {
			return 0, false, 0, key, protocolError("continuation frame with no message to continue")
		}
	default:
		return 0, false, 0, key, protocolError("reserved opcode")
	}
	if rd.Limit > 0 && n > rd.Limit-rd.msgLen {
		return 0, false, 0, key, ErrTooLarge
	}
	rd.msgLen += n
	return op, fin, n, key, nil
}

// readPayload appends n masked payload bytes from r to msg, unmasked.
func (rd *Reader) readPayload(r io.Reader, msg *bytes.Buffer, n int64, key [4]byte) error {
	for pos := 0; n > 0; {
		k := int(min(n, readChunk))
		msg.Grow(k)
		b := msg.AvailableBuffer()[:k]
		if _, err := io.ReadFull(r, b); err != nil {
			return unexpected(err)
		}
		pos = maskBytes(key, pos, b)
		msg.Write(b) // b is msg's own free space: this only extends its length
		n -= int64(k)
	}
	return nil
}

// unexpected turns an io.EOF inside a frame into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// maskBytes XORs b with key (RFC 6455 §5.3), b starting at byte pos of the
// payload, and returns the position after b. It works eight bytes at a
// time.
func maskBytes(key [4]byte, pos int, b []byte) int {
	var k [8]byte
	for i := range k {
		k[i] = key[(pos+i)&3]
	}
	w := binary.LittleEndian.Uint64(k[:])
	i := 0
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^w)
	}
	for j := 0; i < len(b); i, j = i+1, j+1 {
		b[i] ^= k[j]
	}
	return pos + len(b)
}
