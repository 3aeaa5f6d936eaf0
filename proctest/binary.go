// Package proctest runs linkraft clusters of real processes for tests: the
// built linkraft binary as storage nodes and routers on free ports of
// 127.0.0.1, each node with its own data directory, started, killed
// (SIGKILL), stopped (SIGTERM), paused (SIGSTOP) and restarted by the test.
// Packages e2e and robust share it.
//
//	c := proctest.Start(t, proctest.Options{Proxies: true})
//	c.Kill("n1"); c.Restart("n1"); c.WaitCaughtUp("n1", time.Minute)
//	resp, err := http.Get(c.URL("r1") + "/" + code)
//
// # Binaries
//
// The tests use $LINKRAFT_BIN when it is set (make test builds bin/linkraft
// and sets it) and otherwise build the binary once per test binary into a
// temporary directory, so `go test ./e2e/` needs nothing but Go. A cluster
// with Options.DiskFaults runs its nodes from the faultinject build
// ($LINKRAFT_FAULTINJECT_BIN, else built with -tags faultinject the same
// way): that build puts each node's Pebble DB on a diskfault.FS that the
// test drives through a control file (Cluster.SetDisk). The production
// build has no fault code. Call Main from TestMain so the built binaries
// are removed at the end.
//
// # Faults
//
// With Options.Proxies every connection between processes goes through a
// faultproxy: the routers reach node j through RPCProxy(j), and node i
// dials node j's Raft port through RaftProxy(i, j), so a test can cut,
// drop or blackhole any link, one way or both. Each process then reads its
// own copy of the cluster file, naming the proxies as its peers.
//
// Every process is killed at the test's cleanup; when the test failed, the
// tail of every process's output is logged.
package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The environment variables that name prebuilt binaries.
const (
	// BinEnv names the linkraft binary to test (the production build).
	BinEnv = "LINKRAFT_BIN"
	// FaultBinEnv names a linkraft binary built with -tags faultinject.
	FaultBinEnv = "LINKRAFT_FAULTINJECT_BIN"
)

// builds holds the binaries built by this test binary, one per build tag
// set ("" for the production build).
var builds = struct {
	sync.Mutex
	dir  string
	bins map[string]*build
}{bins: make(map[string]*build)}

type build struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the linkraft binary: $LINKRAFT_BIN, or one built once per
// test binary.
func Binary(t testing.TB) string {
	t.Helper()
	return binary(t, BinEnv, "")
}

// FaultBinary returns the linkraft binary built with the faultinject tag:
// $LINKRAFT_FAULTINJECT_BIN, or one built once per test binary.
func FaultBinary(t testing.TB) string {
	t.Helper()
	return binary(t, FaultBinEnv, "faultinject")
}

func binary(t testing.TB, env, tags string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	builds.Lock()
	b := builds.bins[tags]
	if b == nil {
		b = &build{}
		builds.bins[tags] = b
	}
	builds.Unlock()
	b.once.Do(func() { b.path, b.err = goBuild(tags) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// goBuild builds cmd/linkraft with the given tags into the shared
// temporary directory.
func goBuild(tags string) (string, error) {
	builds.Lock()
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "linkraft-proctest-bin-")
		if err != nil {
			builds.Unlock()
			return "", fmt.Errorf("proctest: temp dir for the binary: %w", err)
		}
		builds.dir = dir
	}
	dir := builds.dir
	builds.Unlock()
	name := "linkraft"
	args := []string{"build", "-o"}
	if tags != "" {
		name += "-" + tags
		args = append(args, filepath.Join(dir, name), "-tags", tags)
	} else {
		args = append(args, filepath.Join(dir, name))
	}
	args = append(args, "github.com/linkraft/linkraft/cmd/linkraft")
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("proctest: go %v: %w\n%s", args, err, out)
	}
	return filepath.Join(dir, name), nil
}

// Main runs the tests and then removes the binaries they built; use it as
// os.Exit(proctest.Main(m)) in TestMain.
func Main(m *testing.M) int {
	code := m.Run()
	builds.Lock()
	defer builds.Unlock()
	if builds.dir != "" {
		_ = os.RemoveAll(builds.dir)
		builds.dir = ""
	}
	return code
}
