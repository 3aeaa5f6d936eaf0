package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	closed, canceled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.canceled = true; return nil }
func (s *memSink) reader() io.ReadCloser {
	return io.NopCloser(bytes.NewReader(s.Bytes()))
}

// fill applies n commands (every third with an idempotency key) from index
// start on.
func fill(f *fsm, start uint64, n int, tag string) {
	logs := make([]*raft.Log, 0, n)
	for i := 0; i < n; i++ {
		key := ""
		if i%3 == 0 {
			key = fmt.Sprintf("%s-key-%d", tag, i)
		}
		logs = append(logs, cmdLog(start+uint64(i), key, fmt.Sprintf("%s%d", tag, i%7)))
	}
	f.ApplyBatch(logs)
}

func TestSnapshotPersistRestore(t *testing.T) {
	src := openTestDB(t, nil, t.TempDir())
	t.Cleanup(func() { _ = src.Close() })
	a := newTestFSM(t, src, 1, &counterMachine{})
	fill(a, 1, 500, "x")

	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	want := groupState(t, src, 1)
	fill(a, 501, 10, "later") // not in the snapshot
	// A restore (an excise of the range) after the snapshot was taken must
	// not show through it either.
	other := &memSink{}
	{
		db := openTestDB(t, nil, t.TempDir())
		o := newTestFSM(t, db, 1, &counterMachine{})
		fill(o, 1, 7, "other")
		s, _ := o.Snapshot()
		if err := s.Persist(other); err != nil {
			t.Fatal(err)
		}
		s.Release()
		_ = db.Close()
	}
	if err := a.Restore(other.reader()); err != nil {
		t.Fatal(err)
	}
	if a.applied.Load() != 7 {
		t.Fatalf("applied after restore = %d, want 7", a.applied.Load())
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	snap.Release()
	if !sink.closed || sink.canceled {
		t.Fatalf("sink closed=%v canceled=%v", sink.closed, sink.canceled)
	}

	// The destination holds other state for group 1 (to be replaced), a
	// neighbour group, and group 1's raft log (to be kept).
	dst := openTestDB(t, nil, t.TempDir())
	t.Cleanup(func() { _ = dst.Close() })
	b := newTestFSM(t, dst, 1, &counterMachine{})
	fill(b, 1, 800, "old")
	neighbour := newTestFSM(t, dst, 2, &counterMachine{})
	fill(neighbour, 1, 50, "o")
	logs := NewLogStore(dst, 1)
	if err := logs.StoreLogs([]*raft.Log{mkLog(1, 1, "l1"), mkLog(2, 1, "l2")}); err != nil {
		t.Fatal(err)
	}
	if err := logs.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	otherBefore := groupState(t, dst, 2)
	raftBefore := dumpRange(t, dst, kindPrefix(1, kindLog), kindPrefix(1, kindMeta))

	if err := b.Restore(sink.reader()); err != nil {
		t.Fatal(err)
	}
	if got := groupState(t, dst, 1); got != want {
		t.Fatalf("restored state differs from the snapshot")
	}
	if b.applied.Load() != 500 || b.restores.Load() != 1 {
		t.Fatalf("applied=%d restores=%d, want 500 1", b.applied.Load(), b.restores.Load())
	}
	if got := groupState(t, dst, 2); got != otherBefore {
		t.Fatal("restore of group 1 changed group 2")
	}
	if got := dumpRange(t, dst, kindPrefix(1, kindLog), kindPrefix(1, kindMeta)); got != raftBefore {
		t.Fatal("restore changed group 1's raft log or stable store")
	}
	// The restored idempotency table answers retries.
	res := b.ApplyBatch([]*raft.Log{cmdLog(501, "x-key-3", "zzz")})
	if string(res[0].([]byte)) != "x3=1@4" {
		t.Fatalf("retry after restore: %q", res[0])
	}
	// A reopened FSM sees the restored applied index.
	if c := newTestFSM(t, dst, 1, &counterMachine{}); c.applied.Load() != 501 {
		t.Fatalf("reopened applied = %d, want 501", c.applied.Load())
	}
}

func TestSnapshotEmptyGroup(t *testing.T) {
	src := openTestDB(t, nil, t.TempDir())
	t.Cleanup(func() { _ = src.Close() })
	a := newTestFSM(t, src, 4, &counterMachine{})
	snap, _ := a.Snapshot()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	dst := openTestDB(t, nil, t.TempDir())
	t.Cleanup(func() { _ = dst.Close() })
	b := newTestFSM(t, dst, 4, &counterMachine{})
	fill(b, 1, 20, "y")
	if err := b.Restore(sink.reader()); err != nil {
		t.Fatal(err)
	}
	if got := groupState(t, dst, 4); got != "" || b.applied.Load() != 0 {
		t.Fatalf("restoring an empty snapshot left applied=%d state:\n%s", b.applied.Load(), got)
	}
}

// TestSnapshotCorruptionRejected flips every byte and truncates at every
// length of a small snapshot: Restore must fail with ErrBadSnapshot and leave
// the state untouched.
func TestSnapshotCorruptionRejected(t *testing.T) {
	src := openTestDB(t, nil, t.TempDir())
	t.Cleanup(func() { _ = src.Close() })
	a := newTestFSM(t, src, 1, &counterMachine{})
	fill(a, 1, 4, "c")
	snap, _ := a.Snapshot()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	good := sink.Bytes()

	// The state a good restore leaves.
	ref := openTestDB(t, nil, t.TempDir())
	t.Cleanup(func() { _ = ref.Close() })
	if err := newTestFSM(t, ref, 1, &counterMachine{}).Restore(io.NopCloser(bytes.NewReader(good))); err != nil {
		t.Fatal(err)
	}
	restored := groupState(t, ref, 1)

	dst := openTestDB(t, nil, t.TempDir())
	t.Cleanup(func() { _ = dst.Close() })
	b := newTestFSM(t, dst, 1, &counterMachine{})
	fill(b, 1, 3, "keep")
	before := groupState(t, dst, 1)
	keep := &memSink{}
	if s, err := b.Snapshot(); err != nil {
		t.Fatal(err)
	} else if err := s.Persist(keep); err != nil {
		t.Fatal(err)
	}
	check := func(what string, data []byte) {
		t.Helper()
		err := b.Restore(io.NopCloser(bytes.NewReader(data)))
		if !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("%s: Restore = %v, want ErrBadSnapshot", what, err)
		}
		if got := groupState(t, dst, 1); got != before {
			t.Fatalf("%s: a failed restore changed the state", what)
		}
	}
	rejected := 0
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x40
		err := b.Restore(io.NopCloser(bytes.NewReader(bad)))
		if err == nil {
			// A flip in the zstd frame's header that leaves the content
			// as it was (a window size, say) may pass: the content is what
			// the checksum protects, and it must be the good one.
			if got := groupState(t, dst, 1); got != restored {
				t.Fatalf("byte %d flipped: accepted, and the state differs from the snapshot's", i)
			}
			if err := b.Restore(keep.reader()); err != nil {
				t.Fatal(err)
			}
			continue
		}
		rejected++
		if !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("byte %d flipped: Restore = %v, want ErrBadSnapshot", i, err)
		}
		if got := groupState(t, dst, 1); got != before {
			t.Fatalf("byte %d flipped: a failed restore changed the state", i)
		}
	}
	if rejected < len(good)-8 {
		t.Fatalf("only %d of %d flipped bytes rejected", rejected, len(good))
	}
	for n := 0; n < len(good); n++ {
		check(fmt.Sprintf("truncated to %d", n), good[:n])
	}
	check("trailing byte", append(bytes.Clone(good), 0))
	// A snapshot of another group is refused.
	c := newTestFSM(t, dst, 2, &counterMachine{})
	if err := c.Restore(io.NopCloser(bytes.NewReader(good))); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("cross-group restore: %v", err)
	}
}

func FuzzSnapshotReader(f *testing.F) {
	var buf bytes.Buffer
	db := openTestDB(f, nil, f.TempDir())
	fm, err := newFSM(db, 1, &counterMachine{}, testLogger(f), restoreEnv{})
	if err != nil {
		f.Fatal(err)
	}
	fill(fm, 1, 3, "f")
	if err := writeSnapshot(&buf, db, 1, fm.applied.Load()); err != nil {
		f.Fatal(err)
	}
	var v2 bytes.Buffer
	if err := writeCompressedSnapshot(&v2, db, 1, fm.applied.Load()); err != nil {
		f.Fatal(err)
	}
	_ = db.Close()
	f.Add(buf.Bytes())
	f.Add(v2.Bytes())
	f.Add(append(snapshotMagicZstd[:], 0x28, 0xb5, 0x2f, 0xfd))
	f.Add(append(snapshotMagicV3[:], 0x28, 0xb5, 0x2f, 0xfd))
	f.Add(append(snapshotMagic[:], make([]byte, 16)...))
	f.Add([]byte("LRSNAP"))
	f.Fuzz(func(t *testing.T, b []byte) {
		sr, err := newSnapshotReader(bytes.NewReader(b), 1)
		if err != nil {
			return
		}
		defer sr.close()
		var last []byte
		for {
			k, _, ok, err := sr.next()
			if err != nil || !ok {
				return
			}
			if k[0] != kindMeta && k[0] != kindData {
				t.Fatalf("key %x outside the range accepted", k)
			}
			if last != nil && bytes.Compare(last, k) >= 0 {
				t.Fatalf("keys out of order accepted: %x then %x", last, k)
			}
			last = append(last[:0], k...)
		}
	})
}

// TestSnapshotFormats: Persist writes format 3 (the compressed format 2
// under its own magic, which builds reading only formats 1 and 2 refuse),
// smaller than format 1 for the same state, and Restore reads all three to
// the same state (snapshots taken by earlier builds still install).
func TestSnapshotFormats(t *testing.T) {
	src := openTestDB(t, nil, t.TempDir())
	t.Cleanup(func() { _ = src.Close() })
	a := newTestFSM(t, src, 1, &counterMachine{})
	fill(a, 1, 2000, "https://links.example/some/long/path/")
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	v3 := &memSink{}
	if err := snap.Persist(v3); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	// Format 2 is format 3's stream under the older magic.
	v2 := append(append([]byte(nil), snapshotMagicZstd[:]...), v3.Bytes()[len(snapshotMagicV3):]...)
	var v1 bytes.Buffer
	if err := writeSnapshot(&v1, src, 1, a.applied.Load()); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(v3.Bytes(), snapshotMagicV3[:]) || !bytes.HasPrefix(v1.Bytes(), snapshotMagic[:]) {
		t.Fatal("unexpected magics")
	}
	if v3.Len() >= v1.Len()/2 {
		t.Errorf("format 3 is %d bytes, format 1 %d: not compressed", v3.Len(), v1.Len())
	}
	want := groupState(t, src, 1)
	for name, data := range map[string][]byte{"format 1": v1.Bytes(), "format 2": v2, "format 3": v3.Bytes()} {
		db := openTestDB(t, nil, t.TempDir())
		f := newTestFSM(t, db, 1, &counterMachine{})
		if err := f.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := groupState(t, db, 1); got != want {
			t.Errorf("%s: restored state differs", name)
		}
		_ = db.Close()
	}
}
