package raftstore

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/hashicorp/go-hclog"

	"github.com/linkraft/linkraft/internal/testutil"
)

// failing wraps base so that its write-kind operations fail while fail is
// set.
func failing(base vfs.FS, fail *atomic.Bool) vfs.FS {
	return errorfs.Wrap(base, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if fail.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errorfs.ErrInjected
		}
		return nil
	}))
}

type reported struct {
	op, path string
	err      error
	unlogged int
}

// TestReportWriteErrors: every failed write-kind operation is reported
// (no rate limit here)
// with its operation and path; successful ones, reads, and removing a
// file that is not there are not.
func TestReportWriteErrors(t *testing.T) {
	var fail atomic.Bool
	var got []reported
	dir := t.TempDir()
	p := func(name string) string { return dir + name }
	fs := &reportingFS{FS: failing(vfs.Default, &fail), r: &diskErrorReporter{log: func(op, path string, err error, unlogged int) {
		got = append(got, reported{op, path, err, unlogged})
	}}}

	// Healthy: nothing reported.
	if err := fs.MkdirAll(p("/d"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := fs.Create(p("/d/a"), vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	_ = fs.Remove(p("/d/missing")) // gone already: not a disk failure
	if _, err := fs.Stat(p("/d/missing")); err == nil {
		t.Fatal("a missing file exists")
	}
	if len(got) != 0 {
		t.Fatalf("reports on a healthy disk: %+v", got)
	}

	// Failing: each write-kind operation is reported.
	fail.Store(true)
	steps := []struct {
		op, path string
		do       func() error
	}{
		{"write", p("/d/a"), func() error { _, err := f.Write([]byte("y")); return err }},
		{"write", p("/d/a"), func() error { _, err := f.WriteAt([]byte("y"), 0); return err }},
		{"sync", p("/d/a"), f.Sync},
		{"sync", p("/d/a"), f.SyncData},
		{"sync", p("/d/a"), func() error { _, err := f.SyncTo(1); return err }},
		{"preallocate", p("/d/a"), func() error { return f.Preallocate(0, 10) }},
		{"create", p("/d/b"), func() error { _, err := fs.Create(p("/d/b"), vfs.WriteCategoryUnspecified); return err }},
		{"link", p("/d/c"), func() error { return fs.Link(p("/d/a"), p("/d/c")) }},
		{"rename", p("/d/c"), func() error { return fs.Rename(p("/d/a"), p("/d/c")) }},
		{"remove", p("/d/a"), func() error { return fs.Remove(p("/d/a")) }},
		{"mkdir", p("/e"), func() error { return fs.MkdirAll(p("/e"), 0o755) }},
	}
	for i, s := range steps {
		err := s.do()
		if err == nil {
			t.Fatalf("%s %s succeeded on a failing disk", s.op, s.path)
		}
		if len(got) != i+1 {
			t.Fatalf("%s %s failed (%v) but %d reports, want %d", s.op, s.path, err, len(got), i+1)
		}
		if r := got[i]; r.op != s.op || r.path != s.path || r.err != err {
			t.Errorf("report %+v, want %s %s %v", r, s.op, s.path, err)
		}
	}
	// Reads are not watched (the injector fails only writes, but a read
	// must not be reported even if it fails).
	n := len(got)
	if _, err := fs.Open(p("/d/nope")); err == nil {
		t.Fatal("open of a missing file succeeded")
	}
	if len(got) != n {
		t.Fatalf("a failed read was reported: %+v", got[n:])
	}
}

// TestReportWriteErrorsRateLimited: on a disk that keeps failing, the
// first failure is reported at once, later ones at most once per
// interval with the count of those not reported.
func TestReportWriteErrorsRateLimited(t *testing.T) {
	var got []reported
	r := &diskErrorReporter{every: diskErrorLogEvery, log: func(op, path string, err error, unlogged int) {
		got = append(got, reported{op, path, err, unlogged})
	}}
	boom := fmt.Errorf("boom")
	for range 5 {
		r.report("write", "/x", boom)
	}
	if len(got) != 1 || got[0].unlogged != 0 {
		t.Fatalf("after 5 failures within %s: %+v, want one report", diskErrorLogEvery, got)
	}
	r.mu.Lock()
	r.last = r.last.Add(-2 * diskErrorLogEvery) // the interval has passed
	r.mu.Unlock()
	r.report("sync", "/x", boom)
	if len(got) != 2 || got[1].op != "sync" || got[1].unlogged != 4 {
		t.Fatalf("after the interval: %+v, want a second report counting 4 not logged", got)
	}
}

// TestStoreLogsDiskWriteFailure: a store whose disk fails a WAL write logs
// the failed operation and its error itself, whatever Pebble does next
// (here its fatal commit error, through the Fatal hook).
func TestStoreLogsDiskWriteFailure(t *testing.T) {
	var fail atomic.Bool
	var out testutil.SyncBuffer
	var fatal atomic.Value
	s, err := Open(Options{
		NodeID:  "n1",
		Dir:     "/node",
		Network: testNet{},
		FS:      failing(vfs.NewMem(), &fail),
		Logger:  hclog.New(&hclog.LoggerOptions{Output: &out, Level: hclog.Info}),
		Fatal:   func(msg string) { fatal.Store(msg) },
	})
	if err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v", r)
			}
		}()
		done <- s.DB().Set([]byte("k"), []byte("v"), pebble.Sync)
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a synced write succeeded on a failing disk")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a synced write on a failing disk did not return")
	}
	if msg, _ := fatal.Load().(string); msg == "" {
		t.Error("the Fatal hook was not called")
	}
	log := out.String()
	if !strings.Contains(log, "disk write failed") || !strings.Contains(log, errorfs.ErrInjected.Error()) || !strings.Contains(log, ".log") {
		t.Errorf("the store's log does not name the failed WAL write and its error:\n%s", log)
	}
	fail.Store(false)
	func() {
		defer func() { _ = recover() }() // Pebble keeps its WAL error
		_ = s.Close()
	}()
}
