// Package telemetry installs the OpenTelemetry SDK in Fabric's commands,
// configured by the standard environment variables, so that library
// packages (gateway, workers), which import only the OpenTelemetry API,
// export their spans.
//
// Tracing is on when the environment asks for it: OTEL_TRACES_EXPORTER is
// set (otlp, console; none turns it off), or an OTLP endpoint is
// (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).
// OTEL_SDK_DISABLED=true turns it off whatever else is set. Otherwise
// nothing is installed and tracing costs a no-op span per request.
//
// Everything else is the SDK's own reading of the environment:
// OTEL_EXPORTER_OTLP_PROTOCOL (grpc, or http/protobuf, the default),
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and
// OTEL_TRACES_SAMPLER_ARG (default parentbased_always_on), OTEL_BSP_* for
// the batch span processor, headers, timeouts and TLS.
//
// Spans are exported in batches in the background: an unreachable
// collector drops spans once the batch queue is full, and never slows a
// request.
package telemetry
