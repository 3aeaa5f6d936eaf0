package shardrpc

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/linkraft/linkraft/linkstore"
)

func TestResolveWireCodeLimit(t *testing.T) {
	if maxWireCode != linkstore.MaxCodeLength {
		t.Fatalf("maxWireCode %d, linkstore.MaxCodeLength %d", maxWireCode, linkstore.MaxCodeLength)
	}
}

func TestResolveRequestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		code string
		lin  bool
	}{{"abcdefg", false}, {"abcdefg", true}, {"a", false}, {strings.Repeat("z", 64), true}, {"a\"b\\c<\x01é\xff", false}} {
		for _, v := range []byte{ResolveWireVersion, ResolveWireVersion1} {
			b := AppendResolveRequestVersion([]byte("prefix"), v, tc.code, tc.lin)
			if !bytes.HasPrefix(b, []byte("prefix")) {
				t.Fatalf("append lost dst: %q", b)
			}
			code, lin, version, err := DecodeResolveRequest(b[len("prefix"):])
			if err != nil || string(code) != tc.code || lin != tc.lin || version != v {
				t.Fatalf("%q %v version %d: decoded %q %v %d %v", tc.code, tc.lin, v, code, lin, version, err)
			}
		}
	}
	if b := AppendResolveRequest(nil, "abc", false); b[0] != ResolveWireVersion {
		t.Fatalf("AppendResolveRequest writes version %#x, want %#x", b[0], ResolveWireVersion)
	}
}

func TestDecodeResolveRequestRefuses(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":          nil,
		"header only":    {ResolveWireVersion, 0},
		"version 0":      {0x00, 0, 1, 'a'},
		"version 3":      {0x03, 0, 1, 'a'},
		"unknown flag":   {ResolveWireVersion, 0x80, 1, 'a'},
		"length 0":       {ResolveWireVersion, 0, 0},
		"length 65":      append([]byte{ResolveWireVersion, 0, 65}, bytes.Repeat([]byte{'a'}, 65)...),
		"truncated code": {ResolveWireVersion, 0, 3, 'a', 'b'},
		"trailing bytes": {ResolveWireVersion, 0, 1, 'a', 'b'},
		"JSON":           []byte(`{"code":"abcdefg"}`),
	} {
		if _, _, _, err := DecodeResolveRequest(b); !errors.Is(err, ErrMalformedResolve) {
			t.Errorf("%s (%q): %v, want ErrMalformedResolve", name, b, err)
		}
	}
}

func TestResolveResponseRoundTrip(t *testing.T) {
	rec := linkstore.Record{Code: "abcdefg", URL: "https://example.com/x", CreatedAtMs: 1700000000000, ExpiresAtMs: 1800000000000, MaxClicks: 5,
		Owner: "k1", Title: "a title", Tags: []string{"go", "news"}, RedirectStatus: 307, UpdatedAtMs: 1700000000500}
	var raw []byte
	for _, tc := range []struct {
		version      byte
		applied, out uint64
	}{{ResolveWireVersion, 1234567, 1234567}, {ResolveWireVersion, 0, 0}, {ResolveWireVersion1, 99, 0}} {
		b := linkstore.AppendRecord(AppendResolveResponseHeader(nil, tc.version, tc.applied), rec)
		r, applied, err := DecodeResolveResponse(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := linkstore.DecodeRecord(r)
		if err != nil || !reflect.DeepEqual(got, rec) || applied != tc.out {
			t.Fatalf("version %d: decoded %+v at %d %v, want %+v at %d", tc.version, got, applied, err, rec, tc.out)
		}
		raw = r
	}
	for name, b := range map[string][]byte{
		"empty":         nil,
		"header only":   {ResolveWireVersion},
		"v2 short":      {ResolveWireVersion, 0, 0, 0, 0, 0, 0, 0, 1},
		"version 3":     append([]byte{0x03}, raw...),
		"JSON link":     []byte(`{"code":"abcdefg","url":"https://example.com/"}`),
		"no header":     raw,
		"version 0 too": {0x00, 0x01},
	} {
		if _, _, err := DecodeResolveResponse(b); !errors.Is(err, ErrMalformedResolve) {
			t.Errorf("%s (%q): %v, want ErrMalformedResolve", name, b, err)
		}
	}
}

// FuzzDecodeResolveRequest: the node's decoder of the binary request never
// panics, accepts only what AppendResolveRequest writes, and a decoded
// request encodes back to the same bytes.
func FuzzDecodeResolveRequest(f *testing.F) {
	f.Add(AppendResolveRequest(nil, "abcdefg", false))
	f.Add(AppendResolveRequest(nil, "my-alias_1", true))
	f.Add(AppendResolveRequest(nil, strings.Repeat("z", 64), false))
	f.Add([]byte{ResolveWireVersion, 0, 0})
	f.Add([]byte{ResolveWireVersion, 0xff, 1, 'a'})
	f.Add([]byte{0x03, 0, 1, 'a'})
	f.Add(AppendResolveRequestVersion(nil, ResolveWireVersion1, "abcdefg", true))
	f.Add([]byte(`{"code":"abcdefg"}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		code, lin, version, err := DecodeResolveRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedResolve) {
				t.Fatalf("error %v does not wrap ErrMalformedResolve", err)
			}
			return
		}
		if len(code) == 0 || len(code) > maxWireCode {
			t.Fatalf("accepted a code of %d bytes", len(code))
		}
		if again := AppendResolveRequestVersion(nil, version, string(code), lin); !bytes.Equal(again, b) {
			t.Fatalf("%x decodes to %q %v, which encodes to %x", b, code, lin, again)
		}
	})
}

// FuzzDecodeResolveResponse: the client's decoding of a 200 answer (the
// wire header, then linkstore.DecodeRecord) never panics, and a record it
// accepts survives another encode and decode unchanged (the bytes may
// differ: the record's varints are not required to be minimal).
func FuzzDecodeResolveResponse(f *testing.F) {
	f.Add(linkstore.AppendRecord(AppendResolveResponseHeader(nil, ResolveWireVersion, 42), linkstore.Record{Code: "abcdefg", URL: "https://example.com/", CreatedAtMs: 1}))
	f.Add(linkstore.AppendRecord(AppendResolveResponseHeader(nil, ResolveWireVersion1, 0), linkstore.Record{Code: "alias", URL: "https://e.x/", Alias: true, ExpiresAtMs: 5, MaxClicks: 2}))
	f.Add([]byte{ResolveWireVersion})
	f.Add([]byte{ResolveWireVersion1, 0x01, 0x00, 0x02, 0x01})
	f.Add([]byte{0x03, 0x01, 0x00, 0x02, 0x01, 'a', 'b'})
	f.Fuzz(func(t *testing.T, b []byte) {
		raw, applied, err := DecodeResolveResponse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedResolve) {
				t.Fatalf("error %v does not wrap ErrMalformedResolve", err)
			}
			return
		}
		rec, err := linkstore.DecodeRecord(raw)
		if err != nil {
			return
		}
		if rec.URL == "" || rec.Code == "" {
			t.Fatalf("accepted an empty record %+v", rec)
		}
		again, applied2, err := DecodeResolveResponse(linkstore.AppendRecord(AppendResolveResponseHeader(nil, b[0], applied), rec))
		if err != nil {
			t.Fatal(err)
		}
		if applied2 != applied {
			t.Fatalf("%x: applied index %d re-encoded decodes to %d", b, applied, applied2)
		}
		if rec2, err := linkstore.DecodeRecord(again); err != nil || !reflect.DeepEqual(rec2, rec) {
			t.Fatalf("%x decodes to %+v, which re-encoded decodes to %+v, %v", b, rec, rec2, err)
		}
	})
}
