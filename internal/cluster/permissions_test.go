package cluster

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/seed82ac63c1/fabric/protocol"
	"github.com/seed82ac63c1/fabric/workers/demo"
	"github.com/seed82ac63c1/fabric/workers/demo/agents"
)

// permissionsFile holds the NATS users of deploy/.
const permissionsFile = "../../deploy/nats/permissions.conf"

// natsUsers are the users of permissionsFile.
var natsUsers = []string{"gateway", "worker", "caller", "tail", "auth"}

// natsPasswords gives every user of permissionsFile a fresh password in
// the environment the NATS nodes start with.
func natsPasswords(t *testing.T) map[string]string {
	pw := map[string]string{}
	for _, u := range natsUsers {
		pw[u] = "pw" + rand.Text()
		t.Setenv("NATS_"+strings.ToUpper(u)+"_PASSWORD", pw[u])
	}
	return pw
}

// userArgs are the fabric flags that connect as user: its password and its
// own reply inboxes.
func userArgs(user string, pw map[string]string) []string {
	return []string{"--nats-user", user, "--nats-password", pw[user], "--nats-inbox-prefix", "_INBOX." + user}
}

// TestNATSPermissions runs gateways and workers of the fabric binary on a
// NATS node configured with deploy/nats/permissions.conf, each process as
// its user, in core and durable mode. Requests, events, a cancel, a push, a
// child call (agent/ask calls the other agents) and a session taken over by
// another gateway all work, and no process is refused anything. Then
// clients of each user try what their user may not: the server refuses each
// with a permissions violation, which the client gets as an async error and
// the server logs, and nothing of it reaches a subscriber. A demo worker
// started as the gateway user logs the violation of its own subscriptions.
func TestNATSPermissions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS, gateway and worker processes")
	}
	conf, err := os.ReadFile(permissionsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []struct {
		name    string
		durable bool
	}{{"core", false}, {"durable", true}} {
		t.Run(mode.name, func(t *testing.T) {
			pw := natsPasswords(t)
			gwArgs := userArgs("gateway", pw)
			if mode.durable {
				gwArgs = append(gwArgs, "--durable", "--durable-storage", "memory")
			}
			c := Start(t, Options{
				NATS: 1, Gateways: 2, Workers: 1, NATSConfig: string(conf),
				GatewayArgs: gwArgs,
				WorkerArgs:  userArgs("worker", pw),
				// Longer than the cancel's wait below.
				RequestTimeout: 10 * time.Second,
			})
			node := c.NATS[0]
			c.addWorker(t, "callers", append([]string{"--agents", "--agent-pace", "0"}, userArgs("caller", pw)...))

			t.Run("allowed", func(t *testing.T) {
				tail := watch(t, node.URL(), pw)
				rec := c.NewClient(t, 0)
				count := rec.Count(3, 10)
				sleep := rec.Send(demo.Sleep.Type(), demo.SleepParams{Ms: 30_000})
				ask := rec.Send(agents.Ask.Type(), agents.AskParams{Question: "revenue by region"})
				time.Sleep(200 * time.Millisecond) // the sleep is running
				rec.Cancel(sleep)
				rec.Wait(t, wait, count, sleep, ask)
				wantOutcome(t, rec, "ok", count, ask)
				wantOutcome(t, rec, "cancelled", sleep)
				session := rec.Welcome().SessionID
				tail.await(t, "the cancel", fmt.Sprintf("fabric.cancel.%s.%s", session, sleep))
				tail.await(t, "a child request's event", `^fabric\.evt\.[^.]+\.[^.]+\.agent\.plan\.finish$`)
				pushReaches(t, c.Gateways[0].URL())

				// A session taken over by another gateway: gw0, told to
				// stop, answers gw1's takeover request.
				long := rec.Count(20, 100)
				rec.WaitEvents(t, long, 2)
				c.Gateways[0].Signal(syscall.SIGTERM)
				rec.WaitDropped(t)
				if w := rec.Resume(t, 1); !w.Resumed || w.SessionID != session {
					t.Errorf("welcome %+v on gw1: session %s not taken over from gw0", w, session)
				}
				rec.Wait(t, wait, long)
				if mode.durable {
					wantOutcome(t, rec, "ok", long) // replayed from the stream by gw1
				}
				if code := c.Gateways[0].WaitExit(); code != 0 {
					t.Errorf("gw0 exited with %d", code)
				}
				Check(t, rec)
				rec.Close(t)

				for _, p := range append(c.Workers, c.Gateways[0].Process, c.Gateways[1].Process, node.Process) {
					if m := violationRE.FindString(p.Output()); m != "" {
						t.Errorf("%s was refused: %s", p.Name, m)
					}
				}
			})

			if !mode.durable { // the same users either way
				t.Run("refused", func(t *testing.T) { refused(t, node, pw) })
			}
		})
	}
}

// violationRE matches what nats-server logs on a refused operation, and
// what fabric logs of the error it gets.
var violationRE = regexp.MustCompile(`(?i)[^\n]*(permissions? violation|authorization violation)[^\n]*`)

// refused has clients of each user try what their user may not.
func refused(t *testing.T, node *Node, pw map[string]string) {
	// Subscribers that would see what gets through.
	gw := connectAs(t, node, "gateway", pw)
	onTakeover := gw.sub(t, "fabric.gw.session.x", "")
	watcher := connectAs(t, node, "tail", pw)
	onRequests := watcher.sub(t, "fabric.req.>", "")

	for _, tc := range []struct {
		user, op, subject, queue string
	}{
		// A worker reaches no gateway's takeover, makes no request, takes
		// no copy of every request, reads no events nor anyone's replies,
		// and sees no token.
		{"worker", "pub", "fabric.gw.session.x", ""},
		{"worker", "sub", "fabric.gw.>", ""},
		{"worker", "pub", "fabric.req.demo.echo", ""},
		{"worker", "sub", "fabric.req.>", ""},
		{"worker", "sub", "fabric.req.>", "other"},
		{"worker", "sub", "fabric.evt.*.>", ""},
		{"worker", "sub", "_INBOX.>", ""},
		{"worker", "sub", "_INBOX.gateway.>", ""},
		{"worker", "sub", "fabric.auth.connect", ""},
		{"worker", "pub", "fabric.evt.S.m1", ""}, // R itself: the NATS server's no_responders
		// A worker that calls other routes is a worker for the rest.
		{"caller", "pub", "fabric.gw.session.x", ""},
		{"caller", "sub", "fabric.gw.>", ""},
		{"caller", "sub", "fabric.req.>", ""},
		{"caller", "sub", "_INBOX.>", ""},
		// A gateway serves no request and pushes nothing.
		{"gateway", "sub", "fabric.req.>", ""},
		{"gateway", "sub", "fabric.req.>", "fabric"},
		{"gateway", "pub", "fabric.push.all", ""},
		{"gateway", "sub", "fabric.auth.connect", ""},
		{"gateway", "pub", "$JS.API.STREAM.DELETE.FABRIC_EVENTS", ""},
		// tail only listens.
		{"tail", "pub", "fabric.req.demo.echo", ""},
		{"tail", "pub", "fabric.push.all", ""},
		// The connect hook's responder only answers.
		{"auth", "pub", "fabric.push.all", ""},
		{"auth", "sub", "fabric.evt.*.>", ""},
	} {
		name := fmt.Sprintf("%s %s %s", tc.user, tc.op, tc.subject)
		if tc.queue != "" {
			name += " queue " + tc.queue
		}
		t.Run(name, func(t *testing.T) {
			c := connectAs(t, node, tc.user, pw)
			var err error
			if tc.op == "pub" {
				err = c.nc.Publish(tc.subject, []byte("{}"))
			} else {
				_, err = c.nc.QueueSubscribe(tc.subject, tc.queue, func(*nats.Msg) {})
			}
			if err == nil {
				err = c.nc.Flush()
			}
			if err != nil {
				t.Fatal(err)
			}
			got := c.asyncError(t)
			if !errors.Is(got, nats.ErrPermissionViolation) || !strings.Contains(got.Error(), fmt.Sprintf("%q", tc.subject)) {
				t.Errorf("async error %v, want a permissions violation for %q", got, tc.subject)
			}
			kind := map[string]string{"pub": "Publish", "sub": "Subscription"}[tc.op]
			logged := regexp.MustCompile(`(?m)^.*` + regexp.QuoteMeta(fmt.Sprintf(`/user:%s" - %s Violation - Subject %q`, tc.user, kind, tc.subject)) + `.*$`)
			if _, err := node.waitOutput(logged); err != nil {
				t.Errorf("nats-server did not log the violation (%v):\n%s", err, tail(node.Output()))
			}
		})
	}

	// Nothing refused reached a subscriber.
	if err := gw.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := onTakeover.Pending(); n != 0 {
		t.Errorf("the gateway got %d takeover requests published by workers", n)
	}
	if n, _, _ := onRequests.Pending(); n != 0 {
		t.Errorf("%d requests published by workers or tail went through", n)
	}

	// Without credentials, or with another user's password, no one gets in.
	for _, opts := range [][]nats.Option{nil, {nats.UserInfo("worker", pw["gateway"])}} {
		nc, err := nats.Connect(node.URL(), append(opts, nats.NoReconnect())...)
		if err == nil {
			nc.Close()
			t.Errorf("connected with %d options", len(opts))
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("connect: %v, want an authorization violation", err)
		}
	}

	// The connect hook: the gateway asks, the responder answers once.
	auth := connectAs(t, node, "auth", pw)
	if _, err := auth.nc.QueueSubscribe("fabric.auth.connect", "fabric", func(m *nats.Msg) { _ = m.Respond([]byte(`{"user":"u"}`)) }); err != nil {
		t.Fatal(err)
	}
	if err := auth.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if m, err := gw.nc.Request("fabric.auth.connect", []byte(`{"token":"t"}`), 5*time.Second); err != nil || string(m.Data) != `{"user":"u"}` {
		t.Errorf("connect hook: %v, %v", m, err)
	}

	// A fabric worker run as the gateway user says what it was refused.
	p := node.c.newProcess("misconfigured", node.c.fabric, append([]string{"worker", "--demo", "--nats", node.URL()}, userArgs("gateway", pw)...))
	p.ready = func() error { _, err := p.waitOutput(workerReadyRE); return err }
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.waitOutput(regexp.MustCompile(`(?i)"msg":"nats async error".*permissions violation for subscription to \\"fabric\.req\.demo\.`)); err != nil {
		t.Errorf("the worker did not log its refused subscriptions (%v):\n%s", err, tail(p.Output()))
	}
	if _, err := node.waitOutput(regexp.MustCompile(`user:gateway" - Subscription Violation - Subject "fabric\.req\.demo\.echo", Queue: "fabric"`)); err != nil {
		t.Errorf("nats-server did not log the worker's refused subscription (%v)", err)
	}
	p.Kill()
}

// userConn is a NATS connection as one user that keeps its async errors.
type userConn struct {
	nc   *nats.Conn
	errs chan error
}

func connectAs(t *testing.T, node *Node, user string, pw map[string]string) *userConn {
	t.Helper()
	c := &userConn{errs: make(chan error, 16)}
	var err error
	c.nc, err = nats.Connect(node.URL(), nats.Name("permissions-test-"+user), nats.NoReconnect(),
		nats.UserInfo(user, pw[user]), nats.CustomInboxPrefix("_INBOX."+user),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(c.nc.Close)
	return c
}

func (c *userConn) sub(t *testing.T, subject, queue string) *nats.Subscription {
	t.Helper()
	s, err := c.nc.QueueSubscribeSync(subject, queue)
	if err == nil {
		err = c.nc.Flush()
	}
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.errs:
		t.Fatalf("subscribe %s: %v", subject, err)
	case <-time.After(100 * time.Millisecond):
	}
	return s
}

// asyncError returns the connection's next async error.
func (c *userConn) asyncError(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.errs:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("no async error")
		return nil
	}
}

// addWorker starts a fabric worker with args and waits until it serves.
func (c *Cluster) addWorker(t *testing.T, name string, args []string) *Process {
	t.Helper()
	w := c.newProcess(name, c.fabric, append([]string{"worker", "--nats", c.NATSURLs(), "--shutdown-grace", "10s"}, args...))
	w.ready = func() error { _, err := w.waitOutput(workerReadyRE); return err }
	if err := w.start(); err != nil {
		t.Fatal(err)
	}
	c.Workers = append(c.Workers, w)
	return w
}

// watcher records the subjects a tail user sees.
type watcher struct {
	mu       sync.Mutex
	subjects []string
}

func watch(t *testing.T, url string, pw map[string]string) *watcher {
	t.Helper()
	w := &watcher{}
	nc, err := nats.Connect(url, nats.UserInfo("tail", pw["tail"]), nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	for _, s := range []string{"fabric.evt.*.*.>", "fabric.cancel.*.*", "fabric.push.>"} {
		if _, err := nc.Subscribe(s, func(m *nats.Msg) {
			w.mu.Lock()
			w.subjects = append(w.subjects, m.Subject)
			w.mu.Unlock()
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

// await waits until the watcher has seen a subject matching re.
func (w *watcher) await(t *testing.T, what, re string) {
	t.Helper()
	r := regexp.MustCompile(re)
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		for _, s := range w.subjects {
			if r.MatchString(s) {
				w.mu.Unlock()
				return
			}
		}
		w.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("no %s (%s) seen on NATS", what, re)
}

// pushReaches asks the demo worker, over a session of the gateway at url,
// to push a frame to that session, and waits for it.
func pushReaches(t *testing.T, url string) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{protocol.Subprotocol}, HandshakeTimeout: dialTimeout}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	payload, _ := json.Marshal(demo.PushParams{Type: "demo/echo", Payload: json.RawMessage(`{"pushed":true}`)})
	for _, f := range []map[string]any{
		{"type": protocol.TypeHello, "payload": protocol.Hello{}},
		{"type": demo.Push.Type(), "id": "p1", "payload": json.RawMessage(payload)},
	} {
		if err := ws.WriteJSON(f); err != nil {
			t.Fatal(err)
		}
	}
	for {
		var m protocol.Message
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("no push: %v", err)
		}
		if m.Type == "demo/echo" && m.ID == "" {
			return
		}
	}
}
