package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

func newTestFSM(t *testing.T, db *pebble.DB, group uint64, m StateMachine) *fsm {
	t.Helper()
	f, err := newFSM(db, group, m, testLogger(t), testRestoreEnv(t, db))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func testRestoreEnv(t *testing.T, db *pebble.DB) restoreEnv {
	o := DefaultPebbleOptions()
	o.EnsureDefaults()
	return restoreEnv{fs: vfs.Default, dir: t.TempDir(), writerOpts: o.MakeWriterOptions(0, db.TableFormat())}
}

func cmdLog(index uint64, idemKey, cmd string) *raft.Log {
	var ik []byte
	if idemKey != "" {
		ik = []byte(idemKey)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: appendEnvelope(nil, ik, []byte(cmd))}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, tc := range []struct{ key, cmd string }{{"", ""}, {"", "cmd"}, {"k", ""}, {"key-1", "some command"}} {
		ik, cmd, err := decodeEnvelope(appendEnvelope(nil, []byte(tc.key), []byte(tc.cmd)))
		if err != nil || string(ik) != tc.key || string(cmd) != tc.cmd {
			t.Fatalf("%q/%q: got %q/%q, %v", tc.key, tc.cmd, ik, cmd, err)
		}
		if tc.key == "" && ik != nil {
			t.Fatalf("empty key decodes as %q, want nil", ik)
		}
	}
	for _, bad := range [][]byte{nil, {}, {2, 0}, {1}, {1, 5, 'a'}, {1, 0x80}, append([]byte{1, 0x81, 0x08}, make([]byte, 1025)...)} {
		if _, _, err := decodeEnvelope(bad); !errors.Is(err, ErrBadEnvelope) {
			t.Fatalf("decodeEnvelope(%x) = %v, want ErrBadEnvelope", bad, err)
		}
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add(appendEnvelope(nil, []byte("key"), []byte("cmd")))
	f.Add(appendEnvelope(nil, nil, []byte("cmd")))
	f.Add([]byte{1, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		ik, cmd, err := decodeEnvelope(b)
		if err != nil {
			return
		}
		if len(ik) > maxIdemKey {
			t.Fatalf("key of %d bytes accepted", len(ik))
		}
		if again := appendEnvelope(nil, ik, cmd); len(again) > len(b) {
			t.Fatalf("re-encoding grew: %x -> %x", b, again)
		}
	})
}

func TestFSMApplyBatchSkipsApplied(t *testing.T) {
	db := openTestDB(t, nil, t.TempDir())
	t.Cleanup(func() { _ = db.Close() })
	m := &counterMachine{}
	f := newTestFSM(t, db, 1, m)

	conf := &raft.Log{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: []byte("conf")}
	res := f.ApplyBatch([]*raft.Log{conf, cmdLog(2, "", "a"), cmdLog(3, "", "a"), cmdLog(4, "", "b")})
	if res[0] != nil || string(res[1].([]byte)) != "a=1@2" || string(res[2].([]byte)) != "a=2@3" || string(res[3].([]byte)) != "b=1@4" {
		t.Fatalf("results: %q", res)
	}
	if f.applied.Load() != 4 {
		t.Fatalf("applied = %d, want 4", f.applied.Load())
	}
	before := groupState(t, db, 1)

	// A new FSM over the same DB (a restart) reads the applied index and
	// skips what was applied, applying only the new tail.
	f2 := newTestFSM(t, db, 1, m)
	if f2.applied.Load() != 4 {
		t.Fatalf("reloaded applied = %d, want 4", f2.applied.Load())
	}
	res = f2.ApplyBatch([]*raft.Log{cmdLog(3, "", "a"), cmdLog(4, "", "b")})
	if res[0] != nil || res[1] != nil || m.calls.Load() != 3 {
		t.Fatalf("replayed entries applied: %q, calls=%d", res, m.calls.Load())
	}
	if after := groupState(t, db, 1); after != before {
		t.Fatalf("skipped batch changed the state:\n%s\nvs\n%s", before, after)
	}
	res = f2.ApplyBatch([]*raft.Log{cmdLog(4, "", "b"), cmdLog(5, "", "b")})
	if res[0] != nil || string(res[1].([]byte)) != "b=2@5" || f2.applied.Load() != 5 {
		t.Fatalf("mixed batch: %q, applied %d", res, f2.applied.Load())
	}
	// A malformed envelope yields an error result and advances the index.
	res = f2.ApplyBatch([]*raft.Log{{Index: 6, Term: 1, Type: raft.LogCommand, Data: []byte{9}}})
	if err, ok := res[0].(error); !ok || !errors.Is(err, ErrBadEnvelope) || f2.applied.Load() != 6 {
		t.Fatalf("bad envelope: %v, applied %d", res[0], f2.applied.Load())
	}
}

func TestFSMIdempotency(t *testing.T) {
	db := openTestDB(t, nil, t.TempDir())
	t.Cleanup(func() { _ = db.Close() })
	m := &counterMachine{}
	f := newTestFSM(t, db, 1, m)

	// The same key twice in one batch: the second sees the first's record.
	res := f.ApplyBatch([]*raft.Log{cmdLog(1, "k1", "a"), cmdLog(2, "k1", "a"), cmdLog(3, "", "a")})
	if string(res[0].([]byte)) != "a=1@1" || string(res[1].([]byte)) != "a=1@1" || string(res[2].([]byte)) != "a=2@3" {
		t.Fatalf("results: %q", res)
	}
	// And in a later batch.
	res = f.ApplyBatch([]*raft.Log{cmdLog(4, "k1", "a"), cmdLog(5, "k2", "a")})
	if string(res[0].([]byte)) != "a=1@1" || string(res[1].([]byte)) != "a=3@5" {
		t.Fatalf("results: %q", res)
	}
	if got := m.calls.Load(); got != 3 {
		t.Fatalf("StateMachine.Apply called %d times, want 3", got)
	}

	// Past the window, k1 (index 1) is forgotten; k2 (index 5) is not yet.
	far := uint64(IdempotencyWindow + 2)
	f.ApplyBatch([]*raft.Log{cmdLog(far, "", "z")})
	if _, _, err := db.Get(metaKey(1, metaIdem, []byte("k1"))); !errors.Is(err, pebble.ErrNotFound) {
		t.Fatalf("k1 still remembered after the window: %v", err)
	}
	if v, c, err := db.Get(metaKey(1, metaIdem, []byte("k2"))); err != nil {
		t.Fatalf("k2 forgotten too early: %v", err)
	} else {
		_ = c.Close()
		_ = v
	}
	res = f.ApplyBatch([]*raft.Log{cmdLog(far+1, "k1", "a"), cmdLog(far+2, "k2", "a")})
	if string(res[0].([]byte)) != fmt.Sprintf("a=4@%d", far+1) || string(res[1].([]byte)) != "a=3@5" {
		t.Fatalf("after window: %q", res)
	}
	// Expiry records below the cutoff are gone; k1's new one remains.
	it, _ := db.NewIter(&pebble.IterOptions{LowerBound: metaKey(1, metaExpiry, nil), UpperBound: metaKey(1, metaExpiry+1, nil)})
	var n int
	for ok := it.First(); ok; ok = it.Next() {
		n++
		if !bytes.HasSuffix(it.Key(), []byte("k1")) && !bytes.HasSuffix(it.Key(), []byte("k2")) {
			t.Fatalf("unexpected expiry record %x", it.Key())
		}
	}
	_ = it.Close()
	if n != 2 {
		t.Fatalf("%d expiry records, want 2 (k2@5 and k1@%d)", n, far+1)
	}
}

func TestTxnScopedToGroup(t *testing.T) {
	db := openTestDB(t, nil, t.TempDir())
	t.Cleanup(func() { _ = db.Close() })
	writer := StateMachineFunc(func(tx Txn, index uint64, cmd []byte) []byte {
		for _, k := range []string{"a", "b", "c", "d"} {
			_ = tx.Set([]byte(k), cmd)
		}
		if err := tx.Delete([]byte("b")); err != nil {
			return []byte(err.Error())
		}
		var keys []string
		_ = tx.Scan(nil, nil, func(k, v []byte) bool {
			keys = append(keys, string(k))
			return true
		})
		return []byte(fmt.Sprint(keys))
	})
	f1 := newTestFSM(t, db, 1, writer)
	f2 := newTestFSM(t, db, 2, writer)
	if res := f1.ApplyBatch([]*raft.Log{cmdLog(1, "", "one")}); string(res[0].([]byte)) != "[a c d]" {
		t.Fatalf("group 1 scan: %q", res[0])
	}
	if res := f2.ApplyBatch([]*raft.Log{cmdLog(1, "", "two")}); string(res[0].([]byte)) != "[a c d]" {
		t.Fatalf("group 2 scan: %q", res[0])
	}
	r1, r2 := newDataReader(db, 1), newDataReader(db, 2)
	if v, err := r1.Get([]byte("a")); err != nil || string(v) != "one" {
		t.Fatalf("group 1 a = %q, %v", v, err)
	}
	if v, err := r2.Get([]byte("a")); err != nil || string(v) != "two" {
		t.Fatalf("group 2 a = %q, %v", v, err)
	}
	if _, err := r1.Get([]byte("b")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted key: %v", err)
	}
	var got []string
	_ = r1.Scan([]byte("b"), []byte("d"), func(k, v []byte) bool {
		got = append(got, string(k)+"="+string(v))
		return true
	})
	if fmt.Sprint(got) != "[c=one]" {
		t.Fatalf("bounded scan: %v", got)
	}
	got = nil
	_ = r2.Scan(nil, nil, func(k, v []byte) bool {
		got = append(got, string(k))
		return false
	})
	if fmt.Sprint(got) != "[a]" {
		t.Fatalf("early stop: %v", got)
	}
	// DeleteRange with an open end stays inside the group.
	del := StateMachineFunc(func(tx Txn, index uint64, cmd []byte) []byte {
		_ = tx.DeleteRange([]byte("b"), nil)
		return nil
	})
	f1.machine = del
	f1.ApplyBatch([]*raft.Log{cmdLog(2, "", "")})
	if _, err := r1.Get([]byte("d")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeleteRange(b, nil) left d: %v", err)
	}
	if v, err := r2.Get([]byte("d")); err != nil || string(v) != "two" {
		t.Fatalf("group 1's DeleteRange hit group 2: %q, %v", v, err)
	}
}
