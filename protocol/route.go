package protocol

import "reflect"

// Route declares a route once, for both sides: its typeName, the type P of its
// params, the type R of its ":response" payload, and the payload types of its
// other events. A package of route declarations is imported by the workers
// that serve them and by the clients that call them, so both sides agree on
// the types at compile time; code generators read the same declarations
// (see [Route.Info]) to give TypeScript clients the same types.
//
//	var Count = protocol.NewRoute[CountParams, CountResult]("demo/count").
//		WithEvents(protocol.Event[CountProgress]("progress"))
type Route[P, R any] struct {
	typeName string
	events   []EventDecl
}

// NewRoute declares a route. The typeName is checked when a worker registers
// the route or a client calls it.
func NewRoute[P, R any](typeName string) Route[P, R] { return Route[P, R]{typeName: typeName} }

// Type returns the route's typeName.
func (r Route[P, R]) Type() string { return r.typeName }

// WithEvents returns the route with the payload types of more event suffixes
// declared. ":response" is declared by R, ":error" and ":finish" by the
// protocol.
func (r Route[P, R]) WithEvents(events ...EventDecl) Route[P, R] {
	r.events = append(r.events[:len(r.events):len(r.events)], events...)
	return r
}

// EventDecl declares the payload type of one event suffix of a route.
type EventDecl struct {
	Suffix string
	Type   reflect.Type
}

// Event declares that a route's events with suffix carry payloads of type T.
func Event[T any](suffix string) EventDecl {
	return EventDecl{Suffix: suffix, Type: reflect.TypeFor[T]()}
}

// RouteInfo describes a route for code generators and documentation.
type RouteInfo struct {
	Type   string
	Params reflect.Type
	// Events holds the declared events: the WithEvents ones in order, then
	// ":response" (R). ":error" and ":finish" are implied.
	Events []EventDecl
}

// Info describes the route.
func (r Route[P, R]) Info() RouteInfo {
	events := append([]EventDecl(nil), r.events...)
	events = append(events, Event[R](SuffixResponse))
	return RouteInfo{Type: r.typeName, Params: reflect.TypeFor[P](), Events: events}
}

// Conventional event suffixes.
const (
	SuffixProgress = "progress"
	SuffixResponse = "response"
	SuffixError    = "error"
	SuffixFinish   = "finish" // always the last event of a request
)
