package protocol_test

import (
	"errors"
	"fmt"

	"github.com/seed82ac63c1/fabric/protocol"
)

func ExampleDecodeClientFrame() {
	f, err := protocol.DecodeClientFrame([]byte(`{"type":"demo/count","id":"m1","payload":{"n":3},"x":"ignored"}`))
	if err != nil {
		panic(err)
	}
	fmt.Printf("type=%s id=%s payload=%s after=%v\n", f.Type, f.ID, f.Payload, f.HasAfter)

	_, err = protocol.DecodeClientFrame([]byte(`["demo/count"]`))
	fmt.Println(err)
	fmt.Println(errors.Is(err, &protocol.Error{Code: protocol.CodeBadRequest}))
	// Output:
	// type=demo/count id=m1 payload={"n":3} after=false
	// bad_request: frame is not a JSON object
	// true
}

func ExampleAppendServerFrame() {
	var buf []byte
	buf = protocol.AppendServerFrame(buf[:0], "demo/count:progress", "m1", 1, []byte(`{"i":1}`), "")
	fmt.Println(string(buf))
	buf = protocol.AppendServerFrame(buf[:0], "demo/count:finish", "m1", 5, nil, "")
	fmt.Println(string(buf))
	buf = protocol.AppendServerFrame(buf[:0], protocol.TypePing, "", 0, nil, "")
	fmt.Println(string(buf))
	e := protocol.Errorf(protocol.CodeBadRequest, "a request needs an id")
	buf = protocol.AppendServerFrame(buf[:0], protocol.TypeError, "", 0, e.Payload(), "")
	fmt.Println(string(buf))
	// Output:
	// {"type":"demo/count:progress","id":"m1","seq":1,"payload":{"i":1}}
	// {"type":"demo/count:finish","id":"m1","seq":5}
	// {"type":"sys/ping"}
	// {"type":"sys/error","payload":{"code":"bad_request","message":"a request needs an id"}}
}
