package diskfault

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fatalError is what testLogger.Fatalf panics with, so a test can recover
// Pebble's fatal errors instead of letting them exit the test binary.
type fatalError struct{ msg string }

func (f fatalError) Error() string { return f.msg }

// testLogger sends Pebble's logs to the test and turns Fatalf into a panic
// with a fatalError.
type testLogger struct{ t testing.TB }

func (l testLogger) Infof(format string, args ...interface{}) {}
func (l testLogger) Errorf(format string, args ...interface{}) {
	l.t.Logf("pebble error: "+format, args...)
}
func (l testLogger) Fatalf(format string, args ...interface{}) {
	panic(fatalError{msg: fmt.Sprintf(format, args...)})
}

// catchFatal runs f and returns the fatalError it raised, if any.
func catchFatal(f func() error) (fatal *fatalError, err error) {
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			fatal = &fe
		}
	}()
	return nil, f()
}

func openDB(t *testing.T, fs vfs.FS) (*pebble.DB, error) {
	t.Helper()
	return pebble.Open("db", &pebble.Options{FS: fs, Logger: testLogger{t}})
}

func mustGet(t *testing.T, db *pebble.DB, key, want string) {
	t.Helper()
	v, closer, err := db.Get([]byte(key))
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer func() { _ = closer.Close() }()
	if string(v) != want {
		t.Fatalf("get %s = %q, want %q", key, v, want)
	}
}

func TestInjectedErrorMatches(t *testing.T) {
	var err error = &InjectedError{Op: "sync", Path: "db/000001.log"}
	wrapped := fmt.Errorf("commit: %w", err)
	if !errors.Is(wrapped, ErrInjected) || !errors.Is(wrapped, syscall.EIO) {
		t.Fatalf("%v does not match ErrInjected and EIO", wrapped)
	}
	var ie *InjectedError
	if !errors.As(wrapped, &ie) || ie.Op != "sync" {
		t.Fatalf("errors.As: %+v", ie)
	}
}

func TestModesOnPlainFiles(t *testing.T) {
	fs := Wrap(vfs.NewMem())
	f, err := fs.Create("a", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}

	fs.FailWrites()
	if fs.Mode() != Failing {
		t.Fatalf("mode %v", fs.Mode())
	}
	if _, err := f.Write([]byte("two")); !errors.Is(err, ErrInjected) {
		t.Fatalf("write while failing: %v", err)
	}
	if err := f.Sync(); !errors.Is(err, ErrInjected) {
		t.Fatalf("sync while failing: %v", err)
	}
	if _, err := fs.Create("b", vfs.WriteCategoryUnspecified); !errors.Is(err, ErrInjected) {
		t.Fatalf("create while failing: %v", err)
	}
	if err := fs.Rename("a", "c"); !errors.Is(err, ErrInjected) {
		t.Fatalf("rename while failing: %v", err)
	}
	// Reads are never affected.
	r, err := fs.Open("a")
	if err != nil {
		t.Fatalf("open for read while failing: %v", err)
	}
	buf := make([]byte, 8)
	if n, err := r.ReadAt(buf, 0); string(buf[:n]) != "one" {
		t.Fatalf("read while failing: %q, %v", buf[:n], err)
	}
	_ = r.Close()
	if got := fs.Failed(); got != 4 {
		t.Fatalf("Failed() = %d, want 4", got)
	}

	fs.Heal()
	if _, err := f.Write([]byte("two")); err != nil {
		t.Fatalf("write after heal: %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("sync after heal: %v", err)
	}
}

// TestPebbleWritesFailWhileInjected opens a real Pebble DB on a crashable
// in-memory file system, fails its writes and shows what a node sees: the
// commit is fatal, the DB stays broken after the disk heals, and a restart
// (a new DB on the state the disk held at the crash) recovers every synced
// write and accepts new ones.
func TestPebbleWritesFailWhileInjected(t *testing.T) {
	mem := vfs.NewCrashableMem()
	fs := Wrap(mem)
	db, err := openDB(t, fs)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("before"), []byte("1"), pebble.Sync); err != nil {
		t.Fatal(err)
	}

	fs.FailWrites()
	fatal, err := catchFatal(func() error { return db.Set([]byte("during"), []byte("2"), pebble.Sync) })
	if fatal == nil || !strings.Contains(fatal.msg, "fatal commit error") {
		t.Fatalf("a failed WAL write was not fatal: err %v, fatal %v", err, fatal)
	}
	if fs.Failed() == 0 {
		t.Fatal("no write failed")
	}

	fs.Heal()
	// The WAL keeps its first error: the DB stays broken on a healed disk.
	fatal, err = catchFatal(func() error { return db.Set([]byte("after-heal"), []byte("3"), pebble.Sync) })
	if fatal == nil {
		t.Fatalf("a write on the broken DB after heal was not fatal: err %v", err)
	}

	// The process dies here; the disk holds what was synced.
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	fatal, err = catchFatal(db.Close)
	if fatal != nil || !errors.Is(err, ErrInjected) {
		t.Fatalf("close of the broken DB: err %v, fatal %v; want the injected error", err, fatal)
	}

	db2, err := openDB(t, Wrap(crashed))
	if err != nil {
		t.Fatalf("reopen after heal: %v", err)
	}
	defer func() { _ = db2.Close() }()
	mustGet(t, db2, "before", "1")
	for _, k := range []string{"during", "after-heal"} { // never reached the disk
		if _, _, err := db2.Get([]byte(k)); !errors.Is(err, pebble.ErrNotFound) {
			t.Fatalf("get %s after restart: %v, want not found", k, err)
		}
	}
	if err := db2.Set([]byte("after"), []byte("4"), pebble.Sync); err != nil {
		t.Fatalf("write after restart: %v", err)
	}
	mustGet(t, db2, "after", "4")
}

func TestPebbleOpenFailsWhileInjected(t *testing.T) {
	fs := Wrap(vfs.NewMem())
	fs.FailWrites()
	if _, err := openDB(t, fs); !errors.Is(err, ErrInjected) {
		t.Fatalf("open on a failing disk: %v", err)
	}
	fs.Heal()
	db, err := openDB(t, fs)
	if err != nil {
		t.Fatalf("open after heal: %v", err)
	}
	if err := db.Set([]byte("k"), []byte("v"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	mustGet(t, db, "k", "v")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPebbleSyncStallsUntilResume(t *testing.T) {
	fs := Wrap(vfs.NewMem())
	db, err := openDB(t, fs)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()

	fs.StallWrites()
	t.Cleanup(fs.Heal) // never leave a goroutine blocked
	done := make(chan error, 1)
	go func() { done <- db.Set([]byte("k"), []byte("v"), pebble.Sync) }()

	waitFor(t, "the WAL write to stall", func() bool { return fs.Stalled() > 0 })
	select {
	case err := <-done:
		t.Fatalf("a synced write completed on a stalled disk: %v", err)
	default:
	}
	// Reads still work during the stall.
	if _, _, err := db.Get([]byte("absent")); !errors.Is(err, pebble.ErrNotFound) {
		t.Fatalf("read during stall: %v", err)
	}

	fs.Resume()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("set after resume: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stalled write did not complete after Resume")
	}
	if fs.Stalled() != 0 || fs.Mode() != Healthy {
		t.Fatalf("after resume: stalled %d mode %v", fs.Stalled(), fs.Mode())
	}
	mustGet(t, db, "k", "v")
}

func TestFailWritesWakesStalledOperations(t *testing.T) {
	fs := Wrap(vfs.NewMem())
	f, err := fs.Create("a", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	fs.StallWrites()
	t.Cleanup(fs.Heal)

	const n = 4
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.Write([]byte("x"))
			errs <- err
		}()
	}
	waitFor(t, "every write to stall", func() bool { return fs.Stalled() == n })
	fs.Resume() // no effect on other modes, ends this stall ...
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("write after resume: %v", err)
		}
	}

	fs.StallWrites()
	errc := make(chan error, 1)
	go func() { errc <- f.Sync() }()
	waitFor(t, "the sync to stall", func() bool { return fs.Stalled() == 1 })
	fs.FailWrites() // ... while FailWrites turns a stall into failures
	if err := <-errc; !errors.Is(err, ErrInjected) {
		t.Fatalf("stalled sync after FailWrites: %v", err)
	}
	fs.Resume() // Resume does not heal a failing disk
	if fs.Mode() != Failing {
		t.Fatalf("Resume changed mode %v", fs.Mode())
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{Healthy: "healthy", Failing: "failing", Stalled: "stalled", Mode(9): "Mode(9)"} {
		if got := m.String(); got != want {
			t.Errorf("%d: %q, want %q", int(m), got, want)
		}
	}
	for k := errorfs.OpCreate; k <= errorfs.OpFileFlush; k++ {
		if name := opName(k); name == "" {
			t.Errorf("op %d has no name", k)
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
