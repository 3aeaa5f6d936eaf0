//go:build race

package clicks

// raceEnabled: under the race detector instrumentation allocates, so
// allocation counts are not checked.
const raceEnabled = true
