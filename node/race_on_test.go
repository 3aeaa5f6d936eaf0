//go:build race

package node_test

// raceEnabled: under the race detector sync.Pool drops items at random and
// instrumentation allocates, so allocation counts are not checked.
const raceEnabled = true
