package linkstore

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRecordMetaRoundTripAndVersion(t *testing.T) {
	for _, tc := range []struct {
		r       Record
		version byte
	}{
		{Record{Code: "abcdefg", URL: "https://x/", CreatedAtMs: 1}, recordVersion},
		{Record{Code: "abcdefg", URL: "https://x/", CreatedAtMs: 1, MaxClicks: 3}, recordVersionLimits},
		{Record{Code: "abcdefg", URL: "https://x/", Owner: "alice"}, recordVersionMeta},
		{Record{Code: "abcdefg", URL: "https://x/", Title: "Ünïcode title"}, recordVersionMeta},
		{Record{Code: "abcdefg", URL: "https://x/", Tags: []string{"a"}}, recordVersionMeta},
		{Record{Code: "abcdefg", URL: "https://x/", RedirectStatus: 308}, recordVersionMeta},
		{Record{Code: "abcdefg", URL: "https://x/", UpdatedAtMs: 5}, recordVersionMeta},
		{Record{
			Code: "my-alias", URL: "https://y/", Alias: true, CreatedAtMs: -7, ExpiresAtMs: 1 << 40, MaxClicks: 9,
			Owner: strings.Repeat("o", MaxOwnerLength), Title: strings.Repeat("t", MaxTitleLength),
			Tags: strings.Split(strings.Repeat("t:a.g_-x,", MaxTags-1)+"last", ","), RedirectStatus: 302, UpdatedAtMs: 1 << 41,
		}, recordVersionMeta},
	} {
		enc := AppendRecord(nil, tc.r)
		if enc[0] != tc.version {
			t.Errorf("%+v: version %#x, want %#x", tc.r, enc[0], tc.version)
		}
		got, err := DecodeRecord(enc)
		if err != nil || !got.Equal(tc.r) {
			t.Fatalf("round trip of %+v: %+v, %v", tc.r, got, err)
		}
		res, err := DecodeResult(AppendResult(nil, Result{Status: ResultCreated, Record: tc.r}))
		if err != nil || !res.Record.Equal(tc.r) {
			t.Fatalf("result round trip of %+v: %+v, %v", tc.r, res, err)
		}
	}
	// Malformed version 0x03 records.
	good := AppendRecord(nil, Record{Code: "abc", URL: "u", Owner: "o"})
	bad := map[string][]byte{
		"no fields":    {recordVersionMeta, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'a', 'u'},
		"status":       {recordVersionMeta, 0, 0, 0, 0, 0, 0xa0, 0x01, 0, 0, 0, 1, 'a', 'u'},
		"owner beyond": {recordVersionMeta, 0, 0, 0, 0, 0, 0, 0x41},
		"tag count":    {recordVersionMeta, 0, 0, 0, 0, 0, 0, 1, 'o', 0, MaxTags + 1},
		"empty tag":    {recordVersionMeta, 0, 0, 0, 0, 0, 0, 1, 'o', 0, 1, 0, 1, 'a', 'u'},
		"truncated":    good[:len(good)-3],
	}
	for name, b := range bad {
		if _, err := DecodeRecord(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestCreateMetaRoundTrip(t *testing.T) {
	plain := Create{Partition: 3, URL: "https://x/", CreatedAtMs: 9}
	if enc := EncodeCreate(plain); enc[2]&createFlagMeta != 0 {
		t.Fatalf("meta flag set without meta: %x", enc)
	}
	for _, c := range []Create{
		{Partition: 3, URL: "https://x/", Owner: "bob"},
		{Partition: 3, URL: "https://x/", Title: "t", Tags: []string{"a", "b"}, RedirectStatus: 307, ExpiresAtMs: 4, Reuse: true, Alias: "abc"},
		{Partition: 3, URL: "https://x/", RedirectStatus: 301},
	} {
		got, err := DecodeCommand(EncodeCreate(c))
		if err != nil || !sameCommand(got, c) {
			t.Fatalf("round trip of %+v: %+v, %v", c, got, err)
		}
	}
	enc := EncodeCreate(Create{Partition: 3, URL: "u", Tags: []string{"x"}})
	bad := map[string][]byte{
		"meta flag, no meta": {commandVersion, byte(TypeCreate), createFlagMeta, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 'u'},
		"tag count":          {commandVersion, byte(TypeCreate), createFlagMeta, 0, 0, 0, 3, 0, 0, 0, 0xff, 0x01},
		"status":             {commandVersion, byte(TypeCreate), createFlagMeta, 0, 0, 0, 3, 0, 0, 0, 0, 0x80, 0x80, 0x04},
		"truncated":          enc[:len(enc)-3],
	}
	for name, b := range bad {
		if _, err := DecodeCommand(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestCreateStoresMeta(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 12
	c := Create{Partition: p, URL: "https://m.example/", CreatedAtMs: 5, Owner: "alice", Title: "Hello", Tags: []string{"x", "y:z"}, RedirectStatus: 302}
	res := rep.create(c)
	if res.Status != ResultCreated || res.Record.Owner != "alice" || res.Record.Title != "Hello" ||
		len(res.Record.Tags) != 2 || res.Record.RedirectStatus != 302 || res.Record.UpdatedAtMs != 0 {
		t.Fatalf("create with meta: %+v", res)
	}
	if rec, err := Get(rep.reader(), p, res.Record.Code); err != nil || !rec.Equal(res.Record) {
		t.Fatalf("stored: %+v, %v", rec, err)
	}
	a := aliasIn(t, rg, p, "meta")
	if res := rep.create(Create{Partition: p, URL: "https://a/", Alias: a, Owner: "bob", Tags: []string{"q"}}); res.Status != ResultCreated || res.Record.Owner != "bob" || !res.Record.Alias {
		t.Fatalf("alias with meta: %+v", res)
	}
}

func TestCreateBadMetaChangesNothing(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep, batchRep := newReplica(t, rg), newReplica(t, rg)
	seventeen := make([]string, MaxTags+1)
	for i := range seventeen {
		seventeen[i] = "t" + strings.Repeat("x", i)
	}
	for name, c := range map[string]Create{
		"long title":     {Title: strings.Repeat("t", MaxTitleLength+1)},
		"invalid utf-8":  {Title: "a\xffb"},
		"control":        {Title: "a\nb"},
		"too many tags":  {Tags: seventeen},
		"empty tag":      {Tags: []string{""}},
		"long tag":       {Tags: []string{strings.Repeat("t", MaxTagLength+1)}},
		"tag charset":    {Tags: []string{"a b"}},
		"tag twice":      {Tags: []string{"a", "b", "a"}},
		"status 200":     {RedirectStatus: 200},
		"status 303":     {RedirectStatus: 303},
		"long owner":     {Owner: strings.Repeat("o", MaxOwnerLength+1)},
		"owner charset":  {Owner: "al/ice"},
		"owner with nul": {Owner: "a\x00"},
	} {
		c.Partition, c.URL = 4, "https://bad.example/"
		res := rep.create(c)
		if res.Status != ResultBadRequest || res.Reason == "" {
			t.Errorf("%s: %+v, want bad_request", name, res)
		}
		if kvs := rep.dump(); len(kvs) != 0 {
			t.Fatalf("%s: a bad create stored %d keys", name, len(kvs))
		}
		// The same in a batch: that item is refused, nothing stored.
		out := batchRep.batch(BatchItem{RequestID: "r-" + name, Create: c})
		if out[0].Status != ResultBadRequest {
			t.Errorf("%s in a batch: %+v", name, out[0])
		}
	}
	for _, kv := range batchRep.dump() {
		// Only the request table of the batch items may be there.
		if !bytes.Contains(kv[0], []byte{0xff, 0xff, 0xff, 0xff, 0xff}) {
			t.Fatalf("a bad create stored %x", kv[0])
		}
	}
}

func TestReuseIsPerOwner(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p, url = 30, "https://same.example/"
	anon := rep.create(Create{Partition: p, URL: url})
	alice := rep.create(Create{Partition: p, URL: url, Owner: "alice", Reuse: true})
	bob := rep.create(Create{Partition: p, URL: url, Owner: "bob", Reuse: true})
	codes := map[string]bool{anon.Record.Code: true, alice.Record.Code: true, bob.Record.Code: true}
	if len(codes) != 3 || alice.Status != ResultCreated || bob.Status != ResultCreated {
		t.Fatalf("owners share a reused link: %+v %+v %+v", anon, alice, bob)
	}
	for _, tc := range []struct {
		owner string
		want  Result
	}{{"", anon}, {"alice", alice}, {"bob", bob}} {
		again := rep.create(Create{Partition: p, URL: url, Owner: tc.owner, Reuse: true, Title: "ignored"})
		if again.Status != ResultExisting || !again.Record.Equal(tc.want.Record) {
			t.Fatalf("reuse by %q: %+v, want %s", tc.owner, again, tc.want.Record.Code)
		}
		if rec, err := FindURL(rep.reader(), p, tc.owner, url); err != nil || rec.Code != tc.want.Record.Code {
			t.Fatalf("FindURL(%q) = %+v, %v", tc.owner, rec, err)
		}
	}
	// A delete of alice's link frees only alice's entry.
	if res := rep.del(Delete{Partition: p, Code: alice.Record.Code}); res.Status != ResultDeleted {
		t.Fatalf("delete: %+v", res)
	}
	if _, err := FindURL(rep.reader(), p, "alice", url); !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrDeleted) {
		t.Fatalf("alice's reuse entry after delete: %v", err)
	}
	if rec, err := FindURL(rep.reader(), p, "bob", url); err != nil || rec.Code != bob.Record.Code {
		t.Fatalf("bob's entry after alice's delete: %+v, %v", rec, err)
	}
}
