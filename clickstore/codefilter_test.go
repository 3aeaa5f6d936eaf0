package clickstore

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/linkraft/linkraft/clicks"
	"github.com/linkraft/linkraft/raftstore"
)

// TestEveryDayRecordHasTotals: after random batches, every code with a day
// record has a totals key, the invariant that lets the clicked-code filter
// be built from the totals keys alone.
func TestEveryDayRecordHasTotals(t *testing.T) {
	db := openDB(t)
	applyWith(t, db, rand.New(rand.NewPCG(5, 6)), randomBatches(rand.New(rand.NewPCG(5, 7)), 60), Apply, raftstore.NewMemo())
	totals := make(map[string]bool)
	var days [][]byte
	for _, kv := range dumpAll(t, db) {
		k := kv[0]
		if len(k) < 6 || bytes.HasPrefix(k, markPrefix) {
			continue
		}
		switch k[4] {
		case kindTotal:
			totals[string(k[:4])+string(k[5:])] = true
		case kindDay:
			days = append(days, k)
		}
	}
	if len(days) == 0 {
		t.Fatal("no day records written")
	}
	for _, k := range days {
		code := k[5 : 5+bytes.IndexByte(k[5:], 0x00)]
		if !totals[string(k[:4])+string(code)] {
			t.Fatalf("day record %q has no totals", k)
		}
	}
}

// getCounter counts a Txn's point reads.
type getCounter struct {
	raftstore.Txn
	memo *raftstore.Memo
	gets int
}

func (g *getCounter) Get(key []byte) ([]byte, error) {
	if !bytes.HasPrefix(key, markPrefix) {
		g.gets++
	}
	return g.Txn.Get(key)
}

func (g *getCounter) Memo() *raftstore.Memo { return g.memo }

// TestFilterSparesFirstClickReads: with the replica's memo, the first
// click of a code reads neither its day record nor its totals; after the
// memo is dropped (a restart, a snapshot restore), the filter is rebuilt
// from the stored totals and a code clicked before is read again, and its
// counts go on from the stored ones.
func TestFilterSparesFirstClickReads(t *testing.T) {
	db := openDB(t)
	memo := raftstore.NewMemo()
	seq := uint64(0)
	apply := func(codes ...string) int {
		t.Helper()
		seq++
		b := clicks.Batch{Router: "r1", Seq: seq}
		for _, c := range codes {
			b.Deltas = append(b.Deltas, clicks.Delta{Code: c, Day: 20000, Clicks: 1})
		}
		pb := db.NewIndexedBatch()
		tx := &getCounter{Txn: raftstore.NewMemoTxn(pb, testGroup, memo), memo: memo}
		if _, err := Apply(tx, partitionOf, b); err != nil {
			t.Fatal(err)
		}
		if err := pb.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		return tx.gets
	}
	if n := apply("aa1", "bb2", "cc3"); n != 0 {
		t.Fatalf("first clicks of three codes: %d reads, want 0", n)
	}
	if n := apply("aa1", "dd4"); n != 0 {
		t.Fatalf("a memoized code and a new one: %d reads, want 0", n)
	}
	memo.Clear()
	if n := apply("aa1"); n != 2 {
		t.Fatalf("a code clicked before, memo dropped: %d reads, want 2 (day record and totals)", n)
	}
	if n := apply("ee5"); n != 0 {
		t.Fatalf("a new code, filter rebuilt: %d reads, want 0", n)
	}
	v, err := raftstore.NewTxn(db.NewIndexedBatch(), testGroup).Get(TotalKey(partitionOf("aa1"), "aa1"))
	if err != nil {
		t.Fatal(err)
	}
	if tot, err := decodeTotals(v); err != nil || tot.clicks != 3 {
		t.Fatalf("aa1's totals %+v (%v), want 3 clicks", tot, err)
	}
}
