// Package codegen turns Go route declarations (protocol.Route) into code for
// other languages, so that a route is declared once, in Go, and every client
// gets its types from there.
//
// [TypeScript] writes a module with one interface per Go struct type that a
// route's params or events use, and a route map that the TypeScript client is
// generic over: a wrong typeName, wrong params or a wrong payload field is
// then a compile error in the app.
//
// Go types map to TypeScript by their JSON encoding (encoding/json rules):
// struct fields by their json tag, omitempty fields optional, embedded
// structs flattened, pointers nullable, []byte a base64 string,
// json.RawMessage and interfaces unknown. The functions are pure and safe for
// concurrent use.
package codegen
