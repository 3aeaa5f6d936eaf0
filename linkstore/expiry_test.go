package linkstore

import (
	"bytes"
	"errors"
	"testing"
)

// TestRecordV1Unchanged pins the version 0x01 encoding: records on disk
// from before limits existed decode the same, and a record without limits
// is still written byte for byte as before.
func TestRecordV1Unchanged(t *testing.T) {
	old := []byte{0x01, 0x01, 0x02, 0x03, 'a', 'b', 'c', 'h', 't', 't', 'p', ':', '/', '/', 'x'}
	want := Record{Code: "abc", URL: "http://x", CreatedAtMs: 1, Alias: true}
	got, err := DecodeRecord(old)
	if err != nil || !got.Equal(want) {
		t.Fatalf("old record: %+v, %v", got, err)
	}
	if enc := AppendRecord(nil, want); !bytes.Equal(enc, old) {
		t.Fatalf("record without limits encodes as %x, want %x", enc, old)
	}
}

func TestRecordWithLimitsRoundTrip(t *testing.T) {
	for _, r := range []Record{
		{Code: "abcdefg", URL: "https://x/", CreatedAtMs: 5, ExpiresAtMs: 1_800_000_000_000},
		{Code: "al-ias", URL: "https://y/", Alias: true, MaxClicks: 100},
		{Code: "abcdefg", URL: "https://z/", ExpiresAtMs: 7, MaxClicks: 1},
	} {
		enc := AppendRecord(nil, r)
		if enc[0] != recordVersionLimits {
			t.Fatalf("version %#x for %+v", enc[0], r)
		}
		got, err := DecodeRecord(enc)
		if err != nil || !got.Equal(r) {
			t.Fatalf("round trip of %+v: %+v, %v", r, got, err)
		}
	}
	if _, err := DecodeRecord([]byte{recordVersionLimits, 0, 0, 0, 0, 1, 'a', 'u'}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("version 0x02 without limits: %v", err)
	}
}

func TestCreateWithLimits(t *testing.T) {
	// The encoding without limits is as before.
	plain := Create{Partition: 3, URL: "https://x/", CreatedAtMs: 9}
	if enc := EncodeCreate(plain); enc[2]&createFlagLimits != 0 {
		t.Fatalf("limits flag set without limits: %x", enc)
	}
	c := Create{Partition: 3, URL: "https://x/", CreatedAtMs: 9, ExpiresAtMs: 1000, MaxClicks: 3, Alias: "exp-alias"}
	got, err := DecodeCommand(EncodeCreate(c))
	if err != nil || !sameCommand(got, c) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}

	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 21
	plainRes := rep.create(Create{Partition: p, URL: "https://same.example/", CreatedAtMs: 1})
	lim := rep.create(Create{Partition: p, URL: "https://same.example/", CreatedAtMs: 2, ExpiresAtMs: 99, MaxClicks: 4, Reuse: true})
	if lim.Status != ResultCreated || lim.Record.Code == plainRes.Record.Code || lim.Record.ExpiresAtMs != 99 || lim.Record.MaxClicks != 4 {
		t.Fatalf("create with limits and reuse: %+v (the plain link is %s)", lim, plainRes.Record.Code)
	}
	if rec, err := Get(rep.reader(), p, lim.Record.Code); err != nil || !rec.Equal(lim.Record) {
		t.Fatalf("stored: %+v, %v", rec, err)
	}
	// A limited link is never handed to a reuse create.
	fresh := rep.create(Create{Partition: p, URL: "https://other.example/", ExpiresAtMs: 50})
	again := rep.create(Create{Partition: p, URL: "https://other.example/", Reuse: true})
	if again.Status != ResultCreated || again.Record.Code == fresh.Record.Code {
		t.Fatalf("reuse found a limited link: %+v", again)
	}
	a := aliasIn(t, rg, p, "exp")
	if res := rep.create(Create{Partition: p, URL: "https://a/", Alias: a, ExpiresAtMs: 10}); res.Status != ResultCreated || res.Record.ExpiresAtMs != 10 {
		t.Fatalf("alias with expiry: %+v", res)
	}
	if res := rep.create(Create{Partition: p, URL: "https://a/", ExpiresAtMs: -1}); res.Status != ResultBadRequest {
		t.Fatalf("negative expiry: %s", res.Status)
	}
}

func FuzzDecodeRecordLimits(f *testing.F) {
	f.Add(AppendRecord(nil, Record{Code: "abcdefg", URL: "https://x/", ExpiresAtMs: 1, MaxClicks: 2}))
	f.Add(EncodeCreate(Create{Partition: 1, URL: "u", ExpiresAtMs: 5, MaxClicks: 6}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := DecodeRecord(b); err == nil {
			if again, err := DecodeRecord(AppendRecord(nil, r)); err != nil || !again.Equal(r) {
				t.Fatalf("record %+v does not round-trip", r)
			}
		}
		if c, err := DecodeCommand(b); err == nil {
			if cr, ok := c.(Create); ok {
				if again, err := DecodeCommand(EncodeCreate(cr)); err != nil || !sameCommand(again, c) {
					t.Fatalf("create %+v does not round-trip", cr)
				}
			}
		}
	})
}
