package linkstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/linkraft/linkraft/raftstore"
)

// legacyTable counts the legacy request table's records and order keys, and
// returns the lowest recorded sequence (or -1).
func legacyTable(t *testing.T, rep *replica) (ids, order int, lowest int64) {
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

// rawItems returns the items' results of a raw batch result.
func rawItems(t *testing.T, raw []byte) [][]byte {
	t.Helper()
	items, err := DecodeBatchResult(raw)
	if err != nil {
		t.Fatalf("batch result: %v", err)
	}
	return items
}

// TestRequestTableShrinksFromLegacyWindow: a legacy table pruned by the rule
// before the prune mark (a larger window, no mark) is brought down a bounded
// number of IDs per batch by a build with the epochs, which answers a retry
// of a legacy ID inside the window from it, records nothing there and marks
// it drained once it is empty.
func TestRequestTableShrinksFromLegacyWindow(t *testing.T) {
	shrinkWindow(t, 40, 40)
	prevL, prevM := legacyRequestWindow, maxPrunePerBatch
	t.Cleanup(func() { legacyRequestWindow, maxPrunePerBatch = prevL, prevM })
	legacyRequestWindow, maxPrunePerBatch = 40, 7

	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	n := 0
	items := func(k int) []BatchItem {
		var items []BatchItem
		for range k {
			items = append(items, BatchItem{RequestID: fmt.Sprintf("L%d", n), Create: Create{Partition: 3, URL: fmt.Sprintf("https://l.example/%d", n), CreatedAtMs: int64(n)}})
			n++
		}
		return items
	}
	first := make(map[string][]byte) // request ID -> first result
	for range 20 {
		its := items(3)
		for i, r := range rawItems(t, rep.legacyBatch(its...)) {
			first[its[i].RequestID] = r
		}
	} // 60 recorded, the last 40 kept
	if ids, order, _ := legacyTable(t, rep); ids != 40 || order != 40 {
		t.Fatalf("under the old window: %d records, %d order keys; want 40", ids, order)
	}
	// The table as the code before the prune mark left it: no mark.
	b := rep.db.NewIndexedBatch()
	if err := raftstore.NewTxn(b, testGroup).Delete(requestPrunedKey); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}

	// The upgrade, with a smaller window. A retry inside it is answered
	// from the legacy table.
	requestWindow, requestEpochLen = 10, 10
	retry := func(id string, i int) {
		t.Helper()
		raw := rep.applyBatch(AppendCreateBatch(nil, CreateBatch{Items: []BatchItem{
			{RequestID: id, Create: Create{Partition: 3, URL: fmt.Sprintf("https://l.example/%d", i), CreatedAtMs: 99}},
		}}))[0]
		if got := rawItems(t, raw)[0]; !bytes.Equal(got, first[id]) {
			t.Fatalf("retry of %s: %x, want its first result %x", id, got, first[id])
		}
	}
	retry("L57", 57)
	for i := 0; ; i++ {
		before, _, _ := legacyTable(t, rep)
		its := items(2)
		for i, r := range rawItems(t, rep.applyBatch(AppendCreateBatch(nil, CreateBatch{Items: its}))[0]) {
			first[its[i].RequestID] = r
		}
		after, order, lowest := legacyTable(t, rep)
		if forgot := before - after; forgot > int(maxPrunePerBatch) || forgot < 0 {
			t.Fatalf("batch %d forgot %d legacy IDs, bound %d", i, forgot, maxPrunePerBatch)
		}
		if after != order {
			t.Fatalf("%d legacy records, %d order keys", after, order)
		}
		if after == 0 {
			break
		}
		if seq := int64(60 + 2*(i+1)); before-after < int(maxPrunePerBatch) && lowest < seq-int64(requestWindow) {
			t.Fatalf("batch %d: legacy seq %d kept below the window (seq %d)", i, lowest, seq)
		}
		if i > 20 {
			t.Fatalf("legacy table still holds %d IDs after %d batches", after, i)
		}
	}
	its := items(1)
	first[its[0].RequestID] = rawItems(t, rep.applyBatch(AppendCreateBatch(nil, CreateBatch{Items: its}))[0])[0]
	if mark, _ := legacyMark(rep.reader()); mark != legacyDrained {
		t.Fatalf("prune mark %d after the legacy table emptied, want drained", mark)
	}
	// The epochs hold the window, and a retry inside it is answered.
	if len(entryEpochs(t, rep)) == 0 {
		t.Fatal("no entries in the epochs")
	}
	retry(fmt.Sprintf("L%d", n-3), n-3)
}
