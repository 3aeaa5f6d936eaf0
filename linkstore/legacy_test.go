package linkstore

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/linkraft/linkraft/raftstore"
)

// legacyApplyBatch applies b as the builds with the legacy request table
// did (before the epochs): every item with a request ID is looked up in
// and recorded to the 'r' table with its whole result and an order key,
// and the table is pruned by the order keys. It returns the batch result
// as those builds answered it.
func legacyApplyBatch(t testing.TB, m *Machine, tx raftstore.Txn, b CreateBatch) []byte {
	t.Helper()
	seq, err := readSeq(tx)
	if err != nil {
		t.Fatal(err)
	}
	start := seq
	out := AppendBatchResultHeader(nil, len(b.Items))
	var replayed []int
	for i, it := range b.Items {
		if it.RequestID == "" {
			out = AppendBatchItemResult(out, AppendResult(nil, m.applyCreate(tx, it.Create)))
			continue
		}
		key := requestKey(it.RequestID)
		v, err := tx.Get(key)
		if err == nil {
			out = AppendBatchItemResult(out, v)
			replayed = append(replayed, i)
			continue
		}
		if !errors.Is(err, raftstore.ErrNotFound) {
			t.Fatal(err)
		}
		res := AppendResult(nil, m.applyCreate(tx, it.Create))
		out = AppendBatchItemResult(out, res)
		if err := tx.Set(key, res); err != nil {
			t.Fatal(err)
		}
		if err := tx.Set(queueKey(seq), []byte(it.RequestID)); err != nil {
			t.Fatal(err)
		}
		seq++
	}
	out = appendReplays(out, replayed)
	if seq == start {
		return out
	}
	if err := tx.Set(requestSeqKey, binary.BigEndian.AppendUint64(nil, seq)); err != nil {
		t.Fatal(err)
	}
	// The legacy builds' prune, which never finds the legacy table
	// drained while they record to it: the window's order keys stay.
	pruneRequests(tx, nil, start, seq)
	return out
}

// legacyBatch applies items as one CreateBatch the way the builds with the
// legacy request table did, in its own Pebble batch, and returns the raw
// batch result.
func (r *replica) legacyBatch(items ...BatchItem) []byte {
	r.t.Helper()
	b := r.db.NewIndexedBatch()
	r.ix++
	allocs := newAllocCache(raftstore.NewTxn(b, testGroup))
	out := legacyApplyBatch(r.t, r.m, allocs, CreateBatch{Items: items})
	allocs.flush()
	if err := b.Commit(pebble.Sync); err != nil {
		r.t.Fatalf("commit: %v", err)
	}
	if err := b.Close(); err != nil {
		r.t.Fatalf("close batch: %v", err)
	}
	return out
}
