package linkstore

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/linkraft/linkraft/clicks"
)

// sameCommand compares decoded commands; a Create holds a slice, so it is
// compared with Create.Equal.
func sameCommand(a, b Command) bool {
	ca, okA := a.(Create)
	cb, okB := b.(Create)
	if okA || okB {
		return okA && okB && ca.Equal(cb)
	}
	return a == b
}

func TestCreateRoundTrip(t *testing.T) {
	for _, c := range []Create{
		{Partition: 0, URL: "https://a.example/"},
		{Partition: math.MaxUint32, URL: "https://b.example/x?y=z", Alias: "my-alias", Reuse: true, CreatedAtMs: 1_760_000_000_000},
		{Partition: 7, URL: "u", CreatedAtMs: -5},
		{Partition: 7, URL: strings.Repeat("x", 300), Alias: strings.Repeat("a", 64), CreatedAtMs: math.MinInt64},
	} {
		enc := EncodeCreate(c)
		got, err := DecodeCommand(enc)
		if err != nil {
			t.Fatalf("decode %+v: %v", c, err)
		}
		if !sameCommand(got, c) {
			t.Fatalf("round trip: %+v, want %+v", got, c)
		}
		if !bytes.Equal(AppendCreate([]byte("prefix"), c)[6:], enc) {
			t.Fatalf("AppendCreate differs from EncodeCreate")
		}
	}
	// A typical create is compact: 3 header bytes + 4 partition + 6 time + 1 alias length + URL.
	enc := EncodeCreate(Create{Partition: 900, URL: "https://example.com/a/b", CreatedAtMs: 1_760_000_000_000})
	if len(enc) != 3+4+6+1+len("https://example.com/a/b") {
		t.Fatalf("create of %d bytes", len(enc))
	}
}

func TestDecodeCommandErrors(t *testing.T) {
	valid := EncodeCreate(Create{Partition: 1, URL: "https://x.example/", Alias: "abc"})
	cases := map[string]struct {
		b    []byte
		want error
	}{
		"empty":        {nil, ErrMalformed},
		"one byte":     {[]byte{commandVersion}, ErrMalformed},
		"version":      {append([]byte{0x02}, valid[1:]...), ErrUnknownVersion},
		"type":         {[]byte{commandVersion, 0x00, 0, 0, 0, 0, 0, 0, 0}, ErrMalformed},
		"flags":        {append([]byte{commandVersion, byte(TypeCreate), 0x80}, valid[3:]...), ErrMalformed},
		"short":        {valid[:6], ErrMalformed},
		"no time":      {valid[:7], ErrMalformed},
		"alias beyond": {append(valid[:8:8], 0x40, 'a'), ErrMalformed},
	}
	for name, tc := range cases {
		if _, err := DecodeCommand(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []Record{
		{Code: "aB3dE6g", URL: "https://example.com/", CreatedAtMs: 1_760_000_000_000},
		{Code: strings.Repeat("z", MaxCodeLength), URL: strings.Repeat("u", MaxURLLength), CreatedAtMs: -1, Alias: true},
	} {
		got, err := DecodeRecord(AppendRecord(nil, r))
		if err != nil || !got.Equal(r) {
			t.Fatalf("round trip %+v: %+v, %v", r, got, err)
		}
	}
	// Disk budget: a 7-character code and an 80-byte URL.
	r := Record{Code: "aB3dE6g", URL: "https://example.com/" + strings.Repeat("p", 60), CreatedAtMs: 1_760_000_000_000}
	if n := len(AppendRecord(nil, r)); n != 2+6+1+7+80 {
		t.Fatalf("record of %d bytes", n)
	}
	bad := map[string][]byte{
		"empty":       nil,
		"version":     {0x09, 0, 0, 1, 'a', 'u'},
		"flags":       {recordVersion, 0x04, 0, 1, 'a', 'u'},
		"no time":     {recordVersion, 0, 0x80},
		"no code len": {recordVersion, 0, 0},
		"zero code":   {recordVersion, 0, 0, 0, 'u'},
		"long code":   {recordVersion, 0, 0, 9, 'a'},
		"no url":      {recordVersion, 0, 0, 1, 'a'},
	}
	for name, b := range bad {
		if _, err := DecodeRecord(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestResultRoundTrip(t *testing.T) {
	rec := Record{Code: "abcdefg", URL: "https://x.example/", CreatedAtMs: 3}
	for _, r := range []Result{
		{Status: ResultCreated, Record: rec},
		{Status: ResultExisting, Record: rec},
		{Status: ResultAliasTaken},
		{Status: ResultExhausted},
		{Status: ResultBadRequest, Reason: "empty URL"},
	} {
		got, err := DecodeResult(AppendResult(nil, r))
		if err != nil || !got.Equal(r) {
			t.Fatalf("round trip %+v: %+v, %v", r, got, err)
		}
	}
	long := strings.Repeat("é", maxReason)
	got, err := DecodeResult(AppendResult(nil, Result{Status: ResultBadRequest, Reason: long}))
	if err != nil || len(got.Reason) > maxReason || !strings.HasPrefix(long, got.Reason) || got.Reason == "" {
		t.Fatalf("long reason: %q, %v", got.Reason, err)
	}
	for name, b := range map[string][]byte{
		"empty":          nil,
		"version":        {0x02, byte(ResultExhausted)},
		"status":         {resultVersion, 0x77},
		"trailing bytes": {resultVersion, byte(ResultAliasTaken), 1},
		"bad record":     {resultVersion, byte(ResultCreated), 1},
	} {
		if _, err := DecodeResult(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestPartitionBounds(t *testing.T) {
	lo, hi := PartitionBounds(5)
	for _, k := range [][]byte{LinkKey(5, "abc"), NextKey(5), ReuseKey(5, "", "https://x/"), LinkKey(5, "\xff\xff")} {
		if bytes.Compare(k, lo) < 0 || bytes.Compare(k, hi) >= 0 {
			t.Fatalf("key %x outside [%x, %x)", k, lo, hi)
		}
	}
	for _, k := range [][]byte{LinkKey(4, "zzz"), NextKey(6)} {
		if bytes.Compare(k, lo) >= 0 && bytes.Compare(k, hi) < 0 {
			t.Fatalf("key %x of another partition inside [%x, %x)", k, lo, hi)
		}
	}
	lo, hi = PartitionBounds(math.MaxUint32)
	if k := LinkKey(math.MaxUint32, "\xff\xff\xff"); bytes.Compare(k, lo) < 0 || bytes.Compare(k, hi) >= 0 {
		t.Fatalf("last partition's key %x outside [%x, %x)", k, lo, hi)
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(EncodeCreate(Create{Partition: 3, URL: "https://x.example/", Alias: "abc", Reuse: true, CreatedAtMs: 99}))
	f.Add(EncodeCreate(Create{Partition: 0, URL: "u"}))
	f.Add(EncodeCreate(Create{Partition: 1, URL: "u", Owner: "o", Title: "t", Tags: []string{"x", "y"}, RedirectStatus: 302, MaxClicks: 1}))
	f.Add([]byte{commandVersion, byte(TypeCreate), 0, 0, 0, 0, 1, 0x02, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{})
	f.Add(AppendClickBatch(nil, clicks.Batch{Router: "r1", Seq: 1, Deltas: []clicks.Delta{{Code: "abc", Day: 1, Clicks: 1}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		if cb, ok := c.(ClickBatch); ok {
			// The batch encoding has its own round-trip fuzz target
			// (clicks.FuzzDecodeBatch); here it must re-encode and decode.
			if _, err := DecodeCommand(AppendClickBatch(nil, cb.Batch)); err != nil {
				t.Fatalf("re-encoding a click batch: %v", err)
			}
			return
		}
		if d, ok := c.(Delete); ok {
			if again, err := DecodeCommand(AppendDelete(nil, d)); err != nil || !sameCommand(again, c) {
				t.Fatalf("re-encoding %+v does not round-trip", d)
			}
			return
		}
		if cb, ok := c.(CreateBatch); ok {
			// A batch has its own round-trip fuzz target
			// (FuzzDecodeCreateBatch); here it must re-encode and decode.
			if _, err := DecodeCommand(AppendCreateBatch(nil, cb)); err != nil {
				t.Fatalf("re-encoding a create batch: %v", err)
			}
			return
		}
		cr, ok := c.(Create)
		if !ok {
			t.Fatalf("decoded %T", c)
		}
		// A decoded command re-encodes to the same bytes.
		if enc := EncodeCreate(cr); !bytes.Equal(enc, b) {
			// Varints have one canonical form when written; accept only
			// non-canonical input as the difference.
			again, err := DecodeCommand(enc)
			if err != nil || !sameCommand(again, c) {
				t.Fatalf("re-encoding %+v does not round-trip", cr)
			}
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, Record{Code: "abcdefg", URL: "https://x.example/", CreatedAtMs: 1}))
	f.Add(AppendRecord(nil, Record{Code: "my-alias", URL: "u", Alias: true, CreatedAtMs: -1}))
	f.Add([]byte{recordVersion, 0, 0x80, 0x80})
	f.Add(AppendRecord(nil, Record{Code: "abcdefg", URL: "https://x/", Owner: "alice", Title: "T", Tags: []string{"a", "b:c"}, RedirectStatus: 307, UpdatedAtMs: 9}))
	f.Add(AppendRecord(nil, Record{Code: "abcdefg", URL: "u", UpdatedAtMs: 1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		again, err := DecodeRecord(AppendRecord(nil, r))
		if err != nil || !again.Equal(r) {
			t.Fatalf("record %+v does not round-trip: %+v, %v", r, again, err)
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	f.Add(AppendResult(nil, Result{Status: ResultCreated, Record: Record{Code: "abcdefg", URL: "https://x/"}}))
	f.Add(AppendResult(nil, Result{Status: ResultBadRequest, Reason: "why"}))
	f.Add(AppendResult(nil, Result{Status: ResultExhausted}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResult(b)
		if err != nil {
			return
		}
		again, err := DecodeResult(AppendResult(nil, r))
		if err != nil || !again.Equal(r) {
			t.Fatalf("result %+v does not round-trip: %+v, %v", r, again, err)
		}
	})
}

// FuzzApply feeds arbitrary commands to the machine: it never panics and
// always answers a decodable result.
func FuzzApply(f *testing.F) {
	f.Add(EncodeCreate(Create{Partition: 3, URL: "https://x.example/", Alias: "abc"}))
	f.Add(EncodeCreate(Create{Partition: 3, URL: "https://x.example/", Reuse: true}))
	f.Add([]byte{commandVersion, byte(TypeCreate)})
	f.Add(AppendDelete(nil, Delete{Partition: 3, Code: "abc"}))
	f.Add(AppendClickBatch(nil, clicks.Batch{Router: "r1", Seq: 1, Deltas: []clicks.Delta{{Code: "abc", Day: 1, Clicks: 1, Bots: 2}}}))
	rg := testRing(f, 7, 64)
	rep := newReplica(f, rg)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, raw := range rep.applyWith(t, b) {
			if _, err := DecodeBatchResult(raw); err == nil {
				continue // a create batch's (see FuzzApplyBatch)
			}
			if _, err := DecodeResult(raw); err != nil {
				t.Fatalf("undecodable result %x: %v", raw, err)
			}
		}
	})
}
