package cluster

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers/demo"
)

// Check fails the test for every violation of the fabric's invariants in
// the clients' recordings (see [Violations]), and logs how the requests
// ended. Call it once the requests have ended.
func Check(t testing.TB, clients ...*Client) {
	t.Helper()
	check(t, nil, clients...)
}

// check is Check, except that violations tolerate accepts are logged
// instead.
func check(t testing.TB, tolerate func(Violation) bool, clients ...*Client) {
	t.Helper()
	const shown = 30
	failed := 0
	for _, v := range Violations(clients...) {
		switch {
		case tolerate != nil && tolerate(v):
			t.Logf("tolerated: %s", v)
		case failed == shown:
			failed++
			t.Error("… and more violations")
		case failed < shown:
			failed++
			t.Error(v)
		}
	}
	t.Logf("outcomes: %s", formatOutcomes(Outcomes(clients...)))
}

// Violation is one breach of an invariant in a client's recording.
type Violation struct {
	Invariant string // I1, I2, I3, I5; "client" for the client's own failures
	Client    string
	ID        string // the request's id; "" if the breach is not of one request
	// Gap says that the request's events are in order but skip seq
	// numbers: events were lost on the way and the rest passed on. Its I3
	// and I5 violations follow from that loss.
	Gap    bool
	Detail string
}

func (v Violation) String() string {
	return strings.TrimSpace(fmt.Sprintf("%s %s %s", v.Invariant, v.Client, v.ID)) + ": " + v.Detail
}

// Violations judges the clients' recordings:
//
//   - I1: every request ends with exactly one :finish, and nothing of it
//     arrives after that; a request the client abandoned (its session was
//     not resumed) has no :finish.
//   - I2: every event reaches the client that sent its id, under the
//     request's route: no client gets an id it did not send.
//   - I3: each request's events arrive numbered 1, 2, … n, in order, with no
//     gap or repeat, across reconnects (a re-send's "after" continues the
//     numbering).
//   - I5: nothing is lost silently: a request ends with its whole result
//     (demo/count: progress i = 1…n, then the response {n}) or with an
//     explicit :error after the part of it that arrived.
//
// It also reports the client's own failures (no gateway took a resume) and
// sys/error frames: these clients send only valid frames.
func Violations(clients ...*Client) []Violation {
	var vs []Violation
	for _, cl := range clients {
		cl.mu.Lock()
		for _, err := range cl.errs {
			vs = append(vs, Violation{Invariant: "client", Client: cl.Name, Detail: err.Error()})
		}
		for _, m := range cl.rejected {
			vs = append(vs, Violation{Invariant: "client", Client: cl.Name, ID: m.ID, Detail: "sys/error " + string(m.Payload)})
		}
		for _, m := range cl.stray {
			vs = append(vs, Violation{Invariant: "I2", Client: cl.Name, ID: m.ID, Detail: "an event of an id it never sent: " + format(m)})
		}
		for _, id := range cl.order {
			for _, v := range violations(cl.reqs[id]) {
				v.Client = cl.Name
				vs = append(vs, v)
			}
		}
		cl.mu.Unlock()
	}
	return vs
}

// violations judges one request.
func violations(r *Request) []Violation {
	var vs []Violation
	gap := gapped(r.Events)
	bad := func(invariant, format string, args ...any) {
		vs = append(vs, Violation{Invariant: invariant, ID: r.ID, Gap: gap && (invariant == "I3" || invariant == "I5"),
			Detail: fmt.Sprintf(format, args...) + "; events " + formatEvents(r.Events)})
	}
	// I2: its route.
	for _, m := range r.Events {
		if !strings.HasPrefix(m.Type, r.Type+":") {
			bad("I2", "an event of another route: %s", m.Type)
		}
	}
	// I3: 1, 2, … n.
	for i, m := range r.Events {
		if m.Seq != uint64(i+1) {
			bad("I3", "event %d has seq %d", i+1, m.Seq)
			break
		}
	}
	// I1: one :finish, last.
	finishes, end := 0, -1
	for i, m := range r.Events {
		if m.Suffix() == protocol.SuffixFinish {
			finishes++
			if end < 0 {
				end = i
			}
		}
	}
	switch {
	case r.Abandoned != "":
		if finishes > 0 {
			bad("I1", "abandoned (%s) but finished", r.Abandoned)
		}
		return vs
	case finishes == 0:
		bad("I1", "no :finish")
		return vs
	case finishes > 1:
		bad("I1", "%d :finish", finishes)
	case end != len(r.Events)-1:
		bad("I1", "%d events after the :finish", len(r.Events)-1-end)
	}
	// I5: the whole result, or an explicit error.
	if err := checkResult(r, r.Events[:end]); err != "" {
		bad("I5", "%s", err)
	}
	return vs
}

// gapped reports whether the events' seqs increase but skip numbers.
func gapped(evs []protocol.Message) bool {
	var last uint64
	skipped := false
	for _, m := range evs {
		if m.Seq <= last {
			return false
		}
		skipped = skipped || m.Seq > last+1
		last = m.Seq
	}
	return skipped
}

// checkResult checks the events of r before its :finish: its result, whole,
// or a part of it ended by an :error.
func checkResult(r *Request, evs []protocol.Message) string {
	if len(evs) == 0 {
		return "finished with neither a response nor an error"
	}
	var count demo.CountParams
	isCount := r.Type == demo.Count.Type()
	if isCount {
		if err := json.Unmarshal(r.Params, &count); err != nil {
			return "bad params: " + err.Error()
		}
	}
	progress, responded := 0, false
	for i, m := range evs {
		last := i == len(evs)-1
		switch m.Suffix() {
		case protocol.SuffixError:
			if !last {
				return "events after its :error"
			}
			var e protocol.Error
			if err := m.Decode(&e); err != nil || e.Code == "" {
				return "an :error without a code"
			}
			return ""
		case protocol.SuffixResponse:
			if responded {
				return "two responses"
			}
			responded = true
			if isCount {
				var res demo.CountResult
				if err := m.Decode(&res); err != nil || progress != count.N || res.N != count.N {
					return fmt.Sprintf("a response %s after %d progress events of %d", m.Payload, progress, count.N)
				}
			}
		case protocol.SuffixProgress:
			if responded {
				return "progress after the response"
			}
			progress++
			var p demo.CountProgress
			if isCount && (m.Decode(&p) != nil || p.I != progress) {
				return fmt.Sprintf("progress %d is %s", progress, m.Payload)
			}
		}
	}
	if !responded {
		return "ended without a response or an error"
	}
	return ""
}

// Outcomes counts how the clients' requests ended, by [Request.Outcome].
func Outcomes(clients ...*Client) map[string]int {
	n := make(map[string]int)
	for _, cl := range clients {
		cl.mu.Lock()
		for _, r := range cl.reqs {
			n[r.Outcome()]++
		}
		cl.mu.Unlock()
	}
	return n
}

func formatOutcomes(n map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, n[k]))
	}
	return strings.Join(parts, ", ")
}

// formatEvents lists events as seq:suffix{payload}, runs of progress
// events with consecutive seqs as one "first–last:progress".
func formatEvents(evs []protocol.Message) string {
	var parts []string
	for i := 0; i < len(evs); i++ {
		j := i
		for j+1 < len(evs) && evs[i].Suffix() == protocol.SuffixProgress &&
			evs[j+1].Suffix() == protocol.SuffixProgress && evs[j+1].Seq == evs[j].Seq+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d–%d:progress", evs[i].Seq, evs[j].Seq))
			i = j
			continue
		}
		parts = append(parts, format(evs[i]))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func format(m protocol.Message) string {
	s := fmt.Sprintf("%d:%s", m.Seq, m.Type[strings.LastIndexByte(m.Type, ':')+1:])
	if len(m.Payload) > 0 {
		s += string(m.Payload)
	}
	return s
}
