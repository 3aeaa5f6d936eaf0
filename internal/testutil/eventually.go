// Package testutil holds small helpers shared by the tests of several
// packages (in-process and against real processes or containers) that
// belong to none of them.
package testutil

import (
	"testing"
	"time"
)

// Eventually polls cond every 50 ms until it returns nil, and fails the
// test with cond's last error if timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	EventuallyEvery(t, 50*time.Millisecond, timeout, what, cond)
}

// EventuallyEvery is Eventually polling every interval.
func EventuallyEvery(t testing.TB, every, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(every)
	}
}
