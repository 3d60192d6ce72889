package workers_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/client"
	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/embeddednats"
	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers"
)

// A route is declared once, in a package that the worker and its clients
// both import.
type GreetParams struct {
	Name string `json:"name"`
}

type Greeting struct {
	Text string `json:"text"`
}

var Greet = protocol.NewRoute[GreetParams, Greeting]("example/greet")

// ExampleHandle serves a typed route and calls it through a real gateway.
func ExampleHandle() {
	quiet := slog.New(slog.DiscardHandler)
	dir, _ := os.MkdirTemp("", "example-")
	defer os.RemoveAll(dir)
	ns, _ := embeddednats.Start(embeddednats.Config{JetStream: true, StoreDir: dir})
	defer ns.WaitForShutdown()
	defer ns.Shutdown()

	// The worker.
	workerNC, _ := nats.Connect(ns.ClientURL())
	defer workerNC.Close()
	w, _ := workers.New(workerNC, workers.Config{}, workers.WithLogger(quiet))
	_ = workers.Handle(w, Greet, func(ctx context.Context, p GreetParams, s *workers.Stream) (Greeting, error) {
		if p.Name == "" {
			return Greeting{}, protocol.Errorf(protocol.CodeBadRequest, "name is required")
		}
		_ = s.Progress(map[string]string{"status": "thinking"})
		return Greeting{Text: "Hello, " + p.Name + "!"}, nil
	})
	_ = w.Start()
	defer w.Shutdown(context.Background())

	// A gateway.
	gatewayNC, _ := nats.Connect(ns.ClientURL())
	defer gatewayNC.Close()
	gw, _ := gateway.New(gatewayNC, gateway.Config{}, gateway.WithLogger(quiet))
	srv := httptest.NewServer(gw.Handler())
	defer srv.Close()
	defer gw.Shutdown(context.Background())

	// A client.
	ctx := context.Background()
	c, err := client.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", client.Options{Logger: quiet})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	msgs, _ := c.Call(ctx, Greet.Type(), GreetParams{Name: "Ada"})
	for _, m := range msgs {
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%s %d %s", m.Type, m.Seq, m.Payload)))
	}
	greeting, _ := client.Invoke(ctx, c, Greet, GreetParams{Name: "Grace"})
	fmt.Println(greeting.Text)
	_, err = client.Invoke(ctx, c, Greet, GreetParams{})
	fmt.Println(err)
	// Output:
	// example/greet:progress 1 {"status":"thinking"}
	// example/greet:response 2 {"text":"Hello, Ada!"}
	// example/greet:finish 3
	// Hello, Grace!
	// bad_request: name is required
}
