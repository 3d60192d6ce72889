// Package bench is `fabric bench`: a load generator that measures a fabric
// it starts itself, as child processes of the same binary — a NATS server
// (`fabric nats-server`), a gateway (`fabric gateway`, core or durable) and
// a demo worker (`fabric worker --demo`) — from a process of its own, so
// that what it measures is the gateway and not the load generator.
//
// A scenario ([Idle], [Latency], [Storm], [Throughput], [Resume]) returns a
// [Report]: latencies as percentiles of raw samples kept in HDR histograms
// ([Latencies]), plain values (bytes per connection, connections per
// second), the settings, and the machine it ran on ([DescribeMachine]). [Report.WriteTable] prints it
// for people, and encoding/json writes it for tools.
//
// The latency scenario runs its baselines in the same run, from the same
// process: raw NATS request/reply over TCP against [ServeResponder] (a
// child: `fabric bench responder`), the same over NATS's own WebSocket
// listener, a plain WebSocket echo server ([ServeEcho], a child:
// `fabric bench echo-server`) as the floor, and a bare WebSocket-to-NATS
// relay ([ServeRelay]) as a gateway's floor.
//
// Latency and Throughput also measure the fabric in its other topology,
// as "fabric-embedded": a second gateway that runs the NATS node itself
// (`fabric gateway --embed-nats`) and a worker connected to that node.
//
// Throughput compares the fabric's saturation with the NATS-WebSocket
// baseline's, at the same connections and requests in flight; Resume
// starts a second gateway (sharing the first's resume secret), kills the
// first and follows its clients to the other.
//
// A scenario runs alone: its children and temporary directory live for one
// call and are stopped and removed before it returns, on success or not.
// [Latencies] is safe for concurrent use; a [Report] is not.
package bench
