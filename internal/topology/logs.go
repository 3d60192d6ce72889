package topology

import "regexp"

// What the processes log when they serve. The fabric's lines are its JSON
// logs (--log-format json); a submatch is the address it listens on.
var (
	// NATSReady: a NATS node accepts clients.
	NATSReady = regexp.MustCompile(`Server is ready`)
	// GatewayReady: a gateway listens; the submatch is its host:port.
	GatewayReady = regexp.MustCompile(`"msg":"gateway listening","addr":"([^"]+)"`)
	// WorkerReady: a worker takes requests.
	WorkerReady = regexp.MustCompile(`"msg":"worker serving"`)
	// MetricsListening: a worker's --metrics-listen serves; the submatch is
	// its host:port.
	MetricsListening = regexp.MustCompile(`"msg":"metrics listening","addr":"([^"]+)"`)
)
