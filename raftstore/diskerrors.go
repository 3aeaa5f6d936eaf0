package raftstore

import (
	"errors"
	"io/fs"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Failed disk writes are logged by the store itself, before Pebble sees
// them. Pebble's reaction to a failed write is to stop the process, and
// not always with a readable message: a failed WAL write ends in
// Logger.Fatalf with the error, but a failed close of the old WAL while
// Pebble rotates it (v2.1.7, DB.rotateWAL) panics with DB.mu released,
// and the caller's deferred unlock turns that panic into the runtime's
// "fatal error: sync: unlock of unlocked mutex", which does not print the
// error (docs/ROBUSTNESS.md, Findings). Logging the error where it
// happens tells the operator why the node stopped either way.

// diskErrorLogEvery bounds how often failed writes are logged: the first
// at once, then at most one line per interval with the count of those
// not logged.
const diskErrorLogEvery = time.Second

// diskErrorReporter logs failed write-kind operations, rate-limited.
type diskErrorReporter struct {
	log   func(op, path string, err error, unlogged int)
	every time.Duration // at most one log line per every (0: no limit)

	mu       sync.Mutex
	last     time.Time
	unlogged int
}

func (r *diskErrorReporter) report(op, path string, err error) {
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist) {
		// Pebble removes files that may be gone and probes for files that
		// may exist; neither is a disk failure.
		return
	}
	r.mu.Lock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < r.every {
		r.unlogged++
		r.mu.Unlock()
		return
	}
	r.last = now
	n := r.unlogged
	r.unlogged = 0
	r.mu.Unlock()
	r.log(op, path, err, n)
}

// reportingFS is a vfs.FS that passes every operation to the FS it wraps
// and reports the write-kind ones that fail: create, link, rename,
// remove, mkdir, and on files opened for writing write, sync,
// preallocate and close. Reads are not watched.
type reportingFS struct {
	vfs.FS
	r *diskErrorReporter
}

// reportWriteErrors wraps fs so that failed write-kind operations are
// passed to log (rate-limited: unlogged is how many failures were not
// logged since the previous call).
func reportWriteErrors(inner vfs.FS, log func(op, path string, err error, unlogged int)) vfs.FS {
	return &reportingFS{FS: inner, r: &diskErrorReporter{log: log, every: diskErrorLogEvery}}
}

// Unwrap returns the wrapped FS (pebble's vfs.Root follows it).
func (f *reportingFS) Unwrap() vfs.FS { return f.FS }

func (f *reportingFS) file(op, name string, file vfs.File, err error) (vfs.File, error) {
	if err != nil {
		f.r.report(op, name, err)
		return nil, err
	}
	return &reportingFile{File: file, name: name, r: f.r}, nil
}

// Create implements vfs.FS.
func (f *reportingFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.Create(name, category)
	return f.file("create", name, file, err)
}

// OpenReadWrite implements vfs.FS.
func (f *reportingFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	file, err := f.FS.OpenReadWrite(name, category, opts...)
	return f.file("open for writing", name, file, err)
}

// ReuseForWrite implements vfs.FS.
func (f *reportingFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.ReuseForWrite(oldname, newname, category)
	return f.file("reuse for writing", newname, file, err)
}

// OpenDir implements vfs.FS: a directory is opened to be synced.
func (f *reportingFS) OpenDir(name string) (vfs.File, error) {
	file, err := f.FS.OpenDir(name)
	return f.file("open directory", name, file, err)
}

// Link implements vfs.FS.
func (f *reportingFS) Link(oldname, newname string) error {
	err := f.FS.Link(oldname, newname)
	f.r.report("link", newname, err)
	return err
}

// Rename implements vfs.FS.
func (f *reportingFS) Rename(oldname, newname string) error {
	err := f.FS.Rename(oldname, newname)
	f.r.report("rename", newname, err)
	return err
}

// Remove implements vfs.FS.
func (f *reportingFS) Remove(name string) error {
	err := f.FS.Remove(name)
	f.r.report("remove", name, err)
	return err
}

// RemoveAll implements vfs.FS.
func (f *reportingFS) RemoveAll(name string) error {
	err := f.FS.RemoveAll(name)
	f.r.report("remove all", name, err)
	return err
}

// MkdirAll implements vfs.FS.
func (f *reportingFS) MkdirAll(dir string, perm fs.FileMode) error {
	err := f.FS.MkdirAll(dir, perm)
	f.r.report("mkdir", dir, err)
	return err
}

// reportingFile reports the failed writes of a file opened for writing.
type reportingFile struct {
	vfs.File
	name string
	r    *diskErrorReporter
}

// Write implements vfs.File.
func (f *reportingFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.r.report("write", f.name, err)
	return n, err
}

// WriteAt implements vfs.File.
func (f *reportingFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	f.r.report("write", f.name, err)
	return n, err
}

// Preallocate implements vfs.File.
func (f *reportingFile) Preallocate(off, length int64) error {
	err := f.File.Preallocate(off, length)
	f.r.report("preallocate", f.name, err)
	return err
}

// Sync implements vfs.File.
func (f *reportingFile) Sync() error {
	err := f.File.Sync()
	f.r.report("sync", f.name, err)
	return err
}

// SyncData implements vfs.File.
func (f *reportingFile) SyncData() error {
	err := f.File.SyncData()
	f.r.report("sync", f.name, err)
	return err
}

// SyncTo implements vfs.File.
func (f *reportingFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	f.r.report("sync", f.name, err)
	return full, err
}

// Close implements vfs.File.
func (f *reportingFile) Close() error {
	err := f.File.Close()
	f.r.report("close", f.name, err)
	return err
}
