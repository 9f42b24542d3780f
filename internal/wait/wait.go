// Package wait lets tests wait for a condition that another goroutine or
// process is about to make true, polling it with a deadline, so that no
// test sleeps for a fixed time and none can hang.
package wait

import (
	"testing"
	"time"
)

// Deadline is how long For waits before it fails the test.
const Deadline = 10 * time.Second

// For polls cond every millisecond until it holds, failing the test with
// what it waited for once Deadline has passed.
func For(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Deadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", Deadline, what)
		}
		time.Sleep(time.Millisecond)
	}
}
