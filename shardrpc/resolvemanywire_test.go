package shardrpc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/linkraft/linkraft/linkstore"
)

// TestResolveManyRequestRoundTrip: a request of 1, some and MaxResolveMany
// codes of every length decodes to the codes it was built from.
func TestResolveManyRequestRoundTrip(t *testing.T) {
	for _, codes := range [][]string{
		{"a"},
		{"abcdefg", "my-alias_1", strings.Repeat("z", maxWireCode)},
		func() []string {
			var c []string
			for i := range MaxResolveMany {
				c = append(c, fmt.Sprintf("%0*d", 1+i%maxWireCode, i))
			}
			return c
		}(),
	} {
		b := AppendResolveManyRequest(nil, codes)
		got, err := DecodeResolveManyRequest(b, nil)
		if err != nil {
			t.Fatalf("%d codes: %v", len(codes), err)
		}
		if len(got) != len(codes) {
			t.Fatalf("%d codes decode to %d", len(codes), len(got))
		}
		for i := range codes {
			if string(got[i]) != codes[i] {
				t.Fatalf("code %d: %q, want %q", i, got[i], codes[i])
			}
		}
	}
}

// TestResolveManyRequestRefusals: the decoder refuses every bound and
// framing violation with ErrMalformedResolve and leaves dst as given.
func TestResolveManyRequestRefusals(t *testing.T) {
	tooMany := make([]string, MaxResolveMany+1)
	for i := range tooMany {
		tooMany[i] = "abc"
	}
	good := AppendResolveManyRequest(nil, []string{"abc", "defg"})
	for name, b := range map[string][]byte{
		"empty":         {},
		"short":         {ResolveManyWireVersion, 0, 0},
		"version":       append([]byte{0x02}, good[1:]...),
		"flags":         append([]byte{ResolveManyWireVersion, 1}, good[2:]...),
		"zero items":    {ResolveManyWireVersion, 0, 0, 0},
		"too many":      AppendResolveManyRequest(nil, tooMany),
		"empty code":    {ResolveManyWireVersion, 0, 0, 1, 0},
		"long code":     append([]byte{ResolveManyWireVersion, 0, 0, 1, maxWireCode + 1}, bytes.Repeat([]byte{'a'}, maxWireCode+1)...),
		"truncated":     good[:len(good)-1],
		"missing item":  {ResolveManyWireVersion, 0, 0, 2, 1, 'a'},
		"trailing byte": append(append([]byte(nil), good...), 'x'),
		"single wire":   AppendResolveRequest(nil, "abcdefg", false),
	} {
		dst := [][]byte{[]byte("keep")}
		got, err := DecodeResolveManyRequest(b, dst)
		if !errors.Is(err, ErrMalformedResolve) {
			t.Fatalf("%s (%x): %v, want ErrMalformedResolve", name, b, err)
		}
		if len(got) != 1 || string(got[0]) != "keep" {
			t.Fatalf("%s: dst became %q", name, got)
		}
	}
}

// TestResolveManyResponseRoundTrip: records, applied indexes and errors
// come back in order; a count other than the request's is refused.
func TestResolveManyResponseRoundTrip(t *testing.T) {
	rec := linkstore.AppendRecord(nil, linkstore.Record{Code: "abcdefg", URL: "https://example.com/", CreatedAtMs: 1})
	b := AppendResolveManyResponseHeader(nil, 3)
	b = append(AppendResolveManyRecordHeader(b, 77, len(rec)), rec...)
	b = AppendResolveManyError(b, ErrorBody{Code: ErrCodeGone, Message: "deleted"})
	b = AppendResolveManyError(b, ErrorBody{Code: ErrCodeMaybeStale, Message: strings.Repeat("m", 5000)})
	items, err := DecodeResolveManyResponse(b, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(items[0].Record, rec) || items[0].Applied != 77 || items[0].Err != nil {
		t.Fatalf("item 0: %+v", items[0])
	}
	if items[1].Err == nil || items[1].Err.Code != ErrCodeGone || items[1].Err.Message != "deleted" || items[1].Record != nil {
		t.Fatalf("item 1: %+v", items[1])
	}
	if items[2].Err == nil || items[2].Err.Code != ErrCodeMaybeStale || len(items[2].Err.Message) != maxResolveManyMessage {
		t.Fatalf("item 2: %+v (a long message is cut to %d bytes)", items[2], maxResolveManyMessage)
	}
	if _, err := DecodeResolveManyResponse(b, 2, nil); !errors.Is(err, ErrMalformedResolve) {
		t.Fatalf("answer of 3 items to a request of 2: %v", err)
	}
	huge := AppendResolveManyRecordHeader(AppendResolveManyResponseHeader(nil, 1), 1, MaxResolveManyRecord+1)
	huge = append(huge, make([]byte, MaxResolveManyRecord+1)...)
	if _, err := DecodeResolveManyResponse(huge, 1, nil); !errors.Is(err, ErrMalformedResolve) {
		t.Fatalf("record over MaxResolveManyRecord: %v", err)
	}
}

// FuzzDecodeResolveManyRequest: the node's decoder never panics, accepts
// only what AppendResolveManyRequest writes (bounded items and codes), and
// a decoded request encodes back to the same bytes.
func FuzzDecodeResolveManyRequest(f *testing.F) {
	f.Add(AppendResolveManyRequest(nil, []string{"abcdefg"}))
	f.Add(AppendResolveManyRequest(nil, []string{"abcdefg", "my-alias_1", strings.Repeat("z", 64)}))
	f.Add([]byte{ResolveManyWireVersion, 0, 0, 0})
	f.Add([]byte{ResolveManyWireVersion, 0, 0xff, 0xff, 1, 'a'})
	f.Add([]byte{ResolveManyWireVersion, 0, 0, 1, 65})
	f.Add(AppendResolveRequest(nil, "abcdefg", false))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		codes, err := DecodeResolveManyRequest(b, nil)
		if err != nil {
			if !errors.Is(err, ErrMalformedResolve) {
				t.Fatalf("error %v does not wrap ErrMalformedResolve", err)
			}
			return
		}
		if len(codes) == 0 || len(codes) > MaxResolveMany {
			t.Fatalf("accepted %d items", len(codes))
		}
		strs := make([]string, len(codes))
		for i, c := range codes {
			if len(c) == 0 || len(c) > maxWireCode {
				t.Fatalf("accepted a code of %d bytes", len(c))
			}
			strs[i] = string(c)
		}
		if again := AppendResolveManyRequest(nil, strs); !bytes.Equal(again, b) {
			t.Fatalf("%x decodes to %q, which encodes to %x", b, strs, again)
		}
	})
}

// FuzzDecodeResolveManyResponse: the client's decoder of an answer never
// panics, returns exactly the count asked for, never a record over
// MaxResolveManyRecord, and what it accepts encodes back to the same
// bytes.
func FuzzDecodeResolveManyResponse(f *testing.F) {
	rec := linkstore.AppendRecord(nil, linkstore.Record{Code: "abcdefg", URL: "https://example.com/", CreatedAtMs: 1})
	two := AppendResolveManyResponseHeader(nil, 2)
	two = append(AppendResolveManyRecordHeader(two, 5, len(rec)), rec...)
	two = AppendResolveManyError(two, ErrorBody{Code: ErrCodeGone, Message: "deleted"})
	f.Add(two, uint8(2))
	f.Add(AppendResolveManyError(AppendResolveManyResponseHeader(nil, 1), ErrorBody{Code: ErrCodeMaybeStale}), uint8(1))
	f.Add([]byte{ResolveManyWireVersion, 0, 1, 0x00, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}, uint8(1))
	f.Add([]byte{ResolveManyWireVersion, 0, 1, 0x01, 0}, uint8(1))
	f.Add([]byte{ResolveManyWireVersion, 0, 1, 0x02}, uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, want uint8) {
		items, err := DecodeResolveManyResponse(b, int(want), nil)
		if err != nil {
			if !errors.Is(err, ErrMalformedResolve) {
				t.Fatalf("error %v does not wrap ErrMalformedResolve", err)
			}
			return
		}
		if len(items) != int(want) {
			t.Fatalf("%d items for a request of %d", len(items), want)
		}
		again := AppendResolveManyResponseHeader(nil, len(items))
		for _, it := range items {
			if it.Err != nil {
				if it.Err.Code == "" || len(it.Err.Message) > maxResolveManyMessage {
					t.Fatalf("accepted error item %+v", it.Err)
				}
				again = AppendResolveManyError(again, *it.Err)
				continue
			}
			if len(it.Record) == 0 || len(it.Record) > MaxResolveManyRecord {
				t.Fatalf("accepted a record of %d bytes", len(it.Record))
			}
			again = append(AppendResolveManyRecordHeader(again, it.Applied, len(it.Record)), it.Record...)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("%x decodes to %d items, which encode to %x", b, len(items), again)
		}
	})
}

// TestResolveManyHeaderSizes: the fixed-size parts are the sizes the
// decoder reads.
func TestResolveManyHeaderSizes(t *testing.T) {
	if n := len(AppendResolveManyResponseHeader(nil, 1)); n != 3 {
		t.Fatalf("answer header of %d bytes", n)
	}
	h := AppendResolveManyRecordHeader(nil, 1<<40, 300)
	if len(h) != 13 || binary.BigEndian.Uint64(h[1:9]) != 1<<40 || binary.BigEndian.Uint32(h[9:13]) != 300 {
		t.Fatalf("record header %x", h)
	}
}
