package topology

import "regexp"

// What the processes log when they serve. The fabric's lines are its JSON
// logs (--log-format json); a submatch is the address it listens on.
var (
	// NATSReady: a NATS node accepts clients. A clustered node binds its
	// route port after it says so, and can still die of a port taken
	// meanwhile: wait for NATSRoutesReady instead.
	NATSReady = regexp.MustCompile(`Server is ready`)
	// NATSRoutesReady: a clustered NATS node listens for routes too (it
	// logs this only once the route port is bound).
	NATSRoutesReady = regexp.MustCompile(`Listening for route connections on`)
	// GatewayReady: a gateway listens; the submatch is its host:port.
	GatewayReady = regexp.MustCompile(`"msg":"gateway listening","addr":"([^"]+)"`)
	// EmbeddedNATSReady: a gateway with --embed-nats runs its NATS node;
	// the submatch is the node's client URL.
	EmbeddedNATSReady = regexp.MustCompile(`"msg":"embedded NATS server ready","url":"([^"]+)"`)
	// WorkerReady: a worker takes requests.
	WorkerReady = regexp.MustCompile(`"msg":"worker serving"`)
	// MetricsListening: a worker's --metrics-listen serves; the submatch is
	// its host:port.
	MetricsListening = regexp.MustCompile(`"msg":"metrics listening","addr":"([^"]+)"`)
)
