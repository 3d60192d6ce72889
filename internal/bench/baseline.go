package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/internal/embeddednats"
)

// The baselines' NATS subjects, outside any fabric's prefix: a request on
// baselineEcho gets one reply, the payload itself; on baselineCount, the
// payload five times, as demo/count n=4 sends 4 progress events and a
// response.
const (
	baselineEcho  = "bench.baseline.echo"
	baselineCount = "bench.baseline.count"
	countReplies  = 5
)

// ServeResponder answers the baselines' requests on NATS at url until ctx
// ends: the same work as the demo worker's, with no fabric around it. It
// writes "responder ready" to ready once subscribed.
func ServeResponder(ctx context.Context, url string, ready io.Writer) error {
	nc, err := nats.Connect(url, nats.Name("fabric-bench-responder"))
	if err != nil {
		return err
	}
	defer nc.Close()
	for subject, replies := range map[string]int{baselineEcho: 1, baselineCount: countReplies} {
		_, err := nc.Subscribe(subject, func(m *nats.Msg) {
			for range replies {
				_ = nc.Publish(m.Reply, m.Data)
			}
		})
		if err != nil {
			return err
		}
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(ready, "responder ready")
	<-ctx.Done()
	return nc.Drain()
}

// ServeEcho serves a plain WebSocket echo at addr until ctx ends: each text
// message is sent back n times, n from the URL's query (?n=5; 1 by
// default). It writes "echo server listening ADDR" to ready.
func ServeEcho(ctx context.Context, addr string, ready io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		n = max(n, 1)
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			typ, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			for range n {
				if err := ws.WriteMessage(typ, msg); err != nil {
					return
				}
			}
		}
	})}
	fmt.Fprintln(ready, "echo server listening", ln.Addr())
	return serveUntil(ctx, srv, ln)
}

// serveUntil serves srv on ln until ctx ends.
func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ServeRelay serves, at addr until ctx ends, the least a WebSocket gateway
// in front of NATS can do: each text message of a connection is published
// on the responder's subject (baselineEcho, or baselineCount with ?n=5 in
// the URL) with a reply subject of the connection's own, and each reply is
// written back as a text message. No protocol, no session, no ids, no
// tracing: what it costs over NATS's own WebSocket listener is the extra
// process a gateway is, and what the fabric costs over it is the fabric's
// own work. It writes "relay listening ADDR" to ready.
//
// With embedNATS, a nats-server configuration file, the relay runs that
// NATS node itself, connected to it in-process, as `fabric gateway
// --embed-nats` does; it then writes "relay nats URL" to ready first, the
// URL its responder connects to, and natsURL is not used.
func ServeRelay(ctx context.Context, addr, natsURL, embedNATS string, ready io.Writer) error {
	opts := []nats.Option{nats.Name("fabric-bench-relay")}
	if embedNATS != "" {
		ns, err := embeddednats.StartFile(embedNATS, nil, 0)
		if err != nil {
			return err
		}
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		natsURL = ns.ClientURL()
		opts = append(opts, nats.InProcessServer(ns))
		fmt.Fprintln(ready, "relay nats", natsURL)
	}
	nc, err := nats.Connect(natsURL, opts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		subject := baselineEcho
		if r.URL.Query().Get("n") == strconv.Itoa(countReplies) {
			subject = baselineCount
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		inbox := nc.NewInbox()
		// One subscription, so one goroutine writes to ws at a time.
		sub, err := nc.Subscribe(inbox, func(m *nats.Msg) { _ = ws.WriteMessage(websocket.TextMessage, m.Data) })
		if err != nil {
			return
		}
		defer func() { _ = sub.Unsubscribe() }()
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if err := nc.PublishRequest(subject, inbox, msg); err != nil {
				return
			}
		}
	})}
	fmt.Fprintln(ready, "relay listening", ln.Addr())
	return serveUntil(ctx, srv, ln)
}

// natsClient does the baselines' request/reply on one NATS connection: a
// publish with a reply subject, and the replies on a subscription to it.
type natsClient struct {
	nc  *nats.Conn
	sub *nats.Subscription
}

func dialNATS(url string) (*natsClient, error) {
	nc, err := nats.Connect(url, nats.Name("fabric-bench"))
	if err != nil {
		return nil, err
	}
	sub, err := nc.SubscribeSync(nc.NewRespInbox())
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &natsClient{nc: nc, sub: sub}, nil
}

// roundTrip sends payload on subject and waits for replies replies.
func (c *natsClient) roundTrip(subject string, payload []byte, replies int) (roundTripResult, error) {
	return timeRoundTrip(replies,
		func() error { return c.nc.PublishRequest(subject, c.sub.Subject, payload) },
		func() error { _, err := c.sub.NextMsg(10 * time.Second); return err })
}

// timeRoundTrip sends, then receives replies messages, timing the first and
// the last from the send.
func timeRoundTrip(replies int, send, receive func() error) (roundTripResult, error) {
	var r roundTripResult
	start := time.Now()
	if err := send(); err != nil {
		return r, err
	}
	for r.frames < replies {
		if err := receive(); err != nil {
			return r, err
		}
		r.frames++
		if r.frames == 1 {
			r.first = time.Since(start)
		}
	}
	r.last = time.Since(start)
	return r, nil
}

func (c *natsClient) close() { c.nc.Close() }

// echoClient is a connection to ServeEcho's server.
type echoClient struct {
	ws      *websocket.Conn
	replies int
}

func dialEcho(ctx context.Context, addr string, replies int) (*echoClient, error) {
	ws, _, err := dialer(nil).DialContext(ctx, fmt.Sprintf("ws://%s/?n=%d", addr, replies), nil)
	if err != nil {
		return nil, err
	}
	return &echoClient{ws: ws, replies: replies}, nil
}

func (c *echoClient) roundTrip(payload []byte) (roundTripResult, error) {
	return timeRoundTrip(c.replies,
		func() error { return c.ws.WriteMessage(websocket.TextMessage, payload) },
		func() error { _, _, err := c.ws.ReadMessage(); return err })
}

func (c *echoClient) close() { _ = c.ws.Close() }
