package workers

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/subjects"
	"github.com/seed82ac63c1/fabric/tracing"
)

// WithTracerProvider sets where the worker's spans go. The default is
// OpenTelemetry's global provider, which traces nothing until an SDK is
// installed.
//
// Each request runs under a "process <route>" span, a child of the
// gateway's span that the request's traceparent names; the handler's ctx
// carries it, so the handler's own spans, and its child requests
// ([Stream.Call]), nest under it. Each event is sent under a "send
// <route>:<suffix>" span, whose context the event carries to the gateway.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(w *Worker) { w.tracer = tp.Tracer(tracing.TracerName) }
}

func (w *Worker) tracerOrGlobal() trace.Tracer {
	if w.tracer == nil {
		w.tracer = otel.GetTracerProvider().Tracer(tracing.TracerName)
	}
	return w.tracer
}

// startProcessSpan starts req's process span, in the trace of its
// traceparent, and returns ctx carrying it.
func (w *Worker) startProcessSpan(ctx context.Context, req *Request, subject string) (context.Context, trace.Span) {
	ctx = tracing.Extract(ctx, req.Header)
	ctx, span := w.tracer.Start(ctx, "process "+req.Type, trace.WithSpanKind(trace.SpanKindConsumer))
	if span.IsRecording() {
		span.SetAttributes(
			tracing.NATS,
			tracing.MessagingOperationType.String("process"),
			tracing.MessagingOperationName.String("process"),
			tracing.MessagingDestination.String(subject),
			tracing.MessagingMessageID.String(req.ID),
			tracing.Route.String(req.Type),
			tracing.Session.String(req.Session),
			tracing.MessageID.String(req.ID),
		)
	}
	req.spanCtx = span.SpanContext()
	return ctx, span
}

// endProcessSpan ends a request's process span; e is the :error sent, if
// any.
func endProcessSpan(span trace.Span, err error, e *protocol.Error) {
	if e != nil && span.IsRecording() {
		span.SetAttributes(tracing.ErrorCode.String(string(e.Code)))
		span.SetStatus(codes.Error, string(e.Code))
		var pe *protocol.Error
		if err != nil && !errors.As(err, &pe) {
			span.RecordError(err)
		}
	}
	span.End()
}

// traceEvent writes the trace context of event seq into its header h: a
// send span's, ended by the returned func once the event is published,
// when the request is traced; else the request's own traceparent, as it
// came, if that is sampled (a client's trace through a fabric without
// tracing).
func (s *Stream) traceEvent(h nats.Header, suffix string, seq uint64) func() {
	if !s.span.IsRecording() {
		// A trace nobody samples is not carried on: the gateway links its
		// deliveries to the sender only when it records them.
		if tp := s.req.Header[subjects.HeaderTraceparent]; len(tp) > 0 && s.req.spanCtx.IsSampled() {
			h[subjects.HeaderTraceparent] = tp[:1]
			if ts := s.req.Header[subjects.HeaderTracestate]; len(ts) > 0 {
				h[subjects.HeaderTracestate] = ts[:1]
			}
		}
		return func() {}
	}
	ctx, span := s.w.tracer.Start(trace.ContextWithSpan(context.Background(), s.span), "send "+s.req.Type+":"+suffix,
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			tracing.NATS,
			tracing.MessagingOperationType.String("send"),
			tracing.MessagingOperationName.String("send"),
			tracing.Event.String(suffix),
			tracing.Seq.Int64(int64(seq)),
		))
	tracing.Inject(ctx, h)
	return func() { span.End() }
}
