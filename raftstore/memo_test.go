package raftstore

import (
	"testing"

	"github.com/hashicorp/raft"
)

// TestFSMMemo: Apply gets the replica's memo (MemoOf), the same one from
// batch to batch, and a snapshot restore empties it; NewTxn has none.
func TestFSMMemo(t *testing.T) {
	db := openTestDB(t, nil, t.TempDir())
	t.Cleanup(func() { _ = db.Close() })
	var seen []*Memo
	m := StateMachineFunc(func(tx Txn, index uint64, cmd []byte) []byte {
		memo := MemoOf(tx)
		if memo == nil {
			t.Fatal("Apply's Txn has no memo")
		}
		memo.Set(index, string(cmd))
		seen = append(seen, memo)
		return nil
	})
	f := newTestFSM(t, db, 1, m)
	f.ApplyBatch([]*raft.Log{cmdLog(1, "", "a"), cmdLog(2, "", "b")})
	f.ApplyBatch([]*raft.Log{cmdLog(3, "", "c")})
	if len(seen) != 3 || seen[0] != seen[1] || seen[1] != seen[2] {
		t.Fatalf("memos %v: want one memo for every Apply", seen)
	}
	if v, ok := seen[0].Get(uint64(3)); !ok || v != "c" || seen[0].Len() != 3 {
		t.Fatalf("memo holds %d keys, 3 -> %v", seen[0].Len(), v)
	}

	// A restore replaces the state: the memo must not outlive it.
	src := openTestDB(t, nil, t.TempDir())
	t.Cleanup(func() { _ = src.Close() })
	other := newTestFSM(t, src, 1, &counterMachine{})
	fill(other, 1, 5, "o")
	snap, err := other.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if err := f.Restore(sink.reader()); err != nil {
		t.Fatal(err)
	}
	if seen[0].Len() != 0 {
		t.Fatalf("memo holds %d keys after a restore", seen[0].Len())
	}

	if MemoOf(NewTxn(db.NewIndexedBatch(), 1)) != nil {
		t.Fatal("NewTxn has a memo")
	}
	memo := NewMemo()
	if MemoOf(NewMemoTxn(db.NewIndexedBatch(), 1, memo)) != memo {
		t.Fatal("NewMemoTxn's memo is not MemoOf's")
	}
}
