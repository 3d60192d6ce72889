// Package protocol is Fabric's v1 wire contract between clients and gateways:
// frame shapes and their encoding, the control frame types (sys/…), the
// catalogue of error codes and WebSocket close codes, the typed wire [Error],
// and [Route], the declaration of a route that workers and clients share.
//
// It is a leaf package: gateway, workers and clients import it, it imports
// nothing of Fabric's. Name rules live in package subjects.
//
// Decoding a client frame ([DecodeClientFrame]) reads JSON tokens without
// reflection and keeps the payload as raw bytes; encoding a server frame
// ([AppendServerFrame]) appends to a caller's buffer. Both are safe for
// concurrent use on distinct buffers.
package protocol
