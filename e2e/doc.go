// Package e2e holds the end-to-end tests that run the built linkraft binary
// as real processes: a three-node cluster and its routers on free ports of
// 127.0.0.1, with nodes killed (SIGKILL) and restarted by the tests. The
// clusters come from package proctest, which robust's process scenarios
// use too.
//
// The tests build the binary themselves (or use $LINKRAFT_BIN when set), so
// `go test ./e2e/` needs nothing installed beyond Go.
package e2e
