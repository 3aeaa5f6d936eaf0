package shardrpc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/linkraft/linkraft/linkstore"
)

// bulkItems are requests with every field in use, empty and extreme.
func bulkItems() []CreateRequest {
	return []CreateRequest{
		{Partition: 7, URL: "https://example.com/a", RequestID: "r-1"},
		{Partition: 1<<32 - 1, URL: "https://example.com/ü?q=1", Alias: "my-alias", Reuse: true, ExpiresAtMs: 1800000000000, MaxClicks: 1<<64 - 1,
			Owner: "k1", Title: "a title", Tags: []string{"go", "", "news"}, RedirectStatus: 307, RequestID: strings.Repeat("x", 128)},
		{ExpiresAtMs: -5, RedirectStatus: 65535},
		{URL: strings.Repeat("u", 3000), Tags: []string{}},
	}
}

func TestBulkCreateRequestRoundTrip(t *testing.T) {
	items := bulkItems()
	b := AppendBulkCreateRequest(nil, items)
	if len(b) > bulkRequestSize(items) {
		t.Fatalf("encoded %d bytes, bulkRequestSize said at most %d", len(b), bulkRequestSize(items))
	}
	got, version, err := DecodeBulkCreateRequest(b)
	if err != nil || version != BulkWireVersion {
		t.Fatal(version, err)
	}
	want := bulkItems()
	want[3].Tags = nil // an empty tag list decodes as none, as in JSON (omitempty)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
	}
	if v1, version, err := DecodeBulkCreateRequest(AppendBulkCreateRequestVersion(nil, BulkWireVersion1, items)); err != nil || version != BulkWireVersion1 || !reflect.DeepEqual(v1, want) {
		t.Fatalf("version 1: %+v %d %v", v1, version, err)
	}
	// The strings are copies: the body buffer can be reused.
	for i := range b {
		b[i] = 0
	}
	if got[0].URL != "https://example.com/a" {
		t.Fatalf("decoded strings alias the body: %q", got[0].URL)
	}
	many := make([]CreateRequest, MaxBulkItems)
	if got, _, err := DecodeBulkCreateRequest(AppendBulkCreateRequest(nil, many)); err != nil || len(got) != MaxBulkItems {
		t.Fatalf("%d empty items: %d, %v", MaxBulkItems, len(got), err)
	}
}

func TestDecodeBulkCreateRequestRefuses(t *testing.T) {
	good := AppendBulkCreateRequest(nil, bulkItems()[:1])
	withStatus := func(status uint64) []byte {
		b := AppendBulkCreateRequest(nil, []CreateRequest{{URL: "https://x/"}})
		return binary.AppendUvarint(b[:len(b)-1], status)
	}
	flagsAt := 1 + 1 + 1 + len("r-1") + 4 + 1 + len("https://example.com/a") + 1
	badFlags := bytes.Clone(good)
	badFlags[flagsAt] = 0x02
	for name, b := range map[string][]byte{
		"empty":          nil,
		"version only":   {BulkWireVersion},
		"version 3":      append([]byte{0x03}, good[1:]...),
		"version 0":      append([]byte{0x00}, good[1:]...),
		"zero items":     {BulkWireVersion, 0},
		"too many items": binary.AppendUvarint([]byte{BulkWireVersion}, MaxBulkItems+1),
		"count beyond":   append(binary.AppendUvarint([]byte{BulkWireVersion}, 500), good[2:]...),
		"truncated":      good[:len(good)-1],
		"trailing":       append(bytes.Clone(good), 0),
		"unknown flag":   badFlags,
		"status 65536":   withStatus(65536),
		"negative":       AppendBulkCreateRequest(nil, []CreateRequest{{URL: "https://x/", RedirectStatus: -301}}),
		"string length":  {BulkWireVersion, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'},
		"tag count":      append(AppendBulkCreateRequest(nil, []CreateRequest{{}})[:14], 0xff, 0xff, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0),
		"JSON":           []byte(`{"items":[{"partition":1,"url":"https://x/"}]}`),
	} {
		if _, _, err := DecodeBulkCreateRequest(b); !errors.Is(err, ErrMalformedBulk) {
			t.Errorf("%s (%q): %v, want ErrMalformedBulk", name, b, err)
		}
	}
	if _, _, err := DecodeBulkCreateRequest(withStatus(65535)); err != nil {
		t.Fatalf("status 65535 (the node refuses it, the format does not): %v", err)
	}
}

// bulkResults are machine results of every kind a create batch gives, for
// the items of bulkItems.
func bulkResults() []linkstore.Result {
	rec := linkstore.Record{Code: "my-alias", URL: "https://example.com/ü?q=1", CreatedAtMs: 1700000000000, Alias: true, ExpiresAtMs: 1800000000000,
		MaxClicks: 1<<64 - 1, Owner: "k1", Title: "a title", Tags: []string{"go", "news"}, RedirectStatus: 307}
	return []linkstore.Result{
		{Status: linkstore.ResultCreated, Record: linkstore.Record{Code: "abcdefg", URL: "https://example.com/a", CreatedAtMs: 1700000000000}},
		{Status: linkstore.ResultExisting, Record: rec},
		{Status: linkstore.ResultBadRequest, Reason: "url is empty"},
		{Status: linkstore.ResultExhausted},
	}
}

// appendBatchResult appends a batch result of results without a replay
// trailer (as builds before it wrote them).
func appendBatchResult(dst []byte, results []linkstore.Result) []byte {
	dst = linkstore.AppendBatchResultHeader(dst, len(results))
	for _, r := range results {
		dst = linkstore.AppendBatchItemResult(dst, linkstore.AppendResult(nil, r))
	}
	return dst
}

// appendReplays appends the replay trailer naming items (ascending).
func appendReplays(dst []byte, items ...int) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(items)))
	for _, i := range items {
		dst = binary.AppendUvarint(dst, uint64(i))
	}
	return dst
}

func mustResponse(t testing.TB, version byte, applied uint64, batch []byte) []byte {
	t.Helper()
	b, err := AppendBulkCreateResponse(nil, version, applied, batch)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBulkCreateResponseRoundTrip: the binary answer decodes to the same
// results as the node's JSON answer gives for the same machine results.
func TestBulkCreateResponseRoundTrip(t *testing.T) {
	items, results := bulkItems(), bulkResults()
	// Item 1 replayed: its link is not tagged with the entry's index.
	batch := appendReplays(appendBatchResult(nil, results), 1)
	for _, tc := range []struct {
		version byte
		applied uint64 // the index the fresh links carry
	}{{BulkWireVersion, 4242}, {BulkWireVersion1, 0}} {
		b := mustResponse(t, tc.version, 4242, batch)
		if tc.version == BulkWireVersion1 && !bytes.Equal(b[1:], appendBatchResult(nil, results)) {
			t.Fatalf("a version 1 answer keeps the replay trailer: %x", b)
		}
		got, err := DecodeBulkCreateResponse(b, items)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range results {
			want, err := BulkItemResultOf(items[i], r)
			if want.Link != nil && i != 1 {
				want.Link.AppliedIndex = tc.applied
			}
			if err != nil || !reflect.DeepEqual(got[i], want) {
				t.Fatalf("version %d item %d: %+v, want %+v (%v)", tc.version, i, got[i], want, err)
			}
		}
	}
	if _, err := AppendBulkCreateResponse(nil, 0x03, 1, batch); err == nil {
		t.Fatal("an answer in version 3 was encoded")
	}
	got, err := DecodeBulkCreateResponse(mustResponse(t, BulkWireVersion, 7, appendBatchResult(nil, results)), items)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Link.AppliedIndex != 7 || got[1].Link.AppliedIndex != 7 {
		t.Fatalf("without a trailer every link is the entry's: %d %d", got[0].Link.AppliedIndex, got[1].Link.AppliedIndex)
	}
	if !got[0].Link.Created || got[1].Link.Created || got[1].Link.Code != "my-alias" || got[1].Link.RedirectStatus != 307 {
		t.Fatalf("links: %+v %+v", got[0].Link, got[1].Link)
	}
	if got[2].Error.Code != ErrCodeBadRequest || got[2].Error.Message != "url is empty" || got[3].Error.Code != ErrCodeExhausted {
		t.Fatalf("errors: %+v %+v", got[2].Error, got[3].Error)
	}
	taken, err := BulkItemResultOf(items[1], linkstore.Result{Status: linkstore.ResultAliasTaken})
	if err != nil || taken.Error.Code != ErrCodeAliasTaken || !strings.Contains(taken.Error.Message, "my-alias") {
		t.Fatalf("alias taken: %+v %v", taken, err)
	}
}

func TestDecodeBulkCreateResponseRefuses(t *testing.T) {
	items, results := bulkItems(), bulkResults()
	resp := func(batch []byte) []byte { return mustResponse(t, BulkWireVersion, 9, batch) }
	batch := appendBatchResult(nil, results)
	good := resp(batch)
	for name, b := range map[string][]byte{
		"empty":             nil,
		"version only":      {BulkWireVersion},
		"v2 short":          {BulkWireVersion, 0, 0, 0, 0, 0, 0, 0, 9},
		"version 3":         append([]byte{0x03}, good[1:]...),
		"no version":        batch,
		"fewer results":     resp(appendBatchResult(nil, results[:3])),
		"more results":      resp(appendBatchResult(nil, append(results, results[0]))),
		"truncated":         good[:len(good)-1],
		"refused batch":     resp(linkstore.AppendResult(nil, linkstore.Result{Status: linkstore.ResultBadRequest, Reason: "x"})),
		"clicks result":     resp(appendBatchResult(nil, []linkstore.Result{results[0], results[1], results[2], {Status: linkstore.ResultClicksApplied}})),
		"JSON":              []byte(`{"results":[]}`),
		"item not valid":    resp(linkstore.AppendBatchItemResult(linkstore.AppendBatchResultHeader(nil, 1), []byte{0xff})),
		"replay past end":   resp(appendReplays(bytes.Clone(batch), 4)),
		"replays unordered": resp(appendReplays(bytes.Clone(batch), 2, 1)),
		"replay twice":      resp(appendReplays(bytes.Clone(batch), 1, 1)),
		"too many":          resp(appendReplays(bytes.Clone(batch), 0, 1, 2, 3, 4)),
		"after trailer":     resp(append(appendReplays(bytes.Clone(batch), 1), 0)),
	} {
		if _, err := DecodeBulkCreateResponse(b, items); !errors.Is(err, ErrMalformedBulk) {
			t.Errorf("%s (%q): %v, want ErrMalformedBulk", name, b, err)
		}
	}
}

// FuzzDecodeBulkCreateRequest: the node's decoder of the binary request
// never panics, refuses with ErrMalformedBulk, and a decoded request
// survives encoding and decoding again unchanged.
func FuzzDecodeBulkCreateRequest(f *testing.F) {
	f.Add(AppendBulkCreateRequest(nil, bulkItems()))
	f.Add(AppendBulkCreateRequest(nil, bulkItems()[:1]))
	f.Add(AppendBulkCreateRequestVersion(nil, BulkWireVersion1, bulkItems()[:2]))
	f.Add([]byte{BulkWireVersion, 0})
	f.Add([]byte{BulkWireVersion, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte(`{"items":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		items, version, err := DecodeBulkCreateRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedBulk) {
				t.Fatalf("error %v does not wrap ErrMalformedBulk", err)
			}
			return
		}
		if len(items) == 0 || len(items) > MaxBulkItems {
			t.Fatalf("decoded %d items", len(items))
		}
		// Varints may be written longer than needed, so the bytes need
		// not come back; the items must.
		again, v, err := DecodeBulkCreateRequest(AppendBulkCreateRequestVersion(nil, version, items))
		if err != nil || v != version || !reflect.DeepEqual(again, items) {
			t.Fatalf("re-encoded items decode as %+v, %v; were %+v", again, err, items)
		}
	})
}

// FuzzDecodeBulkCreateResponse: the client's decoder of the binary answer
// never panics and refuses with ErrMalformedBulk; whatever it accepts has
// one result per item, each a link or an error.
func FuzzDecodeBulkCreateResponse(f *testing.F) {
	f.Add(mustResponse(f, BulkWireVersion, 5, appendReplays(appendBatchResult(nil, bulkResults()), 0, 3)), byte(4))
	f.Add(mustResponse(f, BulkWireVersion1, 0, appendBatchResult(nil, bulkResults()[:1])), byte(1))
	f.Add([]byte{BulkWireVersion1, 1, 0x08, 0}, byte(0))
	f.Fuzz(func(t *testing.T, b []byte, n byte) {
		items := make([]CreateRequest, int(n)%8)
		results, err := DecodeBulkCreateResponse(b, items)
		if err != nil {
			if !errors.Is(err, ErrMalformedBulk) {
				t.Fatalf("error %v does not wrap ErrMalformedBulk", err)
			}
			return
		}
		if len(results) != len(items) {
			t.Fatalf("%d results for %d items", len(results), len(items))
		}
		for i, r := range results {
			if (r.Link == nil) == (r.Error == nil) {
				t.Fatalf("result %d has no single outcome: %+v", i, r)
			}
		}
	})
}
