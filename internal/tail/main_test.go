package tail_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails when a test leaves a goroutine behind: a watcher's loop,
// an event stream, a subscription.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
