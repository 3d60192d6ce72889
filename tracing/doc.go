// Package tracing carries OpenTelemetry trace context across Fabric's
// asynchronous hops, so that one client request is one trace: client frame
// → gateway → NATS → worker → each event → NATS → gateway → client.
//
// It holds what the gateway and the worker SDK share: the W3C trace-context
// propagator Fabric always uses (the wire contract names traceparent and
// tracestate, whatever the process's global propagator), a carrier for NATS
// headers that keeps the header names exactly as written (NATS headers are
// case-sensitive; OpenTelemetry's HTTP carrier would send "Traceparent"),
// the span attribute keys, and the tracer name.
//
// Like every library package of Fabric it imports only the OpenTelemetry
// API: a process with no SDK installed traces nothing and pays almost
// nothing. cmd/fabric installs the SDK (internal/telemetry), configured by
// the standard OTEL_* environment variables.
//
// The spans of one request with three events:
//
//	demo/count                      gateway, SERVER: frame accepted → :finish sent
//	├── send demo/count             gateway, PRODUCER: the request published on NATS
//	│   └── process demo/count      worker, CONSUMER: the handler (its ctx carries it)
//	│       ├── send demo/count:progress   worker, PRODUCER, one per event
//	│       ├── send demo/count:response
//	│       └── send demo/count:finish
//	├── deliver demo/count:progress gateway, CONSUMER, linked to its send span
//	├── deliver demo/count:response
//	└── deliver demo/count:finish
package tracing
