package node

import "time"

// SetCreateBatching turns the per-shard create batcher on or off, with at
// most inFlight proposals per shard (0 keeps the default), for the nodes
// started after it, and returns a function that restores the previous
// settings. Benchmarks use it to compare with the previous path.
func SetCreateBatching(on bool, inFlight int) (restore func()) {
	prevOn, prevInFlight := createBatching, maxInFlight
	createBatching = on
	if inFlight > 0 {
		maxInFlight = inFlight
	}
	return func() { createBatching, maxInFlight = prevOn, prevInFlight }
}

// SetBatchLinger sets the batchers' linger for the nodes started after it
// and returns a function that restores the previous one.
func SetBatchLinger(d time.Duration) (restore func()) {
	prev := batchLinger
	batchLinger = d
	return func() { batchLinger = prev }
}
