// Package cluster runs a fabric of real processes on loopback for fault
// tests: a NATS cluster (`fabric nats-server` processes with routes and
// JetStream), `fabric gateway` processes sharing a resume secret, and
// `fabric worker --demo` processes, every one of which a test can SIGKILL,
// SIGTERM, SIGSTOP, SIGCONT and restart.
//
//	c := cluster.Start(t, cluster.Options{NATS: 3, Gateways: 2, Workers: 3})
//	rec := c.NewClient(t, 0)
//	id := rec.Count(20, 100)
//	c.Workers[0].Kill()
//	rec.Wait(t, 10*time.Second, id)
//	cluster.Check(t, rec)
//
// Main types:
//   - [Cluster]: the processes; [Start] builds the fabric binary once per
//     test binary (the NATS nodes are `fabric nats-server`: nats-server from
//     the module's dependency), starts NATS, workers and gateways, and waits
//     until each serves. Their configuration, ports and health checks are
//     internal/topology's, which `fabric cluster` uses too; every child dies
//     with the test binary (on Linux).
//     t.Cleanup kills every process it started, restarts included, and
//     fails the test if one exited on its own, panicked or reported a data
//     race.
//   - [Process], [Node], [Gateway]: one process and what a test does to it.
//     A restarted NATS node keeps its ports and store, so it rejoins; a
//     restarted gateway listens on a new port.
//   - [Client]: a raw WebSocket client that records every frame per request
//     id, and resumes its session on another gateway, re-sending its
//     unfinished requests with "after" (by hand, or automatically).
//   - [Check] and [Violations]: the invariants over the recordings (one
//     :finish per request, no event to another session, contiguous seq, no
//     silent loss); [Cluster.CheckResources]: each gateway's goroutines,
//     file descriptors, connections and sessions back to their baseline.
//
// Ports are chosen free on 127.0.0.1; nothing listens elsewhere. A package
// using clusters should run its tests through [Main], which removes the
// built binaries at the end.
//
// Concurrency: methods that take a testing.TB, and those that act on a
// process (Kill, Term, Stop, Cont, Restart…), belong to the test's
// goroutine; a Client's other methods and a process's accessors may be
// called from any goroutine.
package cluster
