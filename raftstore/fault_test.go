package raftstore

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/hashicorp/raft"
)

// TestWALFailureIsFatal: when the disk refuses a WAL write, StoreLogs must
// not report success; Pebble declares the error fatal and the Fatal hook
// runs (fail-stop), and what was acknowledged before is intact on restart.
func TestWALFailureIsFatal(t *testing.T) {
	var fail atomic.Bool
	mem := vfs.NewCrashableMem()
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if fail.Load() && strings.HasSuffix(op.Path, ".log") && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errorfs.ErrInjected
		}
		return nil
	}))
	var fatal atomic.Value
	o := DefaultPebbleOptions()
	o.FS = fs
	o.Logger = pebbleLogger{l: testLogger(t), fatal: func(msg string) { fatal.Store(msg) }}
	db, err := pebble.Open("/db", o)
	if err != nil {
		t.Fatal(err)
	}
	s := NewLogStore(db, 1)
	if err := s.StoreLogs([]*raft.Log{mkLog(1, 1, "a"), mkLog(2, 1, "b")}); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	stored := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				stored <- fmt.Errorf("panic: %v", r)
			}
		}()
		stored <- s.StoreLog(mkLog(3, 1, "c"))
	}()
	if err := <-stored; err == nil {
		t.Fatal("StoreLog succeeded on a failing WAL")
	}
	if msg, _ := fatal.Load().(string); msg == "" {
		t.Fatal("the Fatal hook was not called")
	}
	// The process would stop here. What a restart finds: the synced
	// entries.
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	// Release the failed DB's goroutines (the disk works again).
	fail.Store(false)
	func() {
		defer func() { _ = recover() }()
		_ = db.Close()
	}()
	db2 := openTestDB(t, crashed, "/db")
	defer db2.Close()
	s2 := NewLogStore(db2, 1)
	if f, l := indexes(t, s2); f != 1 || l != 2 {
		t.Fatalf("after restart: first=%d last=%d, want 1 2", f, l)
	}
}
