package linkstore

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/linkraft/linkraft/raftstore"
)

// purge applies one Purge in its own batch and returns how many links it
// removed.
func (r *replica) purge(p Purge) (uint64, error) {
	r.t.Helper()
	return DecodePurgeResult(r.applyBatch(AppendPurge(nil, p))[0])
}

func TestPurgeRemovesOnlyLinksExpiredAtTheCutoff(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 9
	mk := func(c Create) Record {
		t.Helper()
		res := rep.create(c)
		if res.Status != ResultCreated {
			t.Fatalf("create %+v: %s %s", c, res.Status, res.Reason)
		}
		return res.Record
	}
	early := mk(Create{Partition: p, URL: "https://a.example/", CreatedAtMs: 1, ExpiresAtMs: 100})
	late := mk(Create{Partition: p, URL: "https://b.example/", CreatedAtMs: 1, ExpiresAtMs: 200})
	never := mk(Create{Partition: p, URL: "https://c.example/", CreatedAtMs: 1})
	clicksOnly := mk(Create{Partition: p, URL: "https://d.example/", CreatedAtMs: 1, MaxClicks: 3})
	alias, ap := aliasIn(t, rg, p, "purge"), uint32(p)
	aliased := mk(Create{Partition: ap, URL: "https://e.example/", Alias: alias, CreatedAtMs: 1, ExpiresAtMs: 150})
	unknown := rg.Codec().Encode(func() uint64 { lo, _ := rg.Codec().Range(p); return lo + 1000 }())

	items := []PurgeItem{}
	for _, code := range []string{early.Code, late.Code, never.Code, clicksOnly.Code, aliased.Code, unknown} {
		items = append(items, PurgeItem{Partition: p, Code: code})
	}
	n, err := rep.purge(Purge{CutoffMs: 150, Items: items})
	if err != nil || n != 2 {
		t.Fatalf("purge = %d, %v; want 2 (the links expired at 100 and 150)", n, err)
	}
	for _, rec := range []Record{early, aliased} {
		if _, err := Get(rep.reader(), p, rec.Code); !errors.Is(err, ErrDeleted) {
			t.Fatalf("Get of purged %s: %v, want ErrDeleted", rec.Code, err)
		}
		if ms, err := DeletedAt(rep.reader(), p, rec.Code); err != nil || ms != rec.ExpiresAtMs {
			t.Fatalf("DeletedAt of purged %s = %d, %v; want its expiry %d", rec.Code, ms, err, rec.ExpiresAtMs)
		}
	}
	for _, rec := range []Record{late, never, clicksOnly} {
		if got, err := Get(rep.reader(), p, rec.Code); err != nil || !got.Equal(rec) {
			t.Fatalf("Get of kept %s = %+v, %v", rec.Code, got, err)
		}
	}
	if _, err := Get(rep.reader(), p, unknown); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a purge stored something at an unknown code: %v", err)
	}
	// Purged links leave the list index; the others stay listed.
	page, err := List(rep.reader(), ListQuery{Partitions: []uint32{p}, All: true, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, l := range page.Records {
		listed[l.Code] = true
	}
	if listed[early.Code] || listed[aliased.Code] || !listed[late.Code] || !listed[never.Code] || len(page.Records) != 3 {
		t.Fatalf("listed after the purge: %v", listed)
	}
	// A second purge with the same cutoff changes nothing.
	before := rep.dump()
	if n, err := rep.purge(Purge{CutoffMs: 150, Items: items}); err != nil || n != 0 {
		t.Fatalf("second purge = %d, %v; want 0", n, err)
	}
	if !equalDumps(before, rep.dump()) {
		t.Fatal("a repeated purge changed the state")
	}
	// Purged codes are never issued again.
	if res := rep.create(Create{Partition: ap, URL: "https://e.example/", Alias: alias}); res.Status != ResultAliasTaken {
		t.Fatalf("re-creating a purged alias: %s, want alias_taken", res.Status)
	}
	next := mk(Create{Partition: p, URL: "https://f.example/"})
	for _, rec := range []Record{early, late, never, clicksOnly} {
		if next.Code == rec.Code {
			t.Fatalf("code %s issued twice", next.Code)
		}
	}
	// A later cutoff purges the other expiring link.
	if n, err := rep.purge(Purge{CutoffMs: 200, Items: items}); err != nil || n != 1 {
		t.Fatalf("purge at 200 = %d, %v; want 1", n, err)
	}
}

func TestPurgeRemovesTheReuseIndexEntry(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 3
	// A link with an expiry is never indexed; an index entry can still
	// point at an expiring link when one is pointed there by hand (as an
	// edit that adds an expiry leaves none): check the purge removes what
	// it finds.
	plain := rep.create(Create{Partition: p, URL: "https://r.example/", CreatedAtMs: 1}).Record
	b := rep.db.NewIndexedBatch()
	rec := plain
	rec.ExpiresAtMs = 10
	if err := raftstore.NewTxn(b, testGroup).Set(LinkKey(p, plain.Code), AppendRecord(nil, rec)); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := rep.purge(Purge{CutoffMs: 10, Items: []PurgeItem{{p, plain.Code}}}); err != nil || n != 1 {
		t.Fatalf("purge = %d, %v", n, err)
	}
	if _, err := FindURL(rep.reader(), p, "", plain.URL); !errors.Is(err, ErrNotFound) {
		t.Fatalf("FindURL after purge: %v, want ErrNotFound", err)
	}
	if res := rep.create(Create{Partition: p, URL: plain.URL, Reuse: true}); res.Status != ResultCreated || res.Record.Code == plain.Code {
		t.Fatalf("reuse create after purge: %+v", res)
	}
}

func TestPurgeRefusalsChangeNothing(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 4
	rec := rep.create(Create{Partition: p, URL: "https://x.example/", ExpiresAtMs: 5}).Record
	before := rep.dump()
	bad := [][]byte{
		AppendPurge(nil, Purge{CutoffMs: -1, Items: []PurgeItem{{p, rec.Code}}}),
		AppendPurge(nil, Purge{CutoffMs: 10, Items: []PurgeItem{{64, rec.Code}}}),
		AppendPurge(nil, Purge{CutoffMs: 10, Items: []PurgeItem{{p + 1, rec.Code}}}),
		AppendPurge(nil, Purge{CutoffMs: 10, Items: []PurgeItem{{p, rec.Code}, {p, "wrong-partition-alias"}}}),
		AppendPurge(nil, Purge{CutoffMs: 10}),
		AppendPurge(nil, Purge{CutoffMs: 10, Items: make([]PurgeItem, MaxPurgeItems+1)}),
		AppendPurge(nil, Purge{CutoffMs: 10, Items: []PurgeItem{{p, ""}}}),
		{commandVersion, byte(TypePurge)},
		append(AppendPurge(nil, Purge{CutoffMs: 10, Items: []PurgeItem{{p, rec.Code}}}), 'x'),
	}
	for i, cmd := range bad {
		raw := rep.applyBatch(cmd)[0]
		if _, err := DecodePurgeResult(raw); !errors.Is(err, ErrBatchRefused) {
			t.Errorf("command %d (%x): %v, want a refusal", i, cmd, err)
		}
	}
	if !equalDumps(before, rep.dump()) {
		t.Fatal("a refused purge changed the state")
	}
}

// TestPurgeReplicasEndIdentical applies creates with expiries, deletes,
// edits and purges to two replicas, cut into Pebble batches differently, and requires
// byte-identical results and state.
func TestPurgeReplicasEndIdentical(t *testing.T) {
	rg := testRing(t, 7, 8)
	a, b := newReplica(t, rg), newReplica(t, rg)
	rnd := rand.New(rand.NewPCG(3, 4))
	var cmds [][]byte
	var codes []PurgeItem
	// Codes are known ahead: the allocator hands them out in order.
	next := map[uint32]uint64{}
	for i := 0; i < 2000; i++ {
		p := uint32(rnd.IntN(8))
		switch k := rnd.IntN(10); {
		case k < 6:
			lo, _ := rg.Codec().Range(p)
			codes = append(codes, PurgeItem{p, rg.Codec().Encode(lo + next[p])})
			next[p]++
			var exp int64
			if rnd.IntN(4) != 0 {
				exp = int64(1 + rnd.IntN(1000))
			}
			cmds = append(cmds, EncodeCreate(Create{Partition: p, URL: fmt.Sprintf("https://p.example/%d", rnd.IntN(50)), CreatedAtMs: int64(i), ExpiresAtMs: exp}))
		case k < 7 && len(codes) > 0:
			it := codes[rnd.IntN(len(codes))]
			cmds = append(cmds, AppendDelete(nil, Delete{Partition: it.Partition, Code: it.Code, DeletedAtMs: int64(i)}))
		case k < 8 && len(codes) > 0:
			it := codes[rnd.IntN(len(codes))]
			cmds = append(cmds, AppendEdit(nil, Edit{Partition: it.Partition, Code: it.Code, UpdatedAtMs: int64(i),
				Fields: EditExpiry | EditURL, ExpiresAtMs: int64(rnd.IntN(1500)), URL: fmt.Sprintf("https://edited.example/%d", i)}))
		case len(codes) > 0:
			items := make([]PurgeItem, 1+rnd.IntN(20))
			for j := range items {
				items[j] = codes[rnd.IntN(len(codes))]
			}
			cmds = append(cmds, AppendPurge(nil, Purge{CutoffMs: int64(rnd.IntN(1000)), Items: items}))
		}
	}
	resA := applyChunked(a, cmds, func() int { return 1 })
	resB := applyChunked(b, cmds, func() int { return 1 + rnd.IntN(64) })
	purged := uint64(0)
	for i := range resA {
		if !bytes.Equal(resA[i], resB[i]) {
			t.Fatalf("command %d: results differ: %x vs %x", i, resA[i], resB[i])
		}
		if cmds[i][1] == byte(TypePurge) {
			n, err := DecodePurgeResult(resA[i])
			if err != nil {
				t.Fatalf("purge %d: %v", i, err)
			}
			purged += n
		}
	}
	if purged < 100 {
		t.Fatalf("only %d links purged; the sequence does not exercise purges", purged)
	}
	if !equalDumps(a.dump(), b.dump()) {
		t.Fatal("replicas differ")
	}
}

func TestScanExpiredResumes(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 6
	var want []string
	for i := 0; i < 50; i++ {
		c := Create{Partition: p, URL: fmt.Sprintf("https://s.example/%d", i), CreatedAtMs: 1}
		if i%3 != 0 {
			c.ExpiresAtMs = int64(10 + i%2*1000) // odd i: not expired at 100
		}
		rec := rep.create(c).Record
		if i%3 != 0 && i%2 == 0 {
			want = append(want, rec.Code)
		}
	}
	// Another partition's expired link is never reported.
	rep.create(Create{Partition: p + 1, URL: "https://other.example/", ExpiresAtMs: 1})
	var got []string
	after, rounds := "", 0
	for {
		rounds++
		var err error
		after, _, err = ScanExpired(rep.reader(), p, after, 100, 7, func(code string) bool {
			got = append(got, code)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if after == "" {
			break
		}
	}
	if rounds != 8 { // 50 records, 7 per round
		t.Fatalf("%d rounds, want 8", rounds)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("expired codes %v, want %v", got, want)
	}
	// fn returning false stops at that code, and the scan resumes after it.
	var first []string
	after, _, err := ScanExpired(rep.reader(), p, "", 100, 1000, func(code string) bool {
		first = append(first, code)
		return len(first) < 2
	})
	if err != nil || after != first[1] {
		t.Fatalf("stopped scan resumes after %q (%v), want %q", after, err, first[1])
	}
}

func FuzzDecodePurge(f *testing.F) {
	f.Add(AppendPurge(nil, Purge{CutoffMs: 5, Items: []PurgeItem{{1, "abc"}, {2, "defghij"}}}))
	f.Add(AppendPurge(nil, Purge{CutoffMs: -5, Items: []PurgeItem{{0, "x"}}}))
	f.Add([]byte{commandVersion, byte(TypePurge), 0, 1, 0, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		p, ok := c.(Purge)
		if !ok {
			return
		}
		if again := AppendPurge(nil, p); !bytes.Equal(again, b) {
			t.Fatalf("round trip: %x -> %+v -> %x", b, p, again)
		}
	})
}

func FuzzDecodePurgeResult(f *testing.F) {
	f.Add([]byte{resultVersion, byte(ResultPurged), 3})
	f.Add(badRequest("nope"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodePurgeResult(b)
	})
}
