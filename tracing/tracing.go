package tracing

import (
	"context"
	"encoding/hex"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TracerName is the instrumentation scope of Fabric's spans.
const TracerName = "github.com/seed82ac63c1/fabric"

// Span attribute keys. The messaging.* keys follow OpenTelemetry's
// messaging conventions; the fabric.* keys are Fabric's own.
const (
	MessagingSystem        = attribute.Key("messaging.system")           // always "nats"
	MessagingDestination   = attribute.Key("messaging.destination.name") // a subject; for events, its template
	MessagingOperationType = attribute.Key("messaging.operation.type")   // send, process, receive
	MessagingOperationName = attribute.Key("messaging.operation.name")   // send, process, deliver
	MessagingMessageID     = attribute.Key("messaging.message.id")       // the request's message id

	Route     = attribute.Key("fabric.route")      // the route's typeName
	Session   = attribute.Key("fabric.session")    // the session id
	MessageID = attribute.Key("fabric.message_id") // the request's message id
	Event     = attribute.Key("fabric.event")      // an event's suffix: progress, response, error, finish…
	Seq       = attribute.Key("fabric.seq")        // an event's seq
	ErrorCode = attribute.Key("fabric.error.code") // the code of an :error event
	Origin    = attribute.Key("fabric.origin")     // "gateway" on an event the gateway made (timeout, cancel…)
	Outcome   = attribute.Key("fabric.outcome")    // how the gateway ended the request: ok, error, timeout…
	Replayed  = attribute.Key("fabric.replayed")   // true on an event delivered from the durable store
)

// NATS is the messaging.system attribute of every Fabric span.
var NATS = MessagingSystem.String("nats")

// Propagator is W3C trace context: the traceparent and tracestate headers
// of Fabric's frames and NATS messages.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// HeaderCarrier adapts a NATS header to a propagation.TextMapCarrier,
// keeping names exactly as the propagator writes them ("traceparent").
type HeaderCarrier nats.Header

var _ propagation.TextMapCarrier = HeaderCarrier(nil)

// Get returns the first value of key.
func (c HeaderCarrier) Get(key string) string {
	if vs := c[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// Set sets key to value, replacing any value.
func (c HeaderCarrier) Set(key, value string) { c[key] = []string{value} }

// Keys returns the header names.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes ctx's span context into h as traceparent and tracestate.
// It writes nothing when ctx has no valid span context.
func Inject(ctx context.Context, h nats.Header) { Propagator.Inject(ctx, HeaderCarrier(h)) }

// Extract returns ctx with the remote span context of h's traceparent and
// tracestate, if valid.
func Extract(ctx context.Context, h nats.Header) context.Context {
	return Propagator.Extract(ctx, HeaderCarrier(h))
}

// SpanContextOf returns the remote span context of h's traceparent, or an
// invalid one.
func SpanContextOf(h nats.Header) trace.SpanContext {
	return trace.SpanContextFromContext(Extract(context.Background(), h))
}

// ContextFromTraceparent returns ctx with the remote span context of a
// client frame's traceparent and tracestate, if valid.
func ContextFromTraceparent(ctx context.Context, traceparent, tracestate string) context.Context {
	if traceparent == "" {
		return ctx
	}
	c := propagation.MapCarrier{"traceparent": traceparent}
	if tracestate != "" {
		c["tracestate"] = tracestate
	}
	return Propagator.Extract(ctx, c)
}

// TraceID returns sc's trace id as 32 lowercase hex digits, the `trace`
// field of server frames; "" when sc is not valid.
func TraceID(sc trace.SpanContext) string {
	if !sc.HasTraceID() {
		return ""
	}
	id := sc.TraceID()
	return hex.EncodeToString(id[:])
}
