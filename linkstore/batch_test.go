package linkstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// batch applies one CreateBatch in its own Pebble batch and decodes every
// item's result.
func (r *replica) batch(items ...BatchItem) []Result {
	r.t.Helper()
	raw, err := DecodeBatchResult(r.applyBatch(AppendCreateBatch(nil, CreateBatch{Items: items}))[0])
	if err != nil {
		r.t.Fatalf("decode batch result: %v", err)
	}
	if len(raw) != len(items) {
		r.t.Fatalf("%d results for %d items", len(raw), len(items))
	}
	out := make([]Result, len(raw))
	for i, b := range raw {
		if out[i], err = DecodeResult(b); err != nil {
			r.t.Fatalf("decode item %d result: %v", i, err)
		}
	}
	return out
}

func TestCreateBatchAppliesItemsInOrder(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 9
	lo, _ := rg.Codec().Range(p)
	alias := aliasIn(t, rg, p, "batch")
	res := rep.batch(
		BatchItem{RequestID: "a", Create: Create{Partition: p, URL: "https://a.example/", CreatedAtMs: 1}},
		BatchItem{Create: Create{Partition: p, URL: "https://b.example/", CreatedAtMs: 1}},
		BatchItem{RequestID: "c", Create: Create{Partition: p, URL: "https://a.example/", Reuse: true, CreatedAtMs: 1}},
		BatchItem{RequestID: "d", Create: Create{Partition: p, URL: "https://d.example/", Alias: alias, CreatedAtMs: 1}},
		BatchItem{RequestID: "e", Create: Create{Partition: p, URL: "https://e.example/", Alias: alias, CreatedAtMs: 1}},
		BatchItem{RequestID: "f", Create: Create{Partition: p, URL: ""}},
	)
	want := []Status{ResultCreated, ResultCreated, ResultExisting, ResultCreated, ResultAliasTaken, ResultBadRequest}
	for i, r := range res {
		if r.Status != want[i] {
			t.Fatalf("item %d: %s (%s), want %s", i, r.Status, r.Reason, want[i])
		}
	}
	if res[0].Record.Code != rg.Codec().Encode(lo) || res[1].Record.Code != rg.Codec().Encode(lo+1) {
		t.Fatalf("generated codes %s, %s: not the allocator's first two", res[0].Record.Code, res[1].Record.Code)
	}
	if !res[2].Record.Equal(res[0].Record) {
		t.Fatalf("reuse in the same batch: %+v, want %+v", res[2].Record, res[0].Record)
	}
	if n, err := Count(rep.reader(), p); err != nil || n != 3 {
		t.Fatalf("Count = %d, %v; want 3", n, err)
	}
}

// TestCreateBatchSameAsSingles applies the same creates one command each
// and as one batch (without request IDs, so no request table): both
// replicas end with the same keys, byte for byte.
func TestCreateBatchSameAsSingles(t *testing.T) {
	rg := testRing(t, 7, 64)
	singles, batched := newReplica(t, rg), newReplica(t, rg)
	lo, _ := rg.Codec().Range(5)
	var items []BatchItem
	for i := range 40 {
		c := Create{Partition: uint32(5 + i%3), URL: fmt.Sprintf("https://s.example/%d", i%25), Reuse: i%4 == 0, CreatedAtMs: int64(i)}
		switch i {
		case 7: // an alias of generated shape the allocator must skip
			c = Create{Partition: 5, URL: "https://alias.example/", Alias: rg.Codec().Encode(lo + 5), CreatedAtMs: 7}
		case 11:
			c = Create{Partition: 6, URL: "https://alias.example/", Alias: aliasIn(t, rg, 6, "same"), CreatedAtMs: 11}
		}
		items = append(items, BatchItem{Create: c})
		singles.applyBatch(EncodeCreate(c))
	}
	res := batched.batch(items...)
	for i, r := range res {
		if r.Status != ResultCreated && r.Status != ResultExisting {
			t.Fatalf("item %d: %s (%s)", i, r.Status, r.Reason)
		}
	}
	if !equalDumps(singles.dump(), batched.dump()) {
		t.Fatalf("a batch left another state than the same creates one by one")
	}
}

// TestCreateBatchRetriedItems retries items of a batch, in a later batch
// and within the same one: each request ID creates one link, and every
// retry gets the first result.
func TestCreateBatchRetriedItems(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 4
	item := func(id string, i int) BatchItem {
		return BatchItem{RequestID: id, Create: Create{Partition: p, URL: fmt.Sprintf("https://r.example/%d", i), CreatedAtMs: int64(i)}}
	}
	// replays applies items as one batch and returns which items the
	// batch result names as replayed.
	replays := func(items ...BatchItem) []bool {
		raw := rep.applyBatch(AppendCreateBatch(nil, CreateBatch{Items: items}))[0]
		res, replayed, end, err := DecodeBatchResultReplays(raw)
		if err != nil || len(res) != len(items) || len(replayed) != len(items) {
			t.Fatalf("batch result: %d items, %v", len(res), err)
		}
		// Without the trailer, the result reads as before: nothing replayed.
		old, oldReplayed, oldEnd, err := DecodeBatchResultReplays(raw[:end])
		if err != nil || len(old) != len(items) || oldEnd != end || slices.Contains(oldReplayed, true) {
			t.Fatalf("batch result without its trailer: %d items, %v, %v", len(old), oldReplayed, err)
		}
		return replayed
	}
	first := rep.batch(item("r0", 0), item("r1", 1), item("r1", 1), item("r2", 2))
	if !first[1].Equal(first[2]) {
		t.Fatalf("same request ID twice in a batch: %+v and %+v", first[1], first[2])
	}
	// The retries come with a later clock, as a new leader's would.
	retry := rep.batch(item("r3", 3), item("r2", 20), item("r0", 10))
	if !retry[1].Equal(first[3]) || !retry[2].Equal(first[0]) {
		t.Fatalf("retried items: %+v, %+v; want %+v, %+v", retry[1], retry[2], first[3], first[0])
	}
	if n, err := Count(rep.reader(), p); err != nil || n != 4 {
		t.Fatalf("Count = %d, %v; want 4 links (r0 to r3)", n, err)
	}
	// Replayed: the items answered from the request table (a repeat in
	// the same batch included), not the ones this batch applied.
	if got, want := replays(item("r4", 4), item("r1", 11), item("r5", 5), item("r5", 5), item("", 6), item("r3", 13)), []bool{false, true, false, true, false, true}; !slices.Equal(got, want) {
		t.Fatalf("replayed items %v, want %v", got, want)
	}
	// A create without a request ID is not idempotent.
	a, b := rep.batch(item("", 5))[0], rep.batch(item("", 5))[0]
	if a.Record.Code == b.Record.Code {
		t.Fatalf("two creates without request ID share code %s", a.Record.Code)
	}
}

// shrinkWindow sets the request window and the epoch length for the test.
func shrinkWindow(t *testing.T, window, epochLen uint64) {
	t.Helper()
	prevW, prevE := requestWindow, requestEpochLen
	t.Cleanup(func() { requestWindow, requestEpochLen = prevW, prevE })
	requestWindow, requestEpochLen = window, epochLen
}

// entryEpochs counts the entries of each epoch of the request table, and
// fails if the legacy table has a key.
func entryEpochs(t *testing.T, rep *replica) map[uint64]int {
	t.Helper()
	epochs := make(map[uint64]int)
	must("scan", rep.reader().Scan(requestPrefix[:5], nil, func(k, _ []byte) bool {
		switch {
		case bytes.HasPrefix(k, entryPrefix):
			epochs[binary.BigEndian.Uint64(k[len(entryPrefix):])]++
		case bytes.HasPrefix(k, requestPrefix), bytes.HasPrefix(k, queuePrefix):
			t.Fatalf("a legacy table key %x", k)
		}
		return true
	}))
	return epochs
}

func TestCreateBatchForgetsOutsideTheWindow(t *testing.T) {
	shrinkWindow(t, 5, 5)
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 2
	item := func(i int) BatchItem {
		return BatchItem{RequestID: fmt.Sprintf("w%d", i), Create: Create{Partition: p, URL: fmt.Sprintf("https://w.example/%d", i)}}
	}
	first := rep.batch(item(0), item(1), item(2))
	rep.batch(item(3), item(4), item(5)) // w0 falls out (6 recorded, window 5)
	if got := rep.batch(item(1))[0]; !got.Equal(first[1]) {
		t.Fatalf("w1 inside the window: %+v, want %+v", got, first[1])
	}
	if got := rep.batch(item(0))[0]; got.Status != ResultCreated || got.Record.Code == first[0].Record.Code {
		t.Fatalf("w0 outside the window: %+v, want a new link", got)
	}
	// w0 again at seq 6: epoch 1. Every batch after seq 10 drops the
	// epochs below that of seq - 5 as a whole.
	next := 7
	for seq := uint64(7); seq < 60; {
		k := 1 + next%4
		var items []BatchItem
		for range k {
			items = append(items, item(next))
			next++
		}
		rep.batch(items...)
		seq += uint64(k)
		epochs := entryEpochs(t, rep)
		oldest := epochOf(seq - requestWindow)
		n := 0
		for e, c := range epochs {
			if e < oldest {
				t.Fatalf("at seq %d: epoch %d (%d entries) kept, oldest is %d", seq, e, c, oldest)
			}
			n += c
		}
		// One entry per seq from the oldest epoch's first on.
		if want := int(seq - oldest*requestEpochLen); n != want {
			t.Fatalf("at seq %d: %d entries, want %d", seq, n, want)
		}
		if n < int(requestWindow) || n > int(requestWindow+requestEpochLen) {
			t.Fatalf("at seq %d: %d entries, want the window to the window and an epoch", seq, n)
		}
	}
}

func TestCreateBatchRefusals(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	create := EncodeCreate(Create{Partition: 1, URL: "https://x/"})
	tooMany := AppendBatchHeader(nil, MaxBatchItems+1)
	for range MaxBatchItems + 1 {
		tooMany = AppendBatchItem(tooMany, "", create)
	}
	notCreate := AppendBatchItem(AppendBatchHeader(nil, 1), "", AppendDelete(nil, Delete{Partition: 1, Code: "abc"}))
	for name, cmd := range map[string][]byte{
		"empty":      AppendBatchHeader(nil, 0),
		"too many":   tooMany,
		"not create": notCreate,
		"truncated":  AppendBatchItem(AppendBatchHeader(nil, 2), "", create),
		"trailing":   append(AppendBatchItem(AppendBatchHeader(nil, 1), "", create), 0),
		"long id":    AppendBatchItem(AppendBatchHeader(nil, 1), string(make([]byte, MaxRequestID+1)), create),
	} {
		before := rep.dump()
		raw := rep.applyBatch(cmd)[0]
		if _, err := DecodeBatchResult(raw); !errors.Is(err, ErrBatchRefused) {
			t.Errorf("%s: %v, want ErrBatchRefused", name, err)
		}
		if !equalDumps(before, rep.dump()) {
			t.Errorf("%s: a refused batch changed the state", name)
		}
	}
}

func FuzzDecodeCreateBatch(f *testing.F) {
	f.Add(AppendCreateBatch(nil, CreateBatch{Items: []BatchItem{
		{RequestID: "r", Create: Create{Partition: 3, URL: "https://x.example/", Alias: "abc", CreatedAtMs: 7}},
		{Create: Create{Partition: 1, URL: "u", Reuse: true}},
	}}))
	f.Add(AppendBatchHeader(nil, 1))
	f.Add([]byte{commandVersion, byte(TypeCreateBatch), 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		cb, ok := c.(CreateBatch)
		if !ok {
			return
		}
		again, err := DecodeCommand(AppendCreateBatch(nil, cb))
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", cb, err)
		}
		ab := again.(CreateBatch)
		if len(ab.Items) != len(cb.Items) {
			t.Fatalf("%d items after re-encoding, want %d", len(ab.Items), len(cb.Items))
		}
		for i := range ab.Items {
			if ab.Items[i].RequestID != cb.Items[i].RequestID || !ab.Items[i].Create.Equal(cb.Items[i].Create) {
				t.Fatalf("item %d: %+v after re-encoding, want %+v", i, ab.Items[i], cb.Items[i])
			}
		}
	})
}

func FuzzDecodeBatchResult(f *testing.F) {
	ok := AppendResult(nil, Result{Status: ResultCreated, Record: Record{Code: "abcdefg", URL: "https://x/"}})
	f.Add(AppendBatchItemResult(AppendBatchItemResult(AppendBatchResultHeader(nil, 2), ok), AppendResult(nil, Result{Status: ResultAliasTaken})))
	f.Add(AppendResult(nil, Result{Status: ResultBadRequest, Reason: "why"}))
	f.Add(AppendBatchResultHeader(nil, 3))
	f.Add(appendReplays(AppendBatchItemResult(AppendBatchResultHeader(nil, 1), ok), []int{0}))
	f.Add(appendReplays(AppendBatchItemResult(AppendBatchItemResult(AppendBatchResultHeader(nil, 2), ok), ok), []int{1, 0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := DecodeBatchResult(b)
		if err != nil {
			return
		}
		_, replayed, end, err := DecodeBatchResultReplays(b)
		if err != nil || len(replayed) != len(items) || end > len(b) {
			t.Fatalf("DecodeBatchResultReplays of an accepted result: %d flags, end %d, %v", len(replayed), end, err)
		}
		var idx []int
		for i, r := range replayed {
			if r {
				idx = append(idx, i)
			}
		}
		_, back, _, err := DecodeBatchResultReplays(appendReplays(bytes.Clone(b[:end]), idx))
		if err != nil || !slices.Equal(back, replayed) {
			t.Fatalf("the replay trailer of %x does not round-trip: %v, %v", b, back, err)
		}
		again := AppendBatchResultHeader(nil, len(items))
		for _, it := range items {
			again = AppendBatchItemResult(again, it)
		}
		if back, err := DecodeBatchResult(again); err != nil || len(back) != len(items) {
			t.Fatalf("%d items do not round-trip: %d, %v", len(items), len(back), err)
		}
	})
}

// FuzzApplyBatch applies arbitrary batches: every item gets a decodable
// result.
func FuzzApplyBatch(f *testing.F) {
	f.Add("r1", "https://x.example/", "", uint32(3), "r1", "https://y.example/", "abc", uint32(3))
	f.Add("", "", "", uint32(70), "x", "u", "", uint32(0))
	rg := testRing(f, 7, 64)
	rep := newReplica(f, rg)
	f.Fuzz(func(t *testing.T, id1, url1, alias1 string, p1 uint32, id2, url2, alias2 string, p2 uint32) {
		if len(id1) > MaxRequestID || len(id2) > MaxRequestID {
			return
		}
		cmd := AppendCreateBatch(nil, CreateBatch{Items: []BatchItem{
			{RequestID: id1, Create: Create{Partition: p1, URL: url1, Alias: alias1}},
			{RequestID: id2, Create: Create{Partition: p2, URL: url2, Alias: alias2}},
		}})
		raw := rep.applyWith(t, cmd)[0]
		items, err := DecodeBatchResult(raw)
		if err != nil || len(items) != 2 {
			t.Fatalf("batch result %x: %d items, %v", raw, len(items), err)
		}
		for _, it := range items {
			if _, err := DecodeResult(it); err != nil {
				t.Fatalf("item result %x: %v", it, err)
			}
		}
	})
}
