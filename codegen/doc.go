// Package codegen turns Go route declarations (protocol.Route) into code for
// other languages, so that a route is declared once, in Go, and every client
// gets its types from there.
//
// [TypeScript] writes a module with one interface per Go struct type that a
// route's params or events use, and a route map that the TypeScript client is
// generic over: a wrong typeName, wrong params or a wrong payload field is
// then a compile error in the app.
//
// [AsyncAPI] writes an AsyncAPI 3 document of the NATS contract between
// gateways and workers (docs/nats.md) for the routes: their request and event
// subjects, the cancel and push subjects, the headers, and JSON Schemas of
// every payload, derived from the Go types by the same rules.
//
// Go types map to TypeScript and to JSON Schema by their JSON encoding
// (encoding/json rules): struct fields by their json tag, omitempty fields
// optional (not required), embedded structs flattened, pointers nullable,
// maps objects, []byte a base64 string, time.Time a date-time string,
// json.RawMessage and interfaces unknown (the empty schema). The functions
// are pure and safe for concurrent use.
package codegen
