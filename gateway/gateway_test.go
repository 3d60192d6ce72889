package gateway_test

import (
	"testing"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
)

func TestSmokeCount(t *testing.T) {
	f := fabrictest.Start(t, gateway.Config{})
	ws, w := fabrictest.Hello(t, f.Gateway.URL)
	t.Logf("welcome %+v", w)
	msgs := ws.Call("demo/count", "m1", map[string]any{"n": 3})
	for _, m := range msgs {
		t.Logf("%s %d %s", m.Type, m.Seq, m.Payload)
	}
}
