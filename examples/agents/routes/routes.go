// Package routes declares the routes of the research agents, once, for both
// sides of the fabric.
//
// The worker process (examples/agents/worker) imports it to serve the routes
// with workers.Handle, and every caller (examples/agents/caller, a web
// backend, a test) imports it to call them with client.Invoke. Because the
// route value carries its params and result types, a change to either is a
// compile error on both sides rather than a surprise on the wire. The event
// payloads a route streams are declared here too, so that callers decode
// them into the same types the worker sends.
//
// A product team starts its own agents by copying this package: one
// protocol.NewRoute per route, with plain JSON-tagged structs.
package routes

import "github.com/seed82ac63c1/fabric/protocol"

// Ask answers a research question in a few visible steps:
//
//	research/ask {question, steps}
//	  → steps × research/ask:progress {"step":k,"note":"…"}
//	  → n × research/ask:token {"text":"…"}      the answer, streamed word by word
//	  → research/ask:response {answer, sources}
//	  → research/ask:finish
//
// An empty question, or steps outside 0..MaxSteps, ends with
// research/ask:error {"code":"bad_request"} instead.
var Ask = protocol.NewRoute[AskParams, AskResult]("research/ask")

// AskParams are the params of [Ask].
type AskParams struct {
	Question string `json:"question"`
	// Steps is the number of research steps; 0 means DefaultSteps.
	Steps int `json:"steps,omitempty"`
}

// AskResult is the ":response" payload of [Ask].
type AskResult struct {
	Answer  string   `json:"answer"`
	Sources []string `json:"sources"`
}

// Progress is the payload of an Ask ":progress" event: research step Step
// (1, 2, …) has begun.
type Progress struct {
	Step int    `json:"step"`
	Note string `json:"note"`
}

// SuffixToken is the suffix of Ask's custom event "research/ask:token",
// which streams the answer as it is written. The tokens, joined in order,
// are the answer.
const SuffixToken = "token"

// Token is the payload of an Ask ":token" event.
type Token struct {
	Text string `json:"text"`
}

// Limits of [AskParams].
const (
	DefaultSteps = 3
	MaxSteps     = 10
)
