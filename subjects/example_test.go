package subjects_test

import (
	"fmt"

	"github.com/seed82ac63c1/fabric/subjects"
)

func ExampleSpace_Request() {
	space := subjects.MustSpace("") // the default prefix, "fabric"
	subject := space.Request("orchestrator/query")
	fmt.Println(subject)

	typeName, ok := space.ParseRequest(subject)
	fmt.Println(typeName, ok)

	reply := space.Reply("S", "m1")
	fmt.Println(reply)
	fmt.Println(subjects.Event(reply, "orchestrator/query", "progress"))

	acme := subjects.MustSpace("acme.prod")
	fmt.Println(acme.Request("orchestrator/query"))
	// Output:
	// fabric.req.orchestrator.query
	// orchestrator/query true
	// fabric.evt.S.m1
	// fabric.evt.S.m1.orchestrator.query.progress
	// acme.prod.req.orchestrator.query
}

func ExampleValidateRoute() {
	for _, typeName := range []string{
		"orchestrator/query",
		"system/status",
		"sys/ping",
		"orchestrator.query",
		"orchestrator//query",
		"dé/mo",
	} {
		if err := subjects.ValidateRoute(typeName); err != nil {
			fmt.Printf("%s: %v\n", typeName, err)
			continue
		}
		fmt.Printf("%s: ok\n", typeName)
	}
	// Output:
	// orchestrator/query: ok
	// system/status: ok
	// sys/ping: subjects: reserved typeName: the first segment "sys" is reserved for control frames
	// orchestrator.query: subjects: invalid typeName: segment 1 must match [A-Za-z][A-Za-z0-9_-]{0,63}
	// orchestrator//query: subjects: invalid typeName: segment 2 must match [A-Za-z][A-Za-z0-9_-]{0,63}
	// dé/mo: subjects: invalid typeName: segment 1 must match [A-Za-z][A-Za-z0-9_-]{0,63}
}
