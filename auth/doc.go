// Package auth authenticates Fabric's clients and authorizes their routes.
//
// An [Authenticator] turns [Credentials] (a bearer token from sys/hello or
// an Authorization header, and the client's address) into an [Identity]: a
// user id, an expiry, claims to forward to workers, and optionally the route
// patterns and roles the credentials carry. Two implementations:
//
//   - [JWT] verifies JSON Web Tokens with keys fixed by configuration: an
//     HMAC secret, PEM public keys, or a JWK Set from a file or a URL that
//     is fetched, cached and refreshed. The accepted algorithms are fixed
//     too, so "alg":"none" and HS256 tokens signed with an RSA public key
//     fail; "exp" and "sub" are required; "nbf", "iss" and "aud" are
//     checked.
//   - [NATS] delegates to the application over NATS request/reply (a connect
//     hook), on "<prefix>.auth.connect" by default.
//
// A [Policy] maps roles to route patterns ("demo/*", "agent/**") loaded
// from a JSON or YAML file; [Policy.Allowed] combines it with the identity's
// own route restriction.
//
// Errors match [ErrUnauthorized] (bad credentials: do not retry without new
// ones; [ErrExpired] for an expired token), [ErrUnavailable] (the
// authenticator could not decide) or [ErrConfig]. No error or log line
// quotes a token.
//
// Authenticators and policies are safe for concurrent use. A JWT with a
// JWKS URL refreshes its keys in a background goroutine until [JWT.Close].
//
// The package is a library: the gateway decides when to call it, which
// close code to send, and how identities reach workers.
package auth
