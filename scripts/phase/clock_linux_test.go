package main

import "testing"

// TestMonotonic checks that monotonic tracks CLOCK_MONOTONIC as read by a
// system call, which is what another process's stamps are in.
func TestMonotonic(t *testing.T) {
	for range 3 {
		a := monotonic()
		b := clockMonotonic()
		c := monotonic()
		if b < a-1e-3 || b > c+1e-3 {
			t.Fatalf("CLOCK_MONOTONIC %.6f outside [%.6f, %.6f]", b, a, c)
		}
	}
}
