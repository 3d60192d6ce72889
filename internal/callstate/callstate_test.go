package callstate

import (
	"context"
	"errors"
	"testing"

	"github.com/seed82ac63c1/fabric/protocol"
)

func msg(suffix string, seq uint64) protocol.Message {
	return protocol.Message{Type: "t/x:" + suffix, ID: "m", Seq: seq}
}

func TestAddDropsRepeatsAndEndsAtFinish(t *testing.T) {
	c := New("t/x", "m")
	for _, m := range []protocol.Message{msg("progress", 1), msg("progress", 1), msg("progress", 2), msg("finish", 3), msg("progress", 4)} {
		c.Add(m)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("not done after finish")
	}
	msgs, err := c.Result()
	if err != nil || len(msgs) != 3 || msgs[2].Seq != 3 {
		t.Fatalf("%v %+v", err, msgs)
	}
}

func TestEndNumbersOn(t *testing.T) {
	c := New("t/x", "m")
	c.Add(msg("progress", 1))
	c.End(protocol.CodeInterrupted, "lost")
	msgs, err := c.Result()
	if !errors.Is(err, &protocol.Error{Code: protocol.CodeInterrupted}) || len(msgs) != 3 ||
		msgs[1].Type != "t/x:error" || msgs[1].Seq != 2 || msgs[2].Type != "t/x:finish" || msgs[2].Seq != 3 {
		t.Fatalf("%v %+v", err, msgs)
	}
	c.End(protocol.CodeTimeout, "again") // after the end: nothing
	if msgs, _ := c.Result(); len(msgs) != 3 {
		t.Fatalf("%+v", msgs)
	}
}

func TestFailAndMessages(t *testing.T) {
	c := New("t/x", "m")
	c.Add(msg("progress", 1))
	boom := errors.New("boom")
	c.Fail(boom)
	var got []uint64
	var gotErr error
	for m, err := range c.Messages(context.Background(), func() { t.Fatal("abandoned a finished call") }) {
		if err != nil {
			gotErr = err
			break
		}
		got = append(got, m.Seq)
	}
	if len(got) != 1 || !errors.Is(gotErr, boom) {
		t.Fatalf("%v %v", got, gotErr)
	}
}

func TestMessagesAbandon(t *testing.T) {
	c := New("t/x", "m")
	c.Add(msg("progress", 1))
	abandoned := 0
	for range c.Messages(context.Background(), func() { abandoned++ }) {
		break
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var ctxErr error
	for _, err := range c.Messages(ctx, func() { abandoned++ }) {
		ctxErr = err
	}
	if abandoned != 2 || !errors.Is(ctxErr, context.Canceled) {
		t.Fatalf("abandoned %d, err %v", abandoned, ctxErr)
	}
}
