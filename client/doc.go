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
// # Tokens
//
// [Options.Token] goes in sys/hello (an Authorization header in
// [Options.Header] works too); [Client.User] is the user the gateway
// authenticated. When the welcome says the token expires (expiresInMs), the
// client must send a new one before then, or the gateway closes the
// connection with 4504 once its grace period (refreshGraceMs) is over:
//
//	c, err := client.Dial(ctx, url, client.Options{
//		TokenFunc: func(ctx context.Context) (string, error) { return idp.Token(ctx) },
//	})
//
// [Options.TokenFunc] is called before every connect and for every refresh.
// With it the client refreshes on its own (sys/refresh) at
// expiresIn − min(60s, expiresIn/5) and retries a refused refresh with
// backoff until the grace period ends; after a 4502 or 4504 close it
// reconnects with a new token, and gives up after 3 such closes in a row.
// Without it, [Client.RefreshToken] hands the gateway a new token, and a 4502
// or 4504 close ends the client. A failed first connect (4502, say) makes
// [Dial] fail with an error wrapping the *websocket.CloseError.
//
// A Client is safe for concurrent use. It runs one reader goroutine per
// connection (and its token refresher, with a TokenFunc), plus the reconnect
// loop while reconnecting; [Client.Close] stops them all.
package client
