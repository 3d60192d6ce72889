package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/seed82ac63c1/fabric/client"
	"github.com/seed82ac63c1/fabric/protocol"
)

func runCall(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("call")
	url := fs.String("url", "ws://localhost:8080/ws", "gateway WebSocket URL")
	timeout := fs.Duration("timeout", 0, "give up (and cancel the request) after this long; 0 waits for finish")
	token := fs.String("token", "", "token sent in sys/hello")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: fabric call TYPE [JSON] [flags]\n\nSends one request and prints every event as a JSON line as it arrives.\nExits 1 if the request ends with an :error.\n\nFlags:")
		fs.PrintDefaults()
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 {
		fs.Usage()
		return exitError(2)
	}
	var payload json.RawMessage
	if len(pos) == 2 {
		if !json.Valid([]byte(pos[1])) {
			return fmt.Errorf("call: the payload is not valid JSON: %s", pos[1])
		}
		payload = json.RawMessage(pos[1])
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	c, err := client.Dial(ctx, *url, client.Options{Token: *token, Name: "fabric-call", NoReconnect: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer c.Close()
	enc := json.NewEncoder(stdout)
	failed := false
	for m, err := range c.Stream(ctx, pos[0], payload) {
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("call: no finish within %s (request cancelled)", *timeout)
			}
			return err
		}
		if m.Suffix() == protocol.SuffixError {
			failed = true
		}
		if err := enc.Encode(m); err != nil {
			return err
		}
	}
	if failed {
		return exitError(1)
	}
	return nil
}
