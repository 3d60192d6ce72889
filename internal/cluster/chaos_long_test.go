//go:build chaos

package cluster

import "time"

// chaosDuration is TestChaos's length with -tags chaos, outside CI:
//
//	go test -tags chaos -run TestChaos -timeout 30m ./internal/cluster
const chaosDuration = 5 * time.Minute
