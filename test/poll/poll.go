// Package poll waits in tests for something that happens elsewhere (a process, a controller, a peer) to show.
package poll

import (
	"testing"
	"time"
)

// Until calls check every interval until it returns nil, and fails the test when timeout passes first, with what
// and check's last error (which should say what it saw).
func Until(t testing.TB, timeout, interval time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %v", what, timeout, err)
		}
		time.Sleep(interval)
	}
}
