// Package failover measures what a gateway crash costs the clients of a
// durable fabric: two `fabric gateway --durable` processes share an
// embedded NATS server and a demo worker; clients stream through both; one
// gateway is SIGKILLed; its clients reconnect to the other, resume and
// re-send their requests with "after".
//
// TestFailoverLosesNothing runs it with a few clients in CI and checks
// that every request completes with every event exactly once, in order.
// BenchmarkFailover runs it with 1,000 clients and reports the time from
// the kill to each client's new welcome (reconnect) and to its first
// replayed event (resume), p50 and p99, and the events lost and duplicated:
//
//	go test -run '^$' -bench Failover -benchtime 1x ./e2e/failover
package failover
