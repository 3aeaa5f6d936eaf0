package linkstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strings"
	"testing"
)

// TestReplayRebuildsFirstResult: a retried item (same fields, a later
// clock, as a new leader resends it) is answered with its first result
// byte for byte, rebuilt from the compact entry, for every kind of create,
// in a later batch and in the same one; and a replica of the legacy table
// answers the same bytes.
func TestReplayRebuildsFirstResult(t *testing.T) {
	rg := testRing(t, 7, 64)
	const p = 6
	lo, _ := rg.Codec().Range(p)
	creates := []Create{
		{Partition: p, URL: "https://gen.example/"},
		{Partition: p, URL: "https://reuse.example/", Reuse: true},
		{Partition: p, URL: "https://reuse.example/", Reuse: true}, // ResultExisting
		{Partition: p, URL: "https://alias.example/", Alias: aliasIn(t, rg, p, "replay")},
		{Partition: p, URL: "https://shape.example/", Alias: rg.Codec().Encode(lo + 40)},
		{Partition: p, URL: "https://meta.example/", Owner: "key-1", Title: "Ünïcode title", Tags: []string{"a", "bb"}, RedirectStatus: 307},
		{Partition: p, URL: "https://meta.example/", Owner: "key-1", Reuse: true, Tags: []string{}}, // ResultExisting
		{Partition: p, URL: "https://limits.example/", ExpiresAtMs: 1 << 41, MaxClicks: 12},
		{Partition: p, URL: "https://limits.example/", ExpiresAtMs: 5, Alias: aliasIn(t, rg, p, "lim"), RedirectStatus: 301, Owner: "o", Title: "t"},
		{Partition: p, URL: "https://taken.example/", Alias: aliasIn(t, rg, p, "replay")}, // ResultAliasTaken
		{Partition: p, URL: ""}, // ResultBadRequest
		{Partition: p, URL: "https://neg.example/", CreatedAtMs: -3}, // a clock before 1970
	}
	items := func(clock int64, prefix string) []BatchItem {
		var out []BatchItem
		for i, c := range creates {
			if c.CreatedAtMs == 0 {
				c.CreatedAtMs = clock + int64(i)
			}
			out = append(out, BatchItem{RequestID: fmt.Sprintf("%s%d", prefix, i), Create: c})
		}
		return out
	}
	cur, legacy := newReplica(t, rg), newReplica(t, rg)
	first := AppendCreateBatch(nil, CreateBatch{Items: items(1_700_000_000_000, "id-")})
	a := cur.applyBatch(first)[0]
	if b := legacy.legacyBatch(items(1_700_000_000_000, "id-")...); !bytes.Equal(a, b) {
		t.Fatalf("first answers differ from the legacy table's:\n%x\n%x", a, b)
	}
	firstItems := rawItems(t, a)
	wantStatus := []Status{ResultCreated, ResultCreated, ResultExisting, ResultCreated, ResultCreated, ResultCreated,
		ResultExisting, ResultCreated, ResultCreated, ResultAliasTaken, ResultBadRequest, ResultCreated}
	for i, raw := range firstItems {
		if r, err := DecodeResult(raw); err != nil || r.Status != wantStatus[i] {
			t.Fatalf("item %d: %+v, %v; want %s", i, r, err, wantStatus[i])
		}
	}
	// The retry, a minute later, plus the same items once more in the
	// same batch (answered from the entries this batch recorded).
	retry := items(1_700_000_060_000, "id-")
	again := append(items(1_700_000_120_000, "new-"), items(1_700_000_180_000, "new-")...)
	for _, cmd := range []CreateBatch{{Items: retry}, {Items: again}} {
		enc := AppendCreateBatch(nil, cmd)
		a, b := cur.applyBatch(enc)[0], legacy.legacyBatch(cmd.Items...)
		if !bytes.Equal(a, b) {
			t.Fatalf("retried answers differ from the legacy table's:\n%x\n%x", a, b)
		}
	}
	got := rawItems(t, cur.applyBatch(AppendCreateBatch(nil, CreateBatch{Items: retry}))[0])
	for i := range got {
		if !bytes.Equal(got[i], firstItems[i]) {
			t.Errorf("item %d: retry answered %x, first %x", i, got[i], firstItems[i])
		}
	}
	if !equalDumps(dataKeys(cur.dump()), dataKeys(legacy.dump())) {
		t.Fatal("the links differ from those of the legacy table's replica")
	}
}

// dataKeys returns the keys and values of dump outside the request tables.
func dataKeys(dump [][2][]byte) [][2][]byte {
	var out [][2][]byte
	for _, kv := range dump {
		if !bytes.Contains(kv[0], requestPrefix[:5]) {
			out = append(out, kv)
		}
	}
	return out
}

// TestReplayOtherFields: a request ID reused with other fields is answered
// with the link as it is stored now (edits included), or ResultBadRequest
// once the link is deleted, while a faithful retry still gets the first
// result; no answer writes anything.
func TestReplayOtherFields(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 11
	alias := aliasIn(t, rg, p, "other")
	gen := Create{Partition: p, URL: "https://first.example/", Title: "first", CreatedAtMs: 10}
	ali := Create{Partition: p, URL: "https://first.example/a", Alias: alias, CreatedAtMs: 10}
	first := rep.batch(BatchItem{RequestID: "g", Create: gen}, BatchItem{RequestID: "a", Create: ali})
	answer := func(id string, c Create) (Result, bool) {
		t.Helper()
		before := rep.dump()
		raw := rep.applyBatch(AppendCreateBatch(nil, CreateBatch{Items: []BatchItem{{RequestID: id, Create: c}}}))[0]
		items, replayed, _, err := DecodeBatchResultReplays(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !equalDumps(before, rep.dump()) {
			t.Fatalf("the answer to %s wrote to the store", id)
		}
		r, err := DecodeResult(items[0])
		if err != nil {
			t.Fatal(err)
		}
		return r, replayed[0]
	}
	other := gen
	other.URL, other.CreatedAtMs = "https://other.example/", 20
	otherAlias := ali
	otherAlias.Title = "not the first"
	for _, c := range []struct {
		id     string
		create Create
		want   Result
	}{
		{"g", other, first[0]},
		{"a", otherAlias, first[1]},
	} {
		if got, replayed := answer(c.id, c.create); !replayed || !got.Equal(c.want) {
			t.Fatalf("%s with other fields: %+v (replayed %v), want the stored link %+v", c.id, got, replayed, c.want)
		}
	}
	code := first[0].Record.Code
	if res := rep.edit(Edit{Partition: p, Code: code, UpdatedAtMs: 30, Fields: EditTitle, Title: "edited"}); res.Status != ResultEdited {
		t.Fatalf("edit: %+v", res)
	}
	edited, err := Get(rep.reader(), p, code)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := answer("g", other); !got.Equal(Result{Status: ResultCreated, Record: edited}) {
		t.Fatalf("with other fields after an edit: %+v, want the edited link %+v", got, edited)
	}
	retried := gen
	retried.CreatedAtMs = 40
	if got, _ := answer("g", retried); !got.Equal(first[0]) {
		t.Fatalf("a faithful retry after an edit: %+v, want the first result %+v", got, first[0])
	}
	for _, d := range []Delete{{Partition: p, Code: code, DeletedAtMs: 50}, {Partition: p, Code: alias, DeletedAtMs: 50}} {
		if res := rep.del(d); res.Status != ResultDeleted {
			t.Fatalf("delete %s: %+v", d.Code, res)
		}
	}
	for _, c := range []struct {
		id, code string
		create   Create
	}{{"g", code, other}, {"a", alias, otherAlias}} {
		if got, replayed := answer(c.id, c.create); !replayed || got.Status != ResultBadRequest || !strings.Contains(got.Reason, c.code) {
			t.Fatalf("%s with other fields after the delete: %+v (replayed %v), want bad_request naming %s", c.id, got, replayed, c.code)
		}
	}
	if got, _ := answer("g", retried); !got.Equal(first[0]) {
		t.Fatalf("a faithful retry after the delete: %+v, want the first result %+v", got, first[0])
	}
}

// TestCreatedHashFormat pins createdHash: it is FNV-1a 64 (hash/fnv) over
// the documented encoding, and a stored value that every build must
// compute alike.
func TestCreatedHashFormat(t *testing.T) {
	c := Create{Partition: 0x01020304, URL: "https://h.example/x", Alias: "al", Reuse: true, CreatedAtMs: 99,
		ExpiresAtMs: -5, MaxClicks: 300, Owner: "own", Title: "tt", Tags: []string{"x", "yz"}, RedirectStatus: 308}
	var enc []byte
	enc = binary.BigEndian.AppendUint32(enc, c.Partition)
	enc = append(enc, 1)
	enc = binary.AppendVarint(enc, c.ExpiresAtMs)
	enc = binary.AppendUvarint(enc, c.MaxClicks)
	enc = binary.AppendUvarint(enc, uint64(c.RedirectStatus))
	for _, s := range []string{c.Owner, c.Title, c.Alias, c.URL} {
		enc = append(binary.AppendUvarint(enc, uint64(len(s))), s...)
	}
	enc = binary.AppendUvarint(enc, uint64(len(c.Tags)))
	for _, s := range c.Tags {
		enc = append(binary.AppendUvarint(enc, uint64(len(s))), s...)
	}
	h := fnv.New64a()
	h.Write(enc)
	if got, want := createdHash(&c), h.Sum64(); got != want {
		t.Fatalf("createdHash = %#x, FNV-1a of the encoding %#x", got, want)
	}
	if got := createdHash(&c); got != 0x37fe26df61f09b10 {
		t.Fatalf("createdHash = %#x: the stored format changed", got)
	}
	// CreatedAtMs is not hashed; every other field is.
	d := c
	d.CreatedAtMs = 7
	if createdHash(&d) != createdHash(&c) {
		t.Fatal("CreatedAtMs changed the hash")
	}
	for name, change := range map[string]func(*Create){
		"partition": func(c *Create) { c.Partition++ },
		"url":       func(c *Create) { c.URL += "/" },
		"alias":     func(c *Create) { c.Alias = "" },
		"reuse":     func(c *Create) { c.Reuse = false },
		"expires":   func(c *Create) { c.ExpiresAtMs = 0 },
		"clicks":    func(c *Create) { c.MaxClicks = 0 },
		"owner":     func(c *Create) { c.Owner = "" },
		"title":     func(c *Create) { c.Title = "t" },
		"tags":      func(c *Create) { c.Tags = []string{"xy", "z"} },
		"redirect":  func(c *Create) { c.RedirectStatus = 0 },
		"shift":     func(c *Create) { c.Owner, c.Title = "ow", "ntt" },
	} {
		d := c
		d.Tags = append([]string(nil), c.Tags...)
		change(&d)
		if createdHash(&d) == createdHash(&c) {
			t.Errorf("%s: the hash did not change", name)
		}
	}
}
