// Package wsframe is the server side of WebSocket framing (RFC 6455 §5)
// after the handshake: a Reader that checks and unmasks the frames a client
// sends and reassembles its fragmented messages, and the headers of the
// unmasked frames a server sends.
//
// The gateway upgrades with gorilla/websocket and then reads and writes
// frames itself, with this package: it needs a connection that holds no
// buffer and no deep goroutine stack while its client is idle, and one
// writev for a whole batch of frames, neither of which a message-level
// WebSocket API offers.
//
// A Reader belongs to one connection and is used by one goroutine at a
// time; the append functions are pure.
package wsframe
