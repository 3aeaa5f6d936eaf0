package shardrpc

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestChangesRequestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		since        uint64
		wait, wantMs int64
	}{{0, 0, 0}, {1, 1000, 1000}, {1<<64 - 1, MaxChangesWait, MaxChangesWait}, {7, -5, 0}, {7, MaxChangesWait + 1, MaxChangesWait}} {
		b := AppendChangesRequest([]byte("pre"), tc.since, tc.wait)
		since, wait, err := DecodeChangesRequest(b[3:])
		if err != nil || since != tc.since || wait != tc.wantMs {
			t.Errorf("%d %d: decoded %d %d %v", tc.since, tc.wait, since, wait, err)
		}
	}
	for name, b := range map[string][]byte{
		"empty":     nil,
		"short":     {ChangesWireVersion, 0, 0},
		"version 2": append([]byte{0x02}, AppendChangesRequest(nil, 1, 1)[1:]...),
		"long wait": {ChangesWireVersion, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0x27, 0x11},
		"trailing":  append(AppendChangesRequest(nil, 1, 1), 0),
	} {
		if _, _, err := DecodeChangesRequest(b); !errors.Is(err, ErrMalformedChanges) {
			t.Errorf("%s: %v, want ErrMalformedChanges", name, err)
		}
	}
}

func TestChangesRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		since uint64
		ch    Changes
	}{
		{5, Changes{Index: 5}},
		{5, Changes{Index: 9, Reset: true}},
		{0, Changes{Index: 3, Reset: true}},
		{5, Changes{Index: 20, Events: []ChangeEvent{{6, "abcdefg"}, {6, "alias-x"}, {20, strings.Repeat("z", 64)}}}},
		{1 << 40, Changes{Index: 1<<40 + 1, Events: []ChangeEvent{{1<<40 + 1, "a"}}}},
	} {
		b := AppendChanges(nil, tc.since, tc.ch)
		got, err := DecodeChanges(b, tc.since)
		if err != nil || !reflect.DeepEqual(got, tc.ch) {
			t.Errorf("%+v: decoded %+v %v", tc.ch, got, err)
		}
	}
	good := AppendChanges(nil, 5, Changes{Index: 9, Events: []ChangeEvent{{7, "abc"}}})
	for name, tc := range map[string]struct {
		b     []byte
		since uint64
	}{
		"empty":            {nil, 0},
		"version 2":        {append([]byte{2}, good[1:]...), 5},
		"unknown flag":     {append([]byte{1, 2}, good[2:]...), 5},
		"index before":     {AppendChanges(nil, 5, Changes{Index: 4}), 5},
		"reset with event": {AppendChanges(nil, 5, Changes{Index: 9, Reset: true, Events: []ChangeEvent{{7, "abc"}}}), 5},
		"event at since":   {AppendChanges(nil, 5, Changes{Index: 9, Events: []ChangeEvent{{5, "abc"}}}), 5},
		"event after":      {AppendChanges(nil, 5, Changes{Index: 9, Events: []ChangeEvent{{10, "abc"}}}), 5},
		"other since":      {good, 8},
		"empty code":       {AppendChanges(nil, 5, Changes{Index: 9, Events: []ChangeEvent{{7, ""}}}), 5},
		"long code":        {AppendChanges(nil, 5, Changes{Index: 9, Events: []ChangeEvent{{7, strings.Repeat("a", 65)}}}), 5},
		"truncated":        {good[:len(good)-1], 5},
		"trailing":         {append(bytes.Clone(good), 0), 5},
		"too many":         {append(append([]byte{1, 0}, good[2:10]...), 0x81, 0x20), 5},
	} {
		if _, err := DecodeChanges(tc.b, tc.since); !errors.Is(err, ErrMalformedChanges) {
			t.Errorf("%s: %v, want ErrMalformedChanges", name, err)
		}
	}
}

// FuzzDecodeChangesRequest: the node's decoder never panics and accepts
// only what AppendChangesRequest writes.
func FuzzDecodeChangesRequest(f *testing.F) {
	f.Add(AppendChangesRequest(nil, 0, 1000))
	f.Add(AppendChangesRequest(nil, 1<<50, 0))
	f.Add([]byte{ChangesWireVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		since, wait, err := DecodeChangesRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedChanges) {
				t.Fatalf("error %v does not wrap ErrMalformedChanges", err)
			}
			return
		}
		if again := AppendChangesRequest(nil, since, wait); !bytes.Equal(again, b) {
			t.Fatalf("%x decodes to %d %d, which encodes to %x", b, since, wait, again)
		}
	})
}

// FuzzDecodeChanges: the router's decoder of an answer never panics, and
// what it accepts is in order within (since, index], with valid codes, and
// encodes back to the same bytes.
func FuzzDecodeChanges(f *testing.F) {
	f.Add(AppendChanges(nil, 5, Changes{Index: 20, Events: []ChangeEvent{{6, "abcdefg"}, {6, "x"}, {20, "alias"}}}), uint64(5))
	f.Add(AppendChanges(nil, 0, Changes{Index: 3, Reset: true}), uint64(0))
	f.Add(AppendChanges(nil, 9, Changes{Index: 9}), uint64(9))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 9, 1, 0, 1, 'a'}, uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, since uint64) {
		ch, err := DecodeChanges(b, since)
		if err != nil {
			if !errors.Is(err, ErrMalformedChanges) {
				t.Fatalf("error %v does not wrap ErrMalformedChanges", err)
			}
			return
		}
		prev := since
		for i, e := range ch.Events {
			if e.Index < prev || (i == 0 && e.Index == since) || e.Index > ch.Index || e.Code == "" || len(e.Code) > maxWireCode {
				t.Fatalf("accepted event %d %+v after %d, index %d", i, e, prev, ch.Index)
			}
			prev = e.Index
		}
		if ch.Reset && len(ch.Events) != 0 || len(ch.Events) > MaxChangeEvents {
			t.Fatalf("accepted %+v", ch)
		}
		// Varints need not be minimal on input: compare decoded values.
		again, err := DecodeChanges(AppendChanges(nil, since, ch), since)
		if err != nil || !reflect.DeepEqual(again, ch) {
			t.Fatalf("%x: %+v re-encoded decodes to %+v %v", b, ch, again, err)
		}
	})
}
