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
	got, err := DecodeBulkCreateRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	items[3].Tags = nil // an empty tag list decodes as none, as in JSON (omitempty)
	if !reflect.DeepEqual(got, items) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", got, items)
	}
	// The strings are copies: the body buffer can be reused.
	for i := range b {
		b[i] = 0
	}
	if got[0].URL != "https://example.com/a" {
		t.Fatalf("decoded strings alias the body: %q", got[0].URL)
	}
	many := make([]CreateRequest, MaxBulkItems)
	if got, err := DecodeBulkCreateRequest(AppendBulkCreateRequest(nil, many)); err != nil || len(got) != MaxBulkItems {
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
		"version 2":      append([]byte{0x02}, good[1:]...),
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
		if _, err := DecodeBulkCreateRequest(b); !errors.Is(err, ErrMalformedBulk) {
			t.Errorf("%s (%q): %v, want ErrMalformedBulk", name, b, err)
		}
	}
	if _, err := DecodeBulkCreateRequest(withStatus(65535)); err != nil {
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

func appendBatchResult(dst []byte, results []linkstore.Result) []byte {
	dst = linkstore.AppendBatchResultHeader(dst, len(results))
	for _, r := range results {
		dst = linkstore.AppendBatchItemResult(dst, linkstore.AppendResult(nil, r))
	}
	return dst
}

// TestBulkCreateResponseRoundTrip: the binary answer decodes to the same
// results as the node's JSON answer gives for the same machine results.
func TestBulkCreateResponseRoundTrip(t *testing.T) {
	items, results := bulkItems(), bulkResults()
	got, err := DecodeBulkCreateResponse(AppendBulkCreateResponse(nil, appendBatchResult(nil, results)), items)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		want, err := BulkItemResultOf(items[i], r)
		if err != nil || !reflect.DeepEqual(got[i], want) {
			t.Fatalf("item %d: %+v, want %+v (%v)", i, got[i], want, err)
		}
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
	good := AppendBulkCreateResponse(nil, appendBatchResult(nil, results))
	for name, b := range map[string][]byte{
		"empty":          nil,
		"version only":   {BulkWireVersion},
		"version 2":      append([]byte{0x02}, good[1:]...),
		"no version":     good[1:],
		"fewer results":  AppendBulkCreateResponse(nil, appendBatchResult(nil, results[:3])),
		"more results":   AppendBulkCreateResponse(nil, appendBatchResult(nil, append(results, results[0]))),
		"truncated":      good[:len(good)-1],
		"refused batch":  AppendBulkCreateResponse(nil, linkstore.AppendResult(nil, linkstore.Result{Status: linkstore.ResultBadRequest, Reason: "x"})),
		"clicks result":  AppendBulkCreateResponse(nil, appendBatchResult(nil, []linkstore.Result{results[0], results[1], results[2], {Status: linkstore.ResultClicksApplied}})),
		"JSON":           []byte(`{"results":[]}`),
		"item not valid": AppendBulkCreateResponse(nil, linkstore.AppendBatchItemResult(linkstore.AppendBatchResultHeader(nil, 1), []byte{0xff})),
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
	f.Add([]byte{BulkWireVersion, 0})
	f.Add([]byte{BulkWireVersion, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte(`{"items":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		items, err := DecodeBulkCreateRequest(b)
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
		again, err := DecodeBulkCreateRequest(AppendBulkCreateRequest(nil, items))
		if err != nil || !reflect.DeepEqual(again, items) {
			t.Fatalf("re-encoded items decode as %+v, %v; were %+v", again, err, items)
		}
	})
}

// FuzzDecodeBulkCreateResponse: the client's decoder of the binary answer
// never panics and refuses with ErrMalformedBulk; whatever it accepts has
// one result per item, each a link or an error.
func FuzzDecodeBulkCreateResponse(f *testing.F) {
	f.Add(AppendBulkCreateResponse(nil, appendBatchResult(nil, bulkResults())), byte(4))
	f.Add(AppendBulkCreateResponse(nil, appendBatchResult(nil, bulkResults()[:1])), byte(1))
	f.Add([]byte{BulkWireVersion, 1, 0x08, 0}, byte(0))
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
