// Package tail watches a fabric's NATS traffic for people debugging it:
// `fabric tail` prints what it sees, and the inspector (internal/inspector)
// keeps the recent requests with their events for a page.
//
// [Start] subscribes, read-only and across the whole cluster, to a fabric's
// requests, events, cancels and pushes, and turns each message into a
// [Record]: its time, kind, session, message id, route, event suffix and
// seq, who made it (worker or gateway), the W3C trace id, and the payload's
// size with a preview cut to a few bytes. A [Filter] narrows what is
// reported, on the server where a subject can say it (a route, a session)
// and here otherwise.
//
// A watcher never publishes and never joins the workers' queue group: its
// subscriptions are plain ones, so each request still runs once. It ignores
// the reply subject a durable worker puts on its events (the JetStream ack),
// does not subscribe to JetStream's API ($JS.…) or the gateways' takeover
// subjects, and so never answers anything. One thing it cannot avoid: a
// subscription to a request subject is interest in it, so while a watcher
// subscribes to `<prefix>.req.>`, NATS no longer answers a request for a
// route that no worker serves with no_responders, and the gateway times it
// out instead (docs/nats.md). [Config] can limit the request subjects to the
// routes that are served, or leave requests out; their events still tell of
// them.
//
// Records are delivered to one callback, from one goroutine, in the order
// this connection received the messages: on one NATS server, a request
// comes before its events. Internal to Fabric and its binary: the record is
// a debugging view, not a stable API.
package tail
