// Package workers is Fabric's worker SDK: it serves routes over NATS, so that
// the gateways' requests run on horizontally scaled worker processes.
//
// Declare a route once (protocol.NewRoute), register a typed handler with
// [Handle], and [Worker.Start]:
//
//	w, _ := workers.New(nc, workers.Config{})
//	workers.Handle(w, chat.Ask, func(ctx context.Context, p chat.AskParams, s *workers.Stream) (chat.Answer, error) {
//		s.Progress(map[string]any{"thinking": true})
//		return chat.Answer{Text: "42"}, nil
//	})
//	w.Start()
//	defer w.Shutdown(ctx)
//
// Each route is one NATS queue subscription on "<prefix>.req.<type tokens>"
// in the queue group "<prefix>", so a request runs on exactly one worker of
// any language. Each request runs its handler in its own goroutine, at most
// Config.MaxConcurrent at a time. The handler's ctx is cancelled when the
// client cancels, when the gateway times the request out, and at shutdown.
// Events are numbered (Fabric-Seq) and the ":finish" is sent when the handler
// returns, whatever it returns; a panic is recovered into ":error{internal}".
//
// A [Stream] may be used from several goroutines; its events keep the order
// of the calls. [Worker.Shutdown] stops taking work, lets the handlers in
// flight finish within its ctx, then cancels them; it is idempotent.
//
// [WithMetrics] registers Prometheus metrics (fabric_worker_*): handlers in
// flight, requests by route and outcome, their duration, events, and the
// durable event store's republishes and give-ups. See docs/metrics.md.
package workers
