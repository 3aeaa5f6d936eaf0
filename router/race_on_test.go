//go:build race

package router

// raceEnabled: under the race detector sync.Pool drops items at random and
// instrumentation allocates, so allocation counts of pooled paths are not
// checked.
const raceEnabled = true
