// Package subjects owns Fabric's names: the rules for route typeNames, event
// suffixes, message ids and session ids, and every NATS subject built from
// them. No other package formats or parses a subject string.
//
// A [Space] is a subject namespace under one prefix (default "fabric"):
//
//	<prefix>.req.<type tokens>                 request, queue group <prefix>
//	<prefix>.evt.<session>.<id>                reply subject R
//	<prefix>.evt.<session>.<id>.<type tokens>.<suffix>   an event
//	<prefix>.cancel.<session>.<id>             cancel
//	<prefix>.push.session.<session>            push to one session
//	<prefix>.push.user.<encoded user>          push to a user's sessions
//	<prefix>.push.all                          push to every session
//	<prefix>.gw.session.<session>              gateway-to-gateway session takeover
//	<prefix>.auth.connect                      connect hook: a gateway asks the app to authenticate
//
// A watcher that sees every request of a fabric with plain subscriptions
// (`fabric tail`, the inspector) uses the wildcards [Space.EventWildcard],
// [Space.CancelWildcard] and [Space.Pushes], and parses what it receives
// with [Space.ParseRequest], [Space.ParseEventSubject], [Space.ParseCancel]
// and [Space.ParsePush].
//
// Every function is pure and safe for concurrent use. Validation is done by
// hand-written byte loops: it runs on every client frame.
package subjects
