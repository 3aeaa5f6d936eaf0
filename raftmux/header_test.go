package raftmux

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, g := range []uint64{1, 2, 127, 128, 300, 1 << 32, math.MaxUint64} {
		hdr := AppendHeader(nil, g)
		if len(hdr) > MaxHeaderLen {
			t.Fatalf("group %d: header length %d > %d", g, len(hdr), MaxHeaderLen)
		}
		// Trailing Raft bytes must be left unread.
		r := bytes.NewReader(append(hdr, 0xAA, 0xBB))
		got, err := ReadHeader(r)
		if err != nil {
			t.Fatalf("group %d: ReadHeader: %v", g, err)
		}
		if got != g {
			t.Fatalf("ReadHeader = %d, want %d", got, g)
		}
		if r.Len() != 2 {
			t.Fatalf("group %d: ReadHeader left %d bytes, want 2", g, r.Len())
		}
	}
}

func TestReadHeaderErrors(t *testing.T) {
	cases := []struct {
		name    string
		in      []byte
		wantBad bool // ErrBadHeader; otherwise an I/O error
	}{
		{"empty", nil, false},
		{"version only", []byte{HeaderVersion}, false},
		{"truncated varint", []byte{HeaderVersion, 0x80, 0x80}, false},
		{"wrong version", []byte{0xB2, 0x01}, true},
		{"http", []byte("GET / HTTP/1.1\r\n"), true},
		{"group zero", []byte{HeaderVersion, 0x00}, true},
		{"non-minimal", []byte{HeaderVersion, 0x81, 0x00}, true},
		{"non-minimal zero", []byte{HeaderVersion, 0x80, 0x00}, true},
		{"overflow", append([]byte{HeaderVersion}, bytes.Repeat([]byte{0xFF}, 9)...), false},
		{"overflow tenth byte", append(append([]byte{HeaderVersion}, bytes.Repeat([]byte{0xFF}, 9)...), 0x02), true},
		{"eleven bytes", append([]byte{HeaderVersion}, bytes.Repeat([]byte{0x80}, 11)...), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadHeader(bytes.NewReader(tc.in))
			if err == nil {
				t.Fatal("ReadHeader succeeded, want an error")
			}
			if got := errors.Is(err, ErrBadHeader); got != tc.wantBad {
				t.Fatalf("errors.Is(%v, ErrBadHeader) = %v, want %v", err, got, tc.wantBad)
			}
			if !tc.wantBad && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("error %v is neither a bad header nor EOF", err)
			}
		})
	}
}

// FuzzReadHeader checks that ReadHeader never panics, never reads past the
// header, and accepts exactly the canonical encodings AppendHeader produces.
func FuzzReadHeader(f *testing.F) {
	f.Add([]byte{HeaderVersion, 0x01})
	f.Add(AppendHeader(nil, 300))
	f.Add(AppendHeader(nil, math.MaxUint64))
	f.Add([]byte{HeaderVersion, 0x80, 0x00})
	f.Add([]byte{HeaderVersion, 0x00})
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add([]byte{})
	f.Add(append([]byte{HeaderVersion}, bytes.Repeat([]byte{0xFF}, 10)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		g, err := ReadHeader(r)
		consumed := len(in) - r.Len()
		if consumed > MaxHeaderLen {
			t.Fatalf("consumed %d bytes, more than MaxHeaderLen", consumed)
		}
		if err != nil {
			return
		}
		if g == 0 {
			t.Fatal("accepted group 0")
		}
		if want := AppendHeader(nil, g); !bytes.Equal(in[:consumed], want) {
			t.Fatalf("accepted %x as group %d, canonical header is %x", in[:consumed], g, want)
		}
		if v, n := binary.Uvarint(in[1:consumed]); n != consumed-1 || v != g {
			t.Fatalf("encoding/binary reads %x as %d (%d bytes), ReadHeader as %d", in[1:consumed], v, n, g)
		}
	})
}
