// Package client is Fabric's Go client: one WebSocket to any gateway, many
// requests in flight on it, pushes, and automatic reconnect with resume.
//
//	c, err := client.Dial(ctx, "ws://localhost:8080/ws", client.Options{})
//	msgs, err := c.Call(ctx, "demo/count", map[string]any{"n": 3})
//	for m, err := range c.Stream(ctx, "demo/count", map[string]any{"n": 3}) { … }
//	res, err := client.Invoke(ctx, c, demo.Count, demo.CountParams{N: 3})
//
// [Client.Call] is the seed's sendAsync: it returns every message of the
// request at its ":finish", and a *protocol.Error if an ":error" arrived.
// Cancelling a call's ctx sends sys/cancel.
//
// When the connection drops (other than by a normal close or a 4500–4999
// code), the client reconnects with full-jitter exponential backoff (at once
// after 1001), resumes its session and re-sends each unfinished request with
// "after", so that no seq is delivered twice. Requests made while
// disconnected wait for the connection.
//
// A Client is safe for concurrent use. It runs one reader goroutine per
// connection, plus the reconnect loop while reconnecting; [Client.Close]
// stops them all.
package client
