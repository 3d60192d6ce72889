package cluster

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/seed82ac63c1/fabric/gateway"
	"github.com/seed82ac63c1/fabric/internal/fabrictest"
	"github.com/seed82ac63c1/fabric/subjects"
)

func TestMain(m *testing.M) { Main(m) }

// wait bounds each wait of these tests for requests to end. Requests end
// within a request timeout of their last event; this only bounds a broken
// run.
const wait = 20 * time.Second

// durableWait bounds the waits of durable tests through a NATS node's
// death: the store may take a leader election, and the workers an ack
// timeout, before the events lost in the node are stored again.
const durableWait = 60 * time.Second

// wantOutcome fails the test unless every id of rec ended with outcome.
func wantOutcome(t *testing.T, rec *Client, outcome string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if got := rec.Outcome(id); got != outcome {
			r := rec.Request(id)
			t.Errorf("%s: outcome %q, want %q; events %s", id, got, outcome, formatEvents(r.Events))
		}
	}
}

// settle ends a fault test: new requests work on every client, the
// recording holds the invariants, and once the clients close the gateways
// are back to their baseline.
func settle(t *testing.T, c *Cluster, recs []*Client) {
	t.Helper()
	for _, rec := range recs {
		serve(t, rec, 2)
	}
	Check(t, recs...)
	for _, rec := range recs {
		rec.Close(t)
	}
	c.CheckResources(t)
}

// serve sends n short requests on rec and checks that each succeeds.
func serve(t *testing.T, rec *Client, n int) {
	t.Helper()
	var ids []string
	for range n {
		ids = append(ids, rec.Count(3, 5))
	}
	rec.Wait(t, wait, ids...)
	wantOutcome(t, rec, "ok", ids...)
}

// A worker killed mid-stream sends nothing more: its requests end with
// :error{timeout} and one :finish after the gateway's inactivity timeout,
// and the other workers serve the next requests.
func TestWorkerKilledMidStream(t *testing.T) {
	c := Start(t, Options{Workers: 1})
	rec := c.NewClient(t, 0)
	// On the only worker, w0.
	ids := []string{rec.Count(50, 100), rec.Count(50, 100)}
	for _, id := range ids {
		rec.WaitEvents(t, id, 2)
	}
	c.AddWorker()
	c.AddWorker()
	c.Workers[0].Kill()

	rec.Wait(t, wait, ids...)
	wantOutcome(t, rec, "timeout", ids...)
	serve(t, rec, 6)
	Check(t, rec)
	rec.Close(t)
	c.CheckResources(t)
}

// A stopped worker looks like a dead one: its request times out. When it
// wakes, it gets the gateway's cancel and sends its last events, which the
// gateway drops: the client sees nothing after the :finish.
func TestWorkerStoppedMidStream(t *testing.T) {
	c := Start(t, Options{Workers: 1})
	rec := c.NewClient(t, 0)
	id := rec.Count(50, 100) // on w0
	rec.WaitEvents(t, id, 2)
	c.AddWorker()

	// Watch the request's events on the gateway's NATS node: what the
	// worker sends after it wakes.
	gw := c.Gateways[0]
	nc := c.NATS[gw.NATSNode()].Connect(t)
	sub, err := nc.SubscribeSync(subjects.MustSpace("fabric").Reply(rec.Welcome().SessionID, id) + ".>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	c.Workers[0].Stop()
	rec.Wait(t, wait, id)
	wantOutcome(t, rec, "timeout", id)
	got := len(rec.Request(id).Events) // progress…, error, finish

	c.Workers[0].Cont()
	late := 0
	for {
		m, err := sub.NextMsg(wait)
		if err != nil {
			t.Fatalf("the worker sent no finish after it woke: %v", err)
		}
		if seq, _ := strconv.Atoi(m.Header.Get(subjects.HeaderSeq)); seq >= got-1 {
			late++ // numbered at or after the gateway's :error
		}
		if strings.HasSuffix(m.Subject, ".finish") {
			break
		}
	}
	t.Logf("the woken worker sent %d events after the timeout", late)
	if late == 0 {
		t.Fatal("the woken worker sent nothing after the timeout: the test proves nothing")
	}
	// One round trip through the session's event subscription, behind the
	// worker's finish: the gateway has handled every late event by now.
	serve(t, rec, 1)
	if n := len(rec.Request(id).Events); n != got {
		t.Errorf("%d events after the :finish", n-got)
	}
	serve(t, rec, 4)
	Check(t, rec)
	rec.Close(t)
	c.CheckResources(t)
}

// With every worker gone, a request fails with no_responders at once, not
// at a timeout.
func TestAllWorkersGone(t *testing.T) {
	c := Start(t, Options{Workers: 2})
	rec := c.NewClient(t, 0)
	serve(t, rec, 2)
	for _, w := range c.Workers {
		w.Kill()
	}
	// Until every node has dropped the workers' interest, a request may
	// still be routed to them.
	fabrictest.Eventually(t, wait, func() bool {
		id := rec.Send("demo/echo", "anyone?")
		rec.Wait(t, wait, id)
		return rec.Outcome(id) == "no_responders"
	})
	var ids []string
	for range 5 {
		ids = append(ids, rec.Send("demo/echo", "anyone?"))
	}
	rec.Wait(t, wait, ids...)
	wantOutcome(t, rec, "no_responders", ids...)
	Check(t, rec)
	rec.Close(t)
	c.CheckResources(t)
}

// A gateway told to stop closes its clients with 1001 and keeps their
// sessions for the handoff window: they resume on the other gateway. In
// core mode their requests in flight are lost and come back interrupted,
// numbered on from what the client had; new requests work.
func TestGatewayTerminated(t *testing.T) {
	c := Start(t, Options{Workers: 2})
	recs := []*Client{c.NewClient(t, 0), c.NewClient(t, 0), c.NewClient(t, 0)}
	ids := make([]string, len(recs))
	for i, rec := range recs {
		ids[i] = rec.Count(50, 100)
		rec.WaitEvents(t, ids[i], 2)
	}

	c.Gateways[0].Signal(syscall.SIGTERM)
	for i, rec := range recs {
		if code := rec.WaitDropped(t); code != websocket.CloseGoingAway {
			t.Errorf("%s: close %d, want 1001", rec.Name, code)
		}
		before := rec.Welcome().SessionID
		w := rec.Resume(t, 1)
		if !w.Resumed || w.SessionID != before || w.Gateway != "gw1" {
			t.Errorf("%s: welcome %+v, want session %s resumed on gw1", rec.Name, w, before)
		}
		rec.Wait(t, wait, ids[i])
		wantOutcome(t, rec, "interrupted", ids[i])
		if r := rec.Request(ids[i]); len(r.Resent) != 1 {
			t.Errorf("%s: re-sent %v", ids[i], r.Resent)
		}
	}
	if code := c.Gateways[0].WaitExit(); code != 0 {
		t.Errorf("gw0 exited with %d", code)
	}
	settle(t, c, recs)
}

// A gateway killed takes its sessions with it: in core mode nothing can
// resume them, so its clients get a new session on the other gateway and
// end their unfinished requests themselves. New requests work there, and on
// the gateway once restarted.
func TestGatewayKilled(t *testing.T) {
	c := Start(t, Options{Workers: 2})
	recs := []*Client{c.NewClient(t, 0), c.NewClient(t, 0)}
	ids := make([]string, len(recs))
	for i, rec := range recs {
		ids[i] = rec.Count(50, 100)
		rec.WaitEvents(t, ids[i], 2)
	}

	c.Gateways[0].Kill()
	for i, rec := range recs {
		if code := rec.WaitDropped(t); code != websocket.CloseAbnormalClosure {
			t.Errorf("%s: close %d, want a drop (1006)", rec.Name, code)
		}
		before := rec.Welcome().SessionID
		w := rec.Resume(t, 1)
		t.Logf("%s: resume on gw1 after a SIGKILL: resumed %v", rec.Name, w.Resumed)
		if w.Resumed || w.SessionID == before {
			t.Errorf("%s: welcome %+v: a core-mode session resumed after its gateway died", rec.Name, w)
		}
		wantOutcome(t, rec, "abandoned", ids[i])
		serve(t, rec, 2)
	}

	c.Gateways[0].Restart()
	again := c.NewClient(t, 0)
	serve(t, again, 2)
	recs = append(recs, again)
	Check(t, recs...)
	for _, rec := range recs {
		rec.Close(t)
	}
	c.CheckResources(t)
}

// A NATS node killed under a gateway and workers: they reconnect to the
// other nodes, new requests succeed again within seconds, and the requests
// in flight end with exactly one :finish, their whole result or an
// explicit error. The node, restarted on its port and store, rejoins.
func TestNATSNodeKilled(t *testing.T) {
	c := Start(t, Options{Workers: 3})
	node := c.Gateways[0].NATSNode()
	var moved []*Process // the processes on that node
	for _, p := range append([]*Process{c.Gateways[0].Process, c.Gateways[1].Process}, c.Workers...) {
		if p.NATSNode() == node {
			moved = append(moved, p)
		}
	}
	t.Logf("killing n%d, under %d processes", node+1, len(moved))

	var recs []*Client
	for i := range 4 {
		rec := c.NewClient(t, i%2)
		recs = append(recs, rec)
		for range 2 {
			rec.WaitEvents(t, rec.Count(30, 100), 1)
		}
	}
	c.NATS[node].Kill()

	fabrictest.Eventually(t, wait, func() bool {
		for _, p := range moved {
			if p.Reconnects() == 0 || p.NATSNode() == node {
				return false
			}
		}
		return true
	})
	for _, rec := range recs {
		// While its NATS connection is down a gateway fails requests with
		// an explicit error: try until one succeeds.
		fabrictest.Eventually(t, wait, func() bool {
			id := rec.Count(2, 5)
			rec.Wait(t, wait, id)
			return rec.Outcome(id) == "ok"
		})
	}
	for _, rec := range recs {
		rec.Wait(t, wait)
	}
	t.Logf("after the kill: %s", formatOutcomes(Outcomes(recs...)))

	c.NATS[node].Restart()
	settle(t, c, recs)
}

// A NATS node dying under a gateway must not lose events silently: a
// request whose events were lost on the way ends with an explicit error
// (or gets them all), never with a gap in seq and a :response. Fast
// streams make a loss all but certain while the gateway reconnects. In
// durable mode, with the store replicated on the three nodes, nothing is
// lost at all: the workers publish each event again until the store has
// it, and the gateway replays from the store what did not reach it live,
// across the store's leader election.
func TestNATSFailureLosesNothingSilently(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(fmt.Sprintf("durable=%v", durable), func(t *testing.T) {
			opts := Options{Gateways: 1, Workers: 2}
			if durable {
				opts.GatewayArgs = []string{"--durable", "--durable-replicas", "3", "--durable-storage", "memory"}
			}
			c := Start(t, opts)
			var recs []*Client
			for range 4 {
				rec := c.NewClient(t, 0)
				recs = append(recs, rec)
				for range 3 {
					rec.WaitEvents(t, rec.Count(200, 5), 5)
				}
			}
			c.NATS[c.Gateways[0].NATSNode()].Kill()
			for _, rec := range recs {
				rec.Wait(t, durableWait)
			}
			Check(t, recs...)
			outcomes := Outcomes(recs...)
			t.Logf("outcomes: %s", formatOutcomes(outcomes))
			if durable && outcomes["ok"] != 12 {
				t.Errorf("outcomes %s, want all 12 ok: durable mode loses nothing", formatOutcomes(outcomes))
			}
		})
	}
}

// A NATS node frozen (SIGSTOP) under a gateway and its workers is noticed
// in seconds, not minutes: their pings go unanswered and they move to the
// other nodes, whose routes to it time out, and the store elects new
// leaders. In durable mode the requests in flight finish whole, as long as
// the request timeout outlasts that (the default 30s does; the workers'
// silence meanwhile is indistinguishable from a frozen worker's).
func TestNATSNodeFrozen(t *testing.T) {
	// The default request timeout: 10 s can end before a frozen stream
	// leader is noticed (4–6 s) and replaced (2–9 s).
	c := Start(t, Options{Gateways: 1, Workers: 2, RequestTimeout: gateway.DefaultRequestTimeout,
		GatewayArgs: []string{"--durable", "--durable-replicas", "3", "--durable-storage", "memory"}})
	node := c.Gateways[0].NATSNode()
	var recs []*Client
	for range 4 {
		rec := c.NewClient(t, 0)
		recs = append(recs, rec)
		for range 2 {
			rec.WaitEvents(t, rec.Count(100, 20), 3)
		}
	}
	frozen := time.Now()
	c.NATS[node].Stop()
	fabrictest.Eventually(t, durableWait, func() bool { return c.Gateways[0].NATSNode() != node })
	t.Logf("the gateway left the frozen node n%d after %s", node+1, time.Since(frozen).Round(100*time.Millisecond))
	for _, rec := range recs {
		rec.Wait(t, durableWait)
	}
	Check(t, recs...)
	if outcomes := Outcomes(recs...); outcomes["ok"] != 8 {
		t.Errorf("outcomes %s, want all 8 ok", formatOutcomes(outcomes))
	}
	c.NATS[node].Cont()
	settle(t, c, recs)
}

// Workers restarted one at a time under a steady load lose nothing: each
// drains on SIGTERM, finishing what it runs while NATS sends new requests
// to the others.
func TestRollingWorkerRestart(t *testing.T) {
	c := Start(t, Options{Workers: 3, RequestTimeout: 10 * time.Second})
	var recs []*Client
	for i := range 4 {
		recs = append(recs, c.NewClient(t, i%2))
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, rec := range recs {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					rec.Await(wait, rec.Count(5, 20))
				}
			}()
		}
	}
	time.Sleep(300 * time.Millisecond) // the load runs
	for _, w := range c.Workers {
		w.Term()
		w.Restart()
		time.Sleep(200 * time.Millisecond) // the load runs on the new set
	}
	close(stop)
	wg.Wait()
	for _, rec := range recs {
		rec.Wait(t, wait)
	}
	Check(t, recs...)
	outcomes := Outcomes(recs...)
	if len(outcomes) != 1 || outcomes["ok"] == 0 {
		t.Errorf("outcomes %s, want every request ok", formatOutcomes(outcomes))
	}
	for _, rec := range recs {
		rec.Close(t)
	}
	c.CheckResources(t)
}

// The cleanup ends every process a cluster started, restarted and stopped
// ones included, and frees their ports.
func TestCleanupEndsEveryProcess(t *testing.T) {
	var pids, ports []int
	t.Run("cluster", func(t *testing.T) {
		c := Start(t, Options{Gateways: 1, Workers: 2})
		c.Gateways[0].Kill()
		c.Gateways[0].Restart()
		c.Workers[0].Stop()
		c.NATS[2].Stop()
		pids = c.PIDs()
		for _, n := range c.NATS {
			ports = append(ports, n.ClientPort, n.ClusterPort, n.HTTPPort)
		}
		_, port, _ := net.SplitHostPort(c.Gateways[0].HTTPURL()[len("http://"):])
		p, _ := strconv.Atoi(port)
		ports = append(ports, p)
	})
	if want := 3 + 2 + 2; len(pids) != want {
		t.Errorf("%d processes started, want %d", len(pids), want)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d still alive after cleanup", pid)
		}
	}
	for _, port := range ports {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Errorf("port %d still taken after cleanup: %v", port, err)
			continue
		}
		ln.Close()
	}
}
