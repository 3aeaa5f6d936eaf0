package linkstore

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/linkraft/linkraft/internal/keyfilter"
	"github.com/linkraft/linkraft/raftstore"
)

// checkReuseFiltersHold fails unless every reuse index key the replica
// stores is held by its partition's filter, when the memo has one.
func checkReuseFiltersHold(t *testing.T, r *replica, partitions int) {
	t.Helper()
	rd := r.reader()
	for p := range uint32(partitions) {
		v, ok := r.memo.Get(reuseFilterKey(p))
		if !ok {
			continue
		}
		f := v.(*reuseFilter)
		lower, upper := []byte{0, 0, 0, 0, kindReuse}, []byte{0, 0, 0, 0, kindReuse + 1}
		copy(lower, NextKey(p)[:4])
		copy(upper, NextKey(p)[:4])
		must("scan", rd.Scan(lower, upper, func(k, _ []byte) bool {
			if !f.MayHold(reuseHashes(k)) {
				t.Fatalf("partition %d: the filter does not hold stored reuse key %x", p, k)
			}
			return true
		}))
	}
}

// reuseWorkload is memoWorkload's mix with many repeated URLs, reuse
// creates, edits that change a link's URL or give it limits (which take it
// out of the reuse index), deletes, and re-creates of edited and deleted
// URLs.
func reuseWorkload(rg Placement, partitions, n int, seed uint64) [][]byte {
	rnd := rand.New(rand.NewPCG(seed, 11))
	cmds := memoWorkload(rg, partitions, n/2, seed)
	var codes []Record
	for i := range n / 2 {
		p := uint32(rnd.IntN(partitions))
		url := fmt.Sprintf("https://m.example/%d", rnd.IntN(60))
		switch k := rnd.IntN(10); {
		case k < 2 && len(codes) > 0:
			rec := codes[rnd.IntN(len(codes))]
			e := Edit{Partition: rg.PartitionOfCode(rec.Code), Code: rec.Code, UpdatedAtMs: int64(i), Fields: EditURL,
				URL: fmt.Sprintf("https://m.example/%d", rnd.IntN(60))}
			if rnd.IntN(3) == 0 {
				e.Fields, e.URL, e.MaxClicks = EditMaxClicks, "", 5
			}
			cmds = append(cmds, AppendEdit(nil, e))
		case k < 3 && len(codes) > 0:
			rec := codes[rnd.IntN(len(codes))]
			cmds = append(cmds, AppendDelete(nil, Delete{Partition: rg.PartitionOfCode(rec.Code), Code: rec.Code, DeletedAtMs: int64(i)}))
		default:
			c := Create{Partition: p, URL: url, Reuse: rnd.IntN(2) == 0, CreatedAtMs: int64(i)}
			if rnd.IntN(4) == 0 {
				c.Owner = fmt.Sprintf("o%d", rnd.IntN(3))
			}
			cmds = append(cmds, EncodeCreate(c))
			// The code the create will get is not known here; edits
			// and deletes pick codes of generated shape the
			// partition has handed out (some not yet: not found).
			lo, _ := rg.Codec().Range(p)
			codes = append(codes, Record{Code: rg.Codec().Encode(lo + uint64(rnd.IntN(40)))})
		}
	}
	return cmds
}

// TestReuseFilterAppliesAlike: a replica that answers reuse index lookups
// from its filters answers every command (creates with and without reuse,
// of repeated URLs and owners, edits and deletes that take links out of
// the index, batches, aliases) and ends byte for byte like one without a
// memo, also when the memo is dropped half-way, and its filters always
// hold every stored reuse key.
func TestReuseFilterAppliesAlike(t *testing.T) {
	const partitions = 8
	rg := testRing(t, 7, partitions)
	applyAlike(t, rg, reuseWorkload(rg, partitions, 6000, 3), rand.New(rand.NewPCG(4, 4)),
		func(r *replica) { checkReuseFiltersHold(t, r, partitions) },
		func(m *raftstore.Memo) error {
			if _, ok := m.Get(reuseFilterKey(0)); !ok {
				return errors.New("no reuse filter of partition 0")
			}
			return nil
		})
}

// isReuseKey selects a reuse index key.
func isReuseKey(key []byte) bool {
	_, ok := reuseKeyPartition(key)
	return ok
}

// TestReuseFilterSparesReads: with the replica's memo, a create of a URL
// the partition never indexed reads no reuse key from the store; a reuse
// create of an indexed URL still reads it and gets the existing link, also
// after the memo was dropped (a restart) and after the filter outgrew its
// size and was rebuilt.
func TestReuseFilterSparesReads(t *testing.T) {
	rg := testRing(t, 7, 16)
	rep := newReplica(t, rg)
	memo := raftstore.NewMemo()
	apply := func(cs ...Create) ([]Result, int) {
		t.Helper()
		pb := rep.db.NewIndexedBatch()
		tx := &keyGets{countingTxn: countingTxn{Txn: raftstore.NewMemoTxn(pb, testGroup, memo), memo: memo}, match: isReuseKey}
		var out []Result
		for _, c := range cs {
			rep.ix++
			r, err := DecodeResult(rep.m.Apply(tx, rep.ix, EncodeCreate(c)))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		if err := pb.Commit(nil); err != nil {
			t.Fatal(err)
		}
		_ = pb.Close()
		return out, tx.matched
	}
	const p = 5
	url := func(i int) string { return fmt.Sprintf("https://f.example/%d", i) }
	first, _ := apply(Create{Partition: p, URL: url(0)}) // builds the filter
	var fresh []Create
	for i := 1; i <= keyfilter.MinKeys+100; i++ { // beyond the first filter's size: rebuilt
		fresh = append(fresh, Create{Partition: p, URL: url(i), Reuse: i%2 == 0})
	}
	if _, reads := apply(fresh...); reads > 2 {
		t.Errorf("%d creates of new URLs read the reuse index %d times, want at most a false positive or two", len(fresh), reads)
	}
	check := func(name string) {
		t.Helper()
		got, reads := apply(Create{Partition: p, URL: url(0), Reuse: true}, Create{Partition: p, URL: url(150), Reuse: true})
		if reads != 2 {
			t.Errorf("%s: %d reuse index reads for two indexed URLs, want 2", name, reads)
		}
		if got[0].Status != ResultExisting || got[0].Record.Code != first[0].Record.Code || got[1].Status != ResultExisting {
			t.Errorf("%s: %+v, want the existing links", name, got)
		}
	}
	check("with the memo")
	memo.Clear()
	check("after the memo was dropped")
	v, _ := memo.Get(reuseFilterKey(p))
	if f := v.(*reuseFilter); f.Keys() != len(fresh)+1 || f.Full() {
		t.Errorf("rebuilt filter: %d keys, limit %d; want %d keys within the limit", f.Keys(), f.Limit(), len(fresh)+1)
	}
}
