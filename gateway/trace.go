package gateway

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/tracing"
)

// A request's spans (package tracing draws the whole tree): the request
// span, from the frame to the :finish sent; under it, the send span of
// the request's NATS message, whose context the message carries to the
// worker; and a deliver span per event sent to the client, linked to the
// worker's send span of that event. With no OpenTelemetry SDK installed
// (or the request not sampled) the request span does not record, and no
// other span is made: tracing off costs one no-op span per request.

// startSpan starts r's request span, in the trace of the frame's
// traceparent if it has a valid one, and sets r.traceID.
func (s *session) startSpan(r *request, f *protocol.ClientFrame) {
	ctx := context.Background()
	if validTraceparent(f.Traceparent) {
		tracestate := ""
		if validTracestate(f.Tracestate) {
			tracestate = f.Tracestate
		}
		ctx = tracing.ContextFromTraceparent(ctx, f.Traceparent, tracestate)
	}
	_, r.span = s.gw.tracer.Start(ctx, f.Type, trace.WithSpanKind(trace.SpanKindServer))
	if r.span.IsRecording() {
		r.span.SetAttributes(
			tracing.Route.String(r.typeName),
			tracing.Session.String(s.id),
			tracing.MessageID.String(r.id),
		)
		if f.HasAfter {
			r.span.SetAttributes(attribute.Int64("fabric.after", int64(f.After)))
		}
	}
	if sc := r.span.SpanContext(); sc.IsSampled() || validTraceparent(f.Traceparent) {
		// The client's trace, or one the gateway's sampler kept: one
		// that can be looked up.
		r.traceID = tracing.TraceID(sc)
	}
}

// rejectSpan ends the span of a frame answered with sys/error.
func rejectSpan(r *request, err error) {
	r.span.SetStatus(codes.Error, err.Error())
	r.span.End()
}

// startSendSpan starts the send span of r's request message and writes its
// context into msg's header: the worker's span is its child. Untraced,
// the header carries the client's traceparent, if any, as it came.
func (s *session) startSendSpan(r *request, msg *nats.Msg) {
	if !r.span.SpanContext().IsValid() {
		return // untraced: no traceparent to carry
	}
	ctx := trace.ContextWithSpan(context.Background(), r.span)
	if r.span.IsRecording() {
		ctx, r.sendSpan = s.gw.tracer.Start(ctx, "send "+r.typeName,
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				tracing.NATS,
				tracing.MessagingOperationType.String("send"),
				tracing.MessagingOperationName.String("send"),
				tracing.MessagingDestination.String(msg.Subject),
				tracing.MessagingMessageID.String(r.id),
				tracing.Route.String(r.typeName),
			))
	}
	tracing.Inject(ctx, msg.Header)
}

// endSendSpan ends r's send span, if open: the message was published, or
// failed to be (err), or will not be (a replay, a cancel while claiming).
func (s *session) endSendSpan(r *request, err error) {
	if r.sendSpan == nil {
		return
	}
	if err != nil {
		r.sendSpan.RecordError(err)
		r.sendSpan.SetStatus(codes.Error, err.Error())
	}
	r.sendSpan.End()
	r.sendSpan = nil
}

// traceDeliveryLocked records the delivery of ev to the client: a deliver
// span under r's span, linked to the span that sent ev (the worker's, read
// from its traceparent).
func (s *session) traceDeliveryLocked(r *request, ev *event) {
	if !r.span.IsRecording() {
		return
	}
	name := "deliver " + r.typeName + ":" + ev.suffix
	attrs := []attribute.KeyValue{
		tracing.NATS,
		tracing.MessagingOperationType.String("receive"),
		tracing.MessagingOperationName.String("deliver"),
		tracing.Event.String(ev.suffix),
		tracing.Seq.Int64(int64(ev.seq)),
	}
	if ev.origin {
		attrs = append(attrs, tracing.Origin.String("gateway"))
	}
	if ev.replayed {
		attrs = append(attrs, tracing.Replayed.Bool(true))
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...)}
	if ev.header != nil {
		if sc := tracing.SpanContextOf(ev.header); sc.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	}
	_, span := s.gw.tracer.Start(trace.ContextWithSpan(context.Background(), r.span), name, opts...)
	if ev.suffix == protocol.SuffixError {
		code := errorCode(ev.payload)
		span.SetAttributes(tracing.ErrorCode.String(code))
		span.SetStatus(codes.Error, code)
		r.span.SetAttributes(tracing.ErrorCode.String(code))
	}
	span.End()
}

// sendMadeLocked sends an event the gateway made for r straight to the
// client (outside the in-order delivery), traced like a delivery.
func (s *session) sendMadeLocked(r *request, ev event) {
	s.traceDeliveryLocked(r, &ev)
	s.sendLocked(eventFrame(r.typeName, ev.suffix, r.id, ev.seq, ev.payload, r.traceID))
}

// endSpanLocked ends r's spans with its outcome: ok, or an error status.
func (s *session) endSpanLocked(r *request, outcome string) {
	s.endSendSpan(r, nil)
	if r.span.IsRecording() {
		r.span.SetAttributes(tracing.Outcome.String(outcome))
		if outcome != outcomeOK {
			r.span.SetStatus(codes.Error, outcome)
		}
	}
	r.span.End()
}

// errorCode reads the code of an :error event's payload.
func errorCode(payload []byte) string {
	var e struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(payload, &e)
	return e.Code
}

// rlog returns the logger for lines about request r: its session, id,
// route and trace.
func (s *session) rlog(r *request) *slog.Logger {
	l := s.gw.log.With("session", s.id, "id", r.id, "route", r.typeName)
	if r.traceID != "" {
		l = l.With("trace_id", r.traceID, "span_id", r.span.SpanContext().SpanID().String())
	}
	return l
}
