//go:build !chaos

package cluster

import "time"

// chaosDuration is TestChaos's length in CI; build with -tags chaos for a
// long run.
const chaosDuration = 15 * time.Second
