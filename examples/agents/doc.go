// Package agents is a complete user-side example of Fabric: the way a
// product team starts its own agents. It holds the handler logic of a small
// research agent; the other pieces sit next to it:
//
//	routes/   the route declarations, imported by both sides
//	agents.go the handlers (this package), shared by the worker and the tests
//	worker/   a worker process: connects to NATS, serves the routes, drains on SIGTERM
//	caller/   a client process: streams one request's events, then invokes the route for its typed result
//
// The research itself is a deterministic stand-in for model and tool calls,
// so that the example runs anywhere and its tests can check every event.
// Replace [Ask]'s body with your agent; keep the shape: validate the params
// into a *protocol.Error, stream progress, honour ctx, return the result.
//
// See examples/README.md to run it against `fabric dev`.
package agents
