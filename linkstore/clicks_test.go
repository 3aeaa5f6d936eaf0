package linkstore

import (
	"testing"

	"github.com/linkraft/linkraft/clicks"
	"github.com/linkraft/linkraft/clickstore"
)

func TestClickBatchAppliedOnce(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	created := rep.create(Create{Partition: 5, URL: "https://example.com/"})
	code := created.Record.Code
	batch := clicks.Batch{Router: "r1", Seq: 7, Deltas: []clicks.Delta{
		{Code: code, Day: 20000, Clicks: 3, Bots: 1, Browsers: []clicks.Count{{Key: "Chrome", N: 3}}},
	}}
	cmd := AppendClickBatch(nil, batch)
	if c, err := DecodeCommand(cmd); err != nil || c.Type() != TypeClicks {
		t.Fatalf("decode: %v %v", c, err)
	}
	// Applied once, then a duplicate in the same and in a later batch.
	raws := append(rep.applyBatch(cmd, cmd), rep.applyBatch(cmd)...)
	want := []Status{ResultClicksApplied, ResultClicksDuplicate, ResultClicksDuplicate}
	for i, raw := range raws {
		res, err := DecodeResult(raw)
		if err != nil || res.Status != want[i] {
			t.Fatalf("apply %d: %+v %v, want %s", i, res, err, want[i])
		}
	}
	st, err := clickstore.Query(rep.reader(), rg.PartitionOfCode(code), code, 20000, 20000)
	if err != nil || st.Clicks != 3 || st.Bots != 1 || st.TotalClicks != 3 {
		t.Fatalf("stats %+v %v", st, err)
	}
	// The clicks live in the code's partition.
	lo, hi := PartitionBounds(rg.PartitionOfCode(code))
	k := clickstore.TotalKey(rg.PartitionOfCode(code), code)
	if string(k) < string(lo) || string(k) >= string(hi) {
		t.Fatalf("totals key %x outside its partition [%x, %x)", k, lo, hi)
	}
}

func TestClickBatchInvalid(t *testing.T) {
	rep := newReplica(t, testRing(t, 7, 64))
	before := len(rep.dump())
	for _, b := range []clicks.Batch{
		{Router: "r1", Seq: 0, Deltas: []clicks.Delta{{Code: "abc", Day: 1, Clicks: 1}}},
		{Router: "r1", Seq: 1, Deltas: []clicks.Delta{{Code: "a b", Day: 1, Clicks: 1}}},
	} {
		res, err := DecodeResult(rep.applyBatch(AppendClickBatch(nil, b))[0])
		if err != nil || res.Status != ResultBadRequest || res.Reason == "" {
			t.Fatalf("%+v: %+v %v", b, res, err)
		}
	}
	if after := len(rep.dump()); after != before {
		t.Fatalf("invalid batches wrote %d keys", after-before)
	}
}
