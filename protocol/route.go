package protocol

// Route declares a route once, for both sides: its typeName, the type P of its
// params, and the type R of its ":response" payload. A package of route
// declarations is imported by the workers that serve them and by the clients
// that call them, so both sides agree on the types at compile time.
//
//	var Count = protocol.NewRoute[CountParams, CountResult]("demo/count")
type Route[P, R any] struct {
	typeName string
}

// NewRoute declares a route. The typeName is checked when a worker registers
// the route or a client calls it.
func NewRoute[P, R any](typeName string) Route[P, R] { return Route[P, R]{typeName: typeName} }

// Type returns the route's typeName.
func (r Route[P, R]) Type() string { return r.typeName }

// Conventional event suffixes.
const (
	SuffixProgress = "progress"
	SuffixResponse = "response"
	SuffixError    = "error"
	SuffixFinish   = "finish" // always the last event of a request
)
