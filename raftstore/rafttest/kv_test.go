package rafttest

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestCommandRoundTrip(t *testing.T) {
	for _, cmd := range []Command{
		{Op: OpPut, ID: []byte("op-1"), Key: []byte("k"), Value: []byte("v")},
		{Op: OpPut, Key: []byte("k"), Value: nil},
		{Op: OpDelete, ID: []byte("d"), Key: []byte("k")},
		{Op: OpAdd, ID: []byte("a"), Key: []byte("c"), Value: []byte{0, 0, 0, 0, 0, 0, 0, 5}},
	} {
		got, err := DecodeCommand(cmd.Encode())
		if err != nil {
			t.Fatalf("DecodeCommand(%+v): %v", cmd, err)
		}
		if got.Op != cmd.Op || !bytes.Equal(got.ID, cmd.ID) || !bytes.Equal(got.Key, cmd.Key) || !bytes.Equal(got.Value, cmd.Value) {
			t.Fatalf("round trip %+v -> %+v", cmd, got)
		}
	}
}

func TestDecodeCommandErrors(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":         nil,
		"unknown op":    {9, 0, 1, 'k'},
		"truncated id":  {byte(OpPut), 5, 'a'},
		"bad varint":    {byte(OpPut), 0xFF},
		"empty key":     {byte(OpPut), 0, 0},
		"reserved key":  Put(nil, []byte("\xffop/x"), nil),
		"short delta":   Command{Op: OpAdd, Key: []byte("c"), Value: []byte{1}}.Encode(),
		"delete value":  Command{Op: OpDelete, Key: []byte("c"), Value: []byte{1}}.Encode(),
		"key too long":  {byte(OpPut), 0, 200, 1, 'k'},
		"huge id len":   {byte(OpPut), 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01},
		"overflow uvar": {byte(OpPut), 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01},
	} {
		if _, err := DecodeCommand(b); !errors.Is(err, ErrBadCommand) {
			t.Errorf("%s: DecodeCommand(%x) = %v, want ErrBadCommand", name, b, err)
		}
	}
}

func TestResultRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		b    []byte
		want Result
	}{
		{encodeResult(StatusOK, 7, nil), Result{Status: StatusOK, Index: 7}},
		{encodeResult(StatusOK, 8, []byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE}), Result{Status: StatusOK, Index: 8, Counter: -2}},
		{encodeResult(StatusDuplicate, math.MaxUint64, nil), Result{Status: StatusDuplicate, Index: math.MaxUint64}},
		{encodeResult(StatusError, 1, []byte("boom")), Result{Status: StatusError, Index: 1, Message: "boom"}},
	} {
		got, err := DecodeResult(tc.b)
		if err != nil || got != tc.want {
			t.Fatalf("DecodeResult(%x) = %+v, %v; want %+v", tc.b, got, err, tc.want)
		}
	}
	for _, b := range [][]byte{nil, {1, 2, 3}, append(encodeResult(StatusOK, 1, nil), 1), append(encodeResult(StatusDuplicate, 1, nil), 1), encodeResult(9, 1, nil)} {
		if _, err := DecodeResult(b); err == nil {
			t.Fatalf("DecodeResult(%x) succeeded", b)
		}
	}
}

// FuzzDecodeCommand checks that DecodeCommand never panics and that every
// command it accepts re-encodes to the same bytes.
func FuzzDecodeCommand(f *testing.F) {
	f.Add(Put([]byte("op-1"), []byte("key"), []byte("value")))
	f.Add(Add([]byte("a"), []byte("counter"), -3))
	f.Add(Delete(nil, []byte("k")))
	f.Add([]byte{})
	f.Add([]byte{byte(OpPut), 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01})
	f.Add([]byte{byte(OpAdd), 0, 1, 'c', 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			if !errors.Is(err, ErrBadCommand) {
				t.Fatalf("error %v does not wrap ErrBadCommand", err)
			}
			return
		}
		if len(c.Key) == 0 || c.Key[0] == 0xFF {
			t.Fatalf("accepted key %q", c.Key)
		}
		// Encodings are canonical except for non-minimal uvarints, which
		// binary.Uvarint accepts; re-decoding the re-encoding must agree.
		again, err := DecodeCommand(c.Encode())
		if err != nil {
			t.Fatalf("re-encoding of an accepted command fails: %v", err)
		}
		if again.Op != c.Op || !bytes.Equal(again.ID, c.ID) || !bytes.Equal(again.Key, c.Key) || !bytes.Equal(again.Value, c.Value) {
			t.Fatalf("re-encoding changed the command: %+v -> %+v", c, again)
		}
	})
}

// FuzzDecodeResult checks that DecodeResult never panics and that what it
// accepts re-encodes to the same bytes.
func FuzzDecodeResult(f *testing.F) {
	f.Add(encodeResult(StatusOK, 1, nil))
	f.Add(encodeResult(StatusOK, 2, []byte{0, 0, 0, 0, 0, 0, 0, 1}))
	f.Add(encodeResult(StatusError, 3, []byte("x")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResult(b)
		if err != nil {
			return
		}
		var extra []byte
		switch r.Status {
		case StatusOK:
			if len(b) == 17 {
				extra = b[9:]
			}
		case StatusError:
			extra = []byte(r.Message)
		}
		if got := encodeResult(r.Status, r.Index, extra); !bytes.Equal(got, b) {
			t.Fatalf("DecodeResult(%x) = %+v re-encodes to %x", b, r, got)
		}
	})
}
