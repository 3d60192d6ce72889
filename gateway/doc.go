// Package gateway is Fabric's WebSocket gateway: it accepts client
// connections on GET /ws, speaks the v1 wire contract (package protocol),
// publishes each request on its NATS subject (package subjects) and streams
// the workers' events back to the client.
//
// A [Gateway] is stateless beyond its live sessions: any gateway can resume a
// session that another gateway held, by checking the resume token (an HMAC
// with a secret all gateways share) and asking the holder over NATS to hand
// the session over.
//
// Where things happen:
//   - conn.go: one WebSocket connection: its reader loop, where frames are
//     parsed and dispatched, parking, and its bounded outbound queue and
//     writer. connread.go buffers the socket; poller_linux.go watches
//     parked connections.
//   - session.go: sessions, their NATS subscriptions, resume and takeover.
//   - request.go: a request's lifecycle, from publish to its one ":finish"
//     (worker finish, cancel, timeout, no responders, interruption).
//
// Concurrency: each connection has at most one reader goroutine, which owns
// the connection and tears it down; a connection idle for
// [Config.ParkAfter] has none until its client sends again. Its writer
// goroutine runs only while its queue holds frames. A session's state is guarded by its mutex; the lock
// order is registry → session → connection queue. All exported methods are
// safe for concurrent use; [Gateway.Shutdown] is idempotent.
package gateway
