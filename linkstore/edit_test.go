package linkstore

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// edit applies one Edit in its own batch and decodes the result.
func (r *replica) edit(e Edit) Result {
	r.t.Helper()
	res, err := DecodeResult(r.applyBatch(AppendEdit(nil, e))[0])
	if err != nil {
		r.t.Fatalf("decode result: %v", err)
	}
	return res
}

func TestEditSetsAndClearsFields(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 12
	rec := rep.create(Create{Partition: p, URL: "https://a.example/", CreatedAtMs: 5}).Record
	res := rep.edit(Edit{
		Partition: p, Code: rec.Code, UpdatedAtMs: 9,
		Fields: EditURL | EditExpiry | EditMaxClicks | EditTitle | EditTags | EditRedirectStatus,
		URL:    "https://b.example/", ExpiresAtMs: 1000, MaxClicks: 3, Title: "New", Tags: []string{"x", "y"}, RedirectStatus: 307,
	})
	want := Record{Code: rec.Code, URL: "https://b.example/", CreatedAtMs: 5, ExpiresAtMs: 1000, MaxClicks: 3, Title: "New", Tags: []string{"x", "y"}, RedirectStatus: 307, UpdatedAtMs: 9}
	if res.Status != ResultEdited || !res.Record.Equal(want) {
		t.Fatalf("edit: %s %+v, want %+v", res.Status, res.Record, want)
	}
	if got, err := Get(rep.reader(), p, rec.Code); err != nil || !got.Equal(want) {
		t.Fatalf("Get after edit = %+v, %v", got, err)
	}
	// Only the named fields change; zero values clear.
	res = rep.edit(Edit{Partition: p, Code: rec.Code, UpdatedAtMs: 10, Fields: EditExpiry | EditTags | EditRedirectStatus})
	want.ExpiresAtMs, want.Tags, want.RedirectStatus, want.UpdatedAtMs = 0, nil, 0, 10
	if res.Status != ResultEdited || !res.Record.Equal(want) {
		t.Fatalf("clearing edit: %s %+v, want %+v", res.Status, res.Record, want)
	}
	if got, _ := Get(rep.reader(), p, rec.Code); !got.Equal(want) {
		t.Fatalf("Get after clearing = %+v", got)
	}
}

func TestEditUnknownDeletedAndOtherOwners(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 2
	lo, _ := rg.Codec().Range(p)
	if res := rep.edit(Edit{Partition: p, Code: rg.Codec().Encode(lo + 50), Fields: EditTitle, Title: "x"}); res.Status != ResultNotFound {
		t.Fatalf("edit of an unknown code: %s", res.Status)
	}
	owned := rep.create(Create{Partition: p, URL: "https://o.example/", Owner: "key-a"}).Record
	before := rep.dump()
	if res := rep.edit(Edit{Partition: p, Code: owned.Code, Owner: "key-b", Fields: EditTitle, Title: "stolen"}); res.Status != ResultNotFound {
		t.Fatalf("edit of another owner's link: %s, want not_found", res.Status)
	}
	if !equalDumps(before, rep.dump()) {
		t.Fatal("an edit of another owner's link changed the state")
	}
	if res := rep.edit(Edit{Partition: p, Code: owned.Code, Owner: "key-a", Fields: EditTitle, Title: "mine"}); res.Status != ResultEdited || res.Record.Title != "mine" {
		t.Fatalf("edit by the owner: %s %+v", res.Status, res.Record)
	}
	if res := rep.edit(Edit{Partition: p, Code: owned.Code, Fields: EditTitle, Title: "admin"}); res.Status != ResultEdited {
		t.Fatalf("edit without owner (admin): %s", res.Status)
	}
	rep.del(Delete{Partition: p, Code: owned.Code, DeletedAtMs: 1})
	before = rep.dump()
	if res := rep.edit(Edit{Partition: p, Code: owned.Code, Fields: EditTitle, Title: "zombie"}); res.Status != ResultGone {
		t.Fatalf("edit of a deleted link: %s, want gone", res.Status)
	}
	if !equalDumps(before, rep.dump()) {
		t.Fatal("an edit of a deleted link changed the state")
	}
}

func TestBadEditsChangeNothing(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 7
	rec := rep.create(Create{Partition: p, URL: "https://a.example/"}).Record
	before := rep.dump()
	bad := []Edit{
		{Partition: 64, Code: rec.Code, Fields: EditTitle},
		{Partition: p + 1, Code: rec.Code, Fields: EditTitle},
		{Partition: p, Code: rec.Code},
		{Partition: p, Code: rec.Code, Fields: EditURL},
		{Partition: p, Code: rec.Code, Fields: EditURL, URL: strings.Repeat("u", MaxURLLength+1)},
		{Partition: p, Code: rec.Code, Fields: EditExpiry, ExpiresAtMs: -1},
		{Partition: p, Code: rec.Code, Fields: EditTitle, Title: "bell\a"},
		{Partition: p, Code: rec.Code, Fields: EditTags, Tags: []string{"a", "a"}},
		{Partition: p, Code: rec.Code, Fields: EditTags, Tags: []string{"no space"}},
		{Partition: p, Code: rec.Code, Fields: EditRedirectStatus, RedirectStatus: 303},
		{Partition: p, Code: rec.Code, Fields: EditTitle | EditURL, Title: "ok", URL: ""},
		{Partition: p, Code: rec.Code, Owner: "bad owner", Fields: EditTitle},
	}
	for i, e := range bad {
		if res := rep.edit(e); res.Status != ResultBadRequest || res.Reason == "" {
			t.Errorf("edit %d (%+v): %s, want bad_request", i, e, res.Status)
		}
	}
	for i, cmd := range [][]byte{
		{commandVersion, byte(TypeEdit)},
		{commandVersion, byte(TypeEdit), 0x40, 0, 0, 0, p, 0, 1, 'a', 0},
		append(AppendEdit(nil, Edit{Partition: p, Code: rec.Code, Fields: EditTitle, Title: "x"}), 0),
	} {
		res, err := DecodeResult(rep.applyBatch(cmd)[0])
		if err != nil || res.Status != ResultBadRequest {
			t.Errorf("malformed edit %d: %+v, %v", i, res, err)
		}
	}
	if !equalDumps(before, rep.dump()) {
		t.Fatal("a refused edit changed the state")
	}
}

func TestEditLeavesTheReuseIndex(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 8
	rec := rep.create(Create{Partition: p, URL: "https://r.example/"}).Record
	// A title changes nothing for reuse.
	rep.edit(Edit{Partition: p, Code: rec.Code, Fields: EditTitle, Title: "t"})
	if got, err := FindURL(rep.reader(), p, "", rec.URL); err != nil || got.Code != rec.Code {
		t.Fatalf("FindURL after a title edit: %+v, %v", got, err)
	}
	// A new target: the old URL's reuse no longer finds it.
	rep.edit(Edit{Partition: p, Code: rec.Code, Fields: EditURL, URL: "https://other.example/"})
	if _, err := FindURL(rep.reader(), p, "", rec.URL); !errors.Is(err, ErrNotFound) {
		t.Fatalf("FindURL of the old URL after a URL edit: %v", err)
	}
	if res := rep.create(Create{Partition: p, URL: rec.URL, Reuse: true}); res.Status != ResultCreated || res.Record.Code == rec.Code {
		t.Fatalf("reuse create after a URL edit: %+v", res)
	}
	// Limits: out of the index too.
	other := rep.create(Create{Partition: p, URL: "https://l.example/"}).Record
	rep.edit(Edit{Partition: p, Code: other.Code, Fields: EditMaxClicks, MaxClicks: 2})
	if _, err := FindURL(rep.reader(), p, "", other.URL); !errors.Is(err, ErrNotFound) {
		t.Fatalf("FindURL of a link given a click limit: %v", err)
	}
}

// TestPurgeAfterEditToLaterExpiry: the sweep scanned a link as expired,
// then an edit moved its expiry past the cutoff before the purge applied:
// the purge leaves it. An edit also revives a link that expired.
func TestPurgeAfterEditToLaterExpiry(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 5
	rec := rep.create(Create{Partition: p, URL: "https://e.example/", ExpiresAtMs: 100}).Record
	var scanned []PurgeItem
	if _, _, err := ScanExpired(rep.reader(), p, "", 150, 100, func(code string) bool {
		scanned = append(scanned, PurgeItem{p, code})
		return true
	}); err != nil || len(scanned) != 1 {
		t.Fatalf("scan: %v %v", scanned, err)
	}
	if res := rep.edit(Edit{Partition: p, Code: rec.Code, UpdatedAtMs: 140, Fields: EditExpiry, ExpiresAtMs: 1000}); res.Status != ResultEdited {
		t.Fatalf("edit: %s", res.Status)
	}
	before := rep.dump()
	if n, err := rep.purge(Purge{CutoffMs: 150, Items: scanned}); err != nil || n != 0 {
		t.Fatalf("purge after the edit = %d, %v; want 0", n, err)
	}
	if !equalDumps(before, rep.dump()) {
		t.Fatal("the purge changed an edited link")
	}
	// Clearing the expiry keeps it from any purge.
	rep.edit(Edit{Partition: p, Code: rec.Code, Fields: EditExpiry})
	if n, _ := rep.purge(Purge{CutoffMs: 1 << 50, Items: scanned}); n != 0 {
		t.Fatalf("purge of a link without expiry: %d", n)
	}
	if got, err := Get(rep.reader(), p, rec.Code); err != nil || got.ExpiresAtMs != 0 {
		t.Fatalf("Get = %+v, %v", got, err)
	}
}

func FuzzDecodeEdit(f *testing.F) {
	f.Add(AppendEdit(nil, Edit{Partition: 3, Code: "abc", Owner: "k1", UpdatedAtMs: 7,
		Fields: editKnown, URL: "https://x/", ExpiresAtMs: 9, MaxClicks: 2, Title: "t", Tags: []string{"a", "b"}, RedirectStatus: 302}))
	f.Add(AppendEdit(nil, Edit{Partition: 0, Code: "x", Fields: EditTags}))
	f.Add([]byte{commandVersion, byte(TypeEdit), 0x3f, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		e, ok := c.(Edit)
		if !ok {
			return
		}
		again, err := DecodeCommand(AppendEdit(nil, e))
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("round trip: %x -> %+v -> %+v, %v", b, e, again, err)
		}
	})
}
