// Package inspector keeps a fabric's most recent requests, each with its
// timeline of events, for the request inspector page that `fabric dev`
// serves at /inspector (and `fabric gateway --inspector`).
//
// An [Inspector] runs a watcher (internal/tail) and folds its records into
// a bounded ring of [Request]s, the newest last: each has its route,
// session and id, its payload preview and trace id, every event (seq, time,
// suffix, size, trace id, who made it) and cancel, and how it ended
// ([State]: in flight, finished, error with its code, or cancelled). When
// the ring is full, the oldest request is forgotten.
//
// [Inspector.Handler] serves the JSON API, which the page (package web)
// reads under /inspector/api/:
//
//	GET /inspector/api/requests   {"requests":[…newest first], "capacity":500, "jaegerUrl":"…"}
//	                              filters: ?route=&session=&id= (exact), ?q= (part of any of them), ?errors=1
//	GET /inspector/api/stream     Server-Sent Events: one "snapshot" (the same body), then an
//	                              "update" with the whole request each time one changes
//
// Every request with a trace id links to its trace in Jaeger,
// <JaegerURL>/trace/<trace id>. The page itself is in package web.
//
// All methods are safe for concurrent use. Close ends the watcher and every
// open stream; the caller owns the NATS connection.
package inspector
