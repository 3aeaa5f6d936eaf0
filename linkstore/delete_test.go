package linkstore

import (
	"bytes"
	"errors"
	"testing"
)

// del applies one Delete in its own batch and decodes the result.
func (r *replica) del(d Delete) Result {
	r.t.Helper()
	res, err := DecodeResult(r.applyBatch(AppendDelete(nil, d))[0])
	if err != nil {
		r.t.Fatalf("decode result: %v", err)
	}
	return res
}

func TestDeleteLeavesTombstoneAndAllocatorSkipsIt(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 11
	lo, _ := rg.Codec().Range(p)
	first := rep.create(Create{Partition: p, URL: "https://a.example/", CreatedAtMs: 1})
	if first.Status != ResultCreated || first.Record.Code != rg.Codec().Encode(lo) {
		t.Fatalf("first create: %+v", first)
	}
	if res := rep.del(Delete{Partition: p, Code: first.Record.Code, DeletedAtMs: 77}); res.Status != ResultDeleted {
		t.Fatalf("delete: %s (%s)", res.Status, res.Reason)
	}
	if _, err := Get(rep.reader(), p, first.Record.Code); !errors.Is(err, ErrDeleted) {
		t.Fatalf("Get of a deleted code: %v, want ErrDeleted", err)
	}
	if ms, err := DeletedAt(rep.reader(), p, first.Record.Code); err != nil || ms != 77 {
		t.Fatalf("DeletedAt = %d, %v; want 77", ms, err)
	}
	if n, err := Count(rep.reader(), p); err != nil || n != 0 {
		t.Fatalf("Count after delete = %d, %v; want 0", n, err)
	}
	// Deleting again changes nothing.
	before := rep.dump()
	if res := rep.del(Delete{Partition: p, Code: first.Record.Code, DeletedAtMs: 78}); res.Status != ResultGone {
		t.Fatalf("second delete: %s, want gone", res.Status)
	}
	if !equalDumps(before, rep.dump()) {
		t.Fatal("a second delete changed the state")
	}
	// The deleted code is never issued again: the allocator moves on, and
	// the code cannot be taken as an alias.
	second := rep.create(Create{Partition: p, URL: "https://a.example/", CreatedAtMs: 2})
	if second.Status != ResultCreated || second.Record.Code != rg.Codec().Encode(lo+1) {
		t.Fatalf("create after delete: %+v, want code %s", second, rg.Codec().Encode(lo+1))
	}
	if res := rep.create(Create{Partition: p, URL: "https://b.example/", Alias: first.Record.Code}); res.Status != ResultAliasTaken {
		t.Fatalf("alias on a deleted code: %s, want alias_taken", res.Status)
	}
	// The reuse index no longer points at the deleted link: a reuse create
	// of its URL found the new one.
	if got, err := FindURL(rep.reader(), p, "", "https://a.example/"); err != nil || got.Code != second.Record.Code {
		t.Fatalf("FindURL after delete = %+v, %v; want %s", got, err, second.Record.Code)
	}
	if res := rep.create(Create{Partition: p, URL: "https://a.example/", Reuse: true}); res.Status != ResultExisting || res.Record.Code != second.Record.Code {
		t.Fatalf("reuse after delete: %+v", res)
	}
}

func TestDeletedGeneratedShapeAliasStaysSkipped(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 5
	lo, _ := rg.Codec().Range(p)
	held := rg.Codec().Encode(lo) // the code the first generated create would get
	if res := rep.create(Create{Partition: p, URL: "https://alias.example/", Alias: held}); res.Status != ResultCreated {
		t.Fatalf("alias create: %s %s", res.Status, res.Reason)
	}
	if res := rep.del(Delete{Partition: p, Code: held}); res.Status != ResultDeleted {
		t.Fatalf("delete alias: %s %s", res.Status, res.Reason)
	}
	res := rep.create(Create{Partition: p, URL: "https://gen.example/"})
	if res.Status != ResultCreated || res.Record.Code != rg.Codec().Encode(lo+1) {
		t.Fatalf("generated create after deleting the alias: %+v, want %s", res, rg.Codec().Encode(lo+1))
	}
	if res := rep.create(Create{Partition: p, URL: "https://again.example/", Alias: held}); res.Status != ResultAliasTaken {
		t.Fatalf("re-creating a deleted alias: %s, want alias_taken", res.Status)
	}
}

func TestDeleteKeepsOtherReuseIndex(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 2
	a := rep.create(Create{Partition: p, URL: "https://same.example/"})
	b := rep.create(Create{Partition: p, URL: "https://same.example/"}) // not indexed: a is
	if res := rep.del(Delete{Partition: p, Code: b.Record.Code}); res.Status != ResultDeleted {
		t.Fatalf("delete: %s", res.Status)
	}
	if got, err := FindURL(rep.reader(), p, "", "https://same.example/"); err != nil || got.Code != a.Record.Code {
		t.Fatalf("FindURL = %+v, %v; want %s", got, err, a.Record.Code)
	}
}

func TestDeleteUnknownAndBad(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	code := rg.Codec().Encode(12345)
	p := rg.PartitionOfCode(code)
	before := rep.dump()
	if res := rep.del(Delete{Partition: p, Code: code}); res.Status != ResultNotFound {
		t.Fatalf("delete of an unknown code: %s, want not_found", res.Status)
	}
	for _, d := range []Delete{
		{Partition: p + 1, Code: code},
		{Partition: 64, Code: code},
		{Partition: p, Code: ""},
		{Partition: p, Code: string(bytes.Repeat([]byte("a"), MaxCodeLength+1))},
	} {
		if res := rep.del(d); res.Status != ResultBadRequest {
			t.Fatalf("delete %+v: %s, want bad_request", d, res.Status)
		}
	}
	if !equalDumps(before, rep.dump()) {
		t.Fatal("refused deletes changed the state")
	}
}

func TestDeleteRoundTrip(t *testing.T) {
	for _, d := range []Delete{{Partition: 7, Code: "abcdefg", DeletedAtMs: 1764223200000}, {Code: "x", DeletedAtMs: -3}} {
		c, err := DecodeCommand(AppendDelete(nil, d))
		if err != nil || c != Command(d) {
			t.Fatalf("round trip of %+v: %+v, %v", d, c, err)
		}
	}
	if _, err := DecodeCommand([]byte{commandVersion, byte(TypeDelete), 0, 0}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short delete: %v", err)
	}
	for _, ms := range []int64{0, 1, -1, 1 << 50} {
		if got, err := decodeTombstone(appendTombstone(nil, ms)); err != nil || got != ms {
			t.Fatalf("tombstone %d: %d, %v", ms, got, err)
		}
	}
	if _, err := decodeTombstone([]byte{tombstoneMarker, 0x02, 0x00}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("tombstone with trailing bytes: %v", err)
	}
}

func FuzzDecodeDelete(f *testing.F) {
	f.Add(AppendDelete(nil, Delete{Partition: 3, Code: "abcdefg", DeletedAtMs: 99}))
	f.Add([]byte{commandVersion, byte(TypeDelete), 0, 0, 0, 1, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		d, ok := c.(Delete)
		if !ok {
			return
		}
		again, err := DecodeCommand(AppendDelete(nil, d))
		if err != nil || !sameCommand(again, c) {
			t.Fatalf("delete %+v does not round-trip: %+v, %v", d, again, err)
		}
	})
}
