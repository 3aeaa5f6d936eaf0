package linkstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/linkraft/linkraft/raftstore"
)

// requestTable counts the request table's records and order keys, and
// returns the lowest recorded sequence (or -1).
func requestTable(t *testing.T, rep *replica) (ids, order int, lowest int64) {
	t.Helper()
	lowest = -1
	must("scan", rep.reader().Scan(requestPrefix[:5], nil, func(k, _ []byte) bool {
		switch {
		case bytes.HasPrefix(k, requestPrefix):
			ids++
		case bytes.HasPrefix(k, queuePrefix):
			if order == 0 {
				lowest = int64(binary.BigEndian.Uint64(k[len(queuePrefix):]))
			}
			order++
		}
		return true
	}))
	return ids, order, lowest
}

// TestRequestTableShrinksFromLegacyWindow: a table pruned by the rule before
// the prune mark (a larger window, no mark) is brought down to the current
// window a bounded number of IDs per batch, and then holds exactly the
// window; a retry inside it is still answered from the table.
func TestRequestTableShrinksFromLegacyWindow(t *testing.T) {
	prevW, prevL, prevM := requestWindow, legacyRequestWindow, maxPrunePerBatch
	t.Cleanup(func() { requestWindow, legacyRequestWindow, maxPrunePerBatch = prevW, prevL, prevM })
	requestWindow, legacyRequestWindow, maxPrunePerBatch = 40, 40, 7

	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	n := 0
	batch := func(k int) []Result {
		var items []BatchItem
		for range k {
			items = append(items, BatchItem{RequestID: fmt.Sprintf("L%d", n), Create: Create{Partition: 3, URL: fmt.Sprintf("https://l.example/%d", n)}})
			n++
		}
		return rep.batch(items...)
	}
	for range 20 {
		batch(3) // 60 recorded, the last 40 kept
	}
	if ids, order, _ := requestTable(t, rep); ids != 40 || order != 40 {
		t.Fatalf("under the old window: %d records, %d order keys; want 40", ids, order)
	}
	// The table as the earlier code left it: no prune mark.
	b := rep.db.NewIndexedBatch()
	if _, err := raftstore.NewTxn(b, testGroup).Get(requestPrunedKey); err != nil {
		t.Fatalf("no prune mark under the new code: %v", err)
	}
	if err := raftstore.NewTxn(b, testGroup).Delete(requestPrunedKey); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}

	requestWindow = 10
	for i := 0; ; i++ {
		before, _, _ := requestTable(t, rep)
		batch(2)
		after, order, _ := requestTable(t, rep)
		if forgot := before + 2 - after; forgot > int(maxPrunePerBatch) {
			t.Fatalf("batch %d forgot %d IDs, bound %d", i, forgot, maxPrunePerBatch)
		}
		if after != order {
			t.Fatalf("%d records, %d order keys", after, order)
		}
		if after == 10 {
			break
		}
		if i > 20 {
			t.Fatalf("table still holds %d IDs after %d batches", after, i)
		}
	}
	for range 3 { // steady state: exactly the window
		batch(4)
		if ids, order, lowest := requestTable(t, rep); ids != 10 || order != 10 || lowest != int64(n-10) {
			t.Fatalf("steady: %d records, %d order keys, lowest %d; want 10, 10, %d", ids, order, lowest, n-10)
		}
	}
	// A retry inside the window is answered from the table.
	id := fmt.Sprintf("L%d", n-3)
	got := rep.batch(BatchItem{RequestID: id, Create: Create{Partition: 3, URL: "https://other.example/"}})[0]
	if got.Status != ResultCreated || got.Record.URL != fmt.Sprintf("https://l.example/%d", n-3) {
		t.Fatalf("retry of %s: %+v, want its first result", id, got)
	}
}
