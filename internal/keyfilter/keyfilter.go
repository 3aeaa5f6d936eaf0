// Package keyfilter is the Bloom filter behind a replica's memos of which
// keys one range of its store may hold (linkstore's reuse filters,
// clickstore's clicked-code filters): a "no" is exact, so a state machine
// that skips the Pebble read of a key the filter does not hold applies
// exactly as one that reads it, and replicas with and without the filter
// stay alike.
//
// A filter is sized for four times the keys it is built with (and at
// least MinKeys), at 16 bits per key at that limit, with 6 bits set per
// key: at most 0.1 % false positives. Past the limit (Full) its owner
// rebuilds it from the store, so it never falls below 16 bits per key.
// Growing four-fold rather than two-fold halves those rebuilds while a
// range fills.
package keyfilter

import "math/bits"

// Hashes is the number of bits a key sets; with 16 or more bits per key,
// 6 gives at most 0.1 % false positives.
const Hashes = 6

// MinKeys is the fewest keys a filter is sized for.
const MinKeys = 256

// Filter is one range's filter over keys given as two 64-bit hashes (h2
// odd; Kirsch-Mitzenmacher double hashing). It is not safe for concurrent
// use; a replica's memo is used by its apply loop alone.
type Filter struct {
	bits  []uint64 // a power of two of them
	keys  int      // keys added
	limit int      // keys added beyond which the filter is full
}

// New returns an empty filter for a range of keys keys, sized for four
// times as many (and at least MinKeys).
func New(keys int) *Filter {
	limit := max(4*keys, MinKeys)
	words := 1 << bits.Len(uint(limit*16/64-1)) // 16 bits per key at the limit
	return &Filter{bits: make([]uint64, words), limit: limit}
}

// Of returns a filter sized for the keys of hashes (New(len(hashes)))
// that holds them: a range's filter built from a scan of its keys.
func Of(hashes [][2]uint64) *Filter {
	f := New(len(hashes))
	for _, h := range hashes {
		f.Add(h[0], h[1])
	}
	return f
}

// Add adds the key of hashes h1, h2.
func (f *Filter) Add(h1, h2 uint64) {
	mask := uint64(len(f.bits)*64 - 1)
	for i := range uint64(Hashes) {
		pos := (h1 + i*h2) & mask
		f.bits[pos/64] |= 1 << (pos % 64)
	}
	f.keys++
}

// MayHold reports whether the key of hashes h1, h2 may have been added;
// false is exact.
func (f *Filter) MayHold(h1, h2 uint64) bool {
	mask := uint64(len(f.bits)*64 - 1)
	for i := range uint64(Hashes) {
		pos := (h1 + i*h2) & mask
		if f.bits[pos/64]&(1<<(pos%64)) == 0 {
			return false
		}
	}
	return true
}

// Keys returns the number of keys added.
func (f *Filter) Keys() int { return f.keys }

// Full reports whether more keys were added than the filter is sized
// for: its owner should rebuild it.
func (f *Filter) Full() bool { return f.keys > f.limit }

// Limit returns the keys the filter is sized for.
func (f *Filter) Limit() int { return f.limit }
