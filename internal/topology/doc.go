// Package topology describes a fabric of processes on one machine, as
// `fabric cluster`, `fabric bench` and the test harness internal/cluster
// start it: NATS
// nodes clustered with JetStream, `fabric gateway` and `fabric worker`
// processes.
//
// It owns what the two share: a node's configuration file ([Config]), free
// loopback ports ([FreePorts]), the log lines that say a process serves
// ([NATSReady], [NATSRoutesReady], [GatewayReady], [WorkerReady],
// [MetricsListening]) and a log of a child's output to find them in
// ([LineLog]), the
// monitoring checks that say the NATS cluster has formed ([Formed]) and knows
// a worker ([KnowsWorker]), and a child process that dies with its parent
// ([Command]). Starting, watching and stopping the processes stays with each
// user: a test fails on what a command line reports.
//
// Everything here is safe for concurrent use.
package topology
