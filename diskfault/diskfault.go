// Package diskfault is a Pebble file system (vfs.FS) whose writes can be made
// to fail or to stall at run time, for robustness tests of storage nodes.
//
// It is pebble's own vfs/errorfs wrapper driven by a switchable injector:
//
//	fs := diskfault.Wrap(vfs.Default)       // or vfs.NewMem() in tests
//	store, err := raftstore.Open(raftstore.Options{FS: fs, ...})
//	fs.FailWrites()  // every write-kind operation returns an I/O error
//	fs.StallWrites() // every write-kind operation blocks ...
//	fs.Resume()      // ... until Resume (or Heal)
//	fs.Heal()        // back to normal
//
// A test drives the disk of another process through a control file: the
// process runs fs.Watch(path, ...) (linkraft node does in its faultinject
// build, path from $LINKRAFT_DISKFAULT_CONTROL), the test calls
// SetControl(path, Failing) and waits for AppliedMode to report it.
//
// Write-kind operations are those errorfs classifies as writes: file Write,
// WriteAt, Sync, SyncData, SyncTo, Flush and Preallocate, and Create, Link,
// Remove, RemoveAll, Rename, ReuseForWrite, MkdirAll and Lock. Reads are
// never affected, and neither is closing a file. An injected error matches
// [ErrInjected] and syscall.EIO with errors.Is.
//
// # What Pebble does when a write fails
//
// Pebble cannot recover from a failed WAL write or sync (pebble v2.1.7):
//
//   - The WAL's flusher goroutine (record.LogWriter) records the first write
//     or sync error and keeps it: every later commit that waits for the WAL
//     gets that same error, even after the disk is healthy again.
//   - A commit that fails in the commit pipeline is fatal: DB.Apply (and so
//     Set, Delete and Batch.Commit) calls Options.Logger.Fatalf("pebble: fatal
//     commit error: ..."). Pebble's default logger then exits the process
//     (os.Exit(1)), and so does raftstore's unless raftstore.Options.Fatal
//     says otherwise (it must not return). Either way the DB is not
//     usable any more and the process must not go on serving from it;
//     DB.Close returns the WAL's error.
//   - A failed MANIFEST write or sync (after a flush or compaction) is
//     fatal the same way (Logger.Fatalf in the version set).
//   - A failed flush or compaction is reported to the EventListener
//     (BackgroundError) and retried later; the WAL still holds its data.
//
// The tests of this package show the first three on a real Pebble DB.
//
// So a storage node must treat a disk write failure as fatal: exit (or let
// the panic end the process) and be restarted. It must not acknowledge
// anything after the failure, and on restart Pebble replays its WAL; what it
// had synced before the failure is there, a write whose commit failed may or
// may not be (its outcome is unknown to the client). The robustness scenario
// does exactly that: inject a failure, expect the node process to die,
// restart it, and check the history.
//
// A stalled disk is different: nothing fails, commits just wait. Pebble's
// disk-health checker (Options.WithFSDefaults) only reports a slow operation
// to EventListener.DiskSlow after 5s; it does not fail it. A Raft leader
// whose disk stalls keeps sending heartbeats (hashicorp/raft sends them from
// per-follower goroutines that need no disk) while its own log appends wait,
// so without help the shard stops committing without an election. The
// storage node detects the stall itself and gives up its leaderships (package
// node, diskhealth.go); the scenario checks that the leadership moves, that
// the shard commits during the stall, and that the writes blocked meanwhile
// either complete after Resume or come back with an unknown outcome, never
// as a lost ack.
package diskfault

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// ErrInjected matches (errors.Is) every error this package injects.
var ErrInjected = errors.New("diskfault: injected disk write failure")

// InjectedError is the error returned by a failed write-kind operation. It
// matches ErrInjected and syscall.EIO.
type InjectedError struct {
	// Op is the operation that failed, for example "write" or "sync".
	Op string
	// Path is the file or directory it was applied to.
	Path string
}

// Error implements error.
func (e *InjectedError) Error() string {
	return fmt.Sprintf("diskfault: injected I/O error on %s %s", e.Op, e.Path)
}

// Is reports whether target is ErrInjected.
func (e *InjectedError) Is(target error) bool { return target == ErrInjected }

// Unwrap returns syscall.EIO: to its caller the failure looks like a disk
// I/O error.
func (e *InjectedError) Unwrap() error { return syscall.EIO }

// Mode is the injector's current behaviour.
type Mode int

const (
	// Healthy passes every operation through.
	Healthy Mode = iota
	// Failing makes write-kind operations return an InjectedError.
	Failing
	// Stalled makes write-kind operations block until the mode changes.
	Stalled
)

// String implements fmt.Stringer.
func (m Mode) String() string {
	switch m {
	case Healthy:
		return "healthy"
	case Failing:
		return "failing"
	case Stalled:
		return "stalled"
	default:
		return fmt.Sprintf("Mode(%d)", int(m))
	}
}

// FS is a vfs.FS that injects write faults. Create it with Wrap; the zero
// value is not usable. Its controls are safe for concurrent use with each
// other and with the file system's operations.
type FS struct {
	*errorfs.FS
	inj *injector
}

var _ vfs.FS = (*FS)(nil)

// Wrap returns a healthy FS that forwards to fs until a fault is switched on.
func Wrap(fs vfs.FS) *FS {
	inj := &injector{}
	return &FS{FS: errorfs.Wrap(fs, inj), inj: inj}
}

// FailWrites makes every write-kind operation fail with an InjectedError
// until Heal. Operations stalled by StallWrites wake up and fail.
func (f *FS) FailWrites() { f.inj.setMode(Failing) }

// StallWrites makes every write-kind operation block until Resume or Heal
// (or FailWrites, which makes the blocked operations fail).
func (f *FS) StallWrites() { f.inj.setMode(Stalled) }

// Resume ends a stall: the blocked operations go on. It does nothing in
// the other modes.
func (f *FS) Resume() {
	f.inj.mu.Lock()
	defer f.inj.mu.Unlock()
	if f.inj.mode == Stalled {
		f.inj.setModeLocked(Healthy)
	}
}

// Heal ends every fault: blocked operations go on and new ones pass.
func (f *FS) Heal() { f.inj.setMode(Healthy) }

// Mode returns the current mode.
func (f *FS) Mode() Mode {
	f.inj.mu.Lock()
	defer f.inj.mu.Unlock()
	return f.inj.mode
}

// Stalled returns how many operations are blocked by a stall now.
func (f *FS) Stalled() int { return int(f.inj.stalled.Load()) }

// Failed returns how many operations failed with an injected error so far.
func (f *FS) Failed() uint64 { return f.inj.failed.Load() }

// injector implements errorfs.Injector.
type injector struct {
	mu      sync.Mutex
	mode    Mode
	release chan struct{} // closed when a stall ends; valid while mode == Stalled

	stalled atomic.Int64
	failed  atomic.Uint64
}

func (inj *injector) setMode(m Mode) {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	inj.setModeLocked(m)
}

func (inj *injector) setModeLocked(m Mode) {
	if inj.mode == m {
		return
	}
	if inj.mode == Stalled {
		close(inj.release)
	}
	if m == Stalled {
		inj.release = make(chan struct{})
	}
	inj.mode = m
}

// String implements fmt.Stringer (errorfs.Injector).
func (inj *injector) String() string {
	inj.mu.Lock()
	defer inj.mu.Unlock()
	return "diskfault(" + inj.mode.String() + ")"
}

// MaybeError implements errorfs.Injector: it is called before every
// operation and decides its fate.
func (inj *injector) MaybeError(op errorfs.Op) error {
	if op.Kind.ReadOrWrite() != errorfs.OpIsWrite {
		return nil
	}
	for {
		inj.mu.Lock()
		mode, release := inj.mode, inj.release
		inj.mu.Unlock()
		switch mode {
		case Failing:
			inj.failed.Add(1)
			return &InjectedError{Op: opName(op.Kind), Path: op.Path}
		case Stalled:
			inj.stalled.Add(1)
			<-release
			inj.stalled.Add(-1)
		default:
			return nil
		}
	}
}

func opName(k errorfs.OpKind) string {
	switch k {
	case errorfs.OpCreate:
		return "create"
	case errorfs.OpLink:
		return "link"
	case errorfs.OpRemove:
		return "remove"
	case errorfs.OpRemoveAll:
		return "remove-all"
	case errorfs.OpRename:
		return "rename"
	case errorfs.OpReuseForWrite:
		return "reuse-for-write"
	case errorfs.OpMkdirAll:
		return "mkdir-all"
	case errorfs.OpLock:
		return "lock"
	case errorfs.OpFilePreallocate:
		return "preallocate"
	case errorfs.OpFileWrite:
		return "write"
	case errorfs.OpFileWriteAt:
		return "write-at"
	case errorfs.OpFileSync:
		return "sync"
	case errorfs.OpFileSyncData:
		return "sync-data"
	case errorfs.OpFileSyncTo:
		return "sync-to"
	case errorfs.OpFileFlush:
		return "flush"
	case errorfs.OpFileClose:
		return "close"
	default:
		return fmt.Sprintf("op(%d)", int(k))
	}
}
