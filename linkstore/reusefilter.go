package linkstore

import (
	"encoding/binary"
	"math/bits"

	"github.com/linkraft/linkraft/raftstore"
)

// A reuse filter is a replica's memo (raftstore.Memo) of which reuse index
// keys one partition may hold: a Bloom filter over the keys' hashes. Every
// generated create without limits looks its URL up in the reuse index, and
// for all but a repeated URL that lookup misses: with the filter it misses
// in memory instead of seeking through Pebble's memtables and levels, the
// last point read of such a create on every replica.
//
// The filter holds every key the partition stores (it may also hold keys
// that were deleted since, and, rarely, answer yes for one never stored:
// both only cost the read the create made before), so a "no" is exact and
// replicas with and without the filter apply alike. The Txn every command
// applies through (allocCache) consults it on each Get of a reuse key and
// adds every reuse key Set through it, whichever command writes it; deletes
// leave it unchanged. It is built on the first lookup in the partition after
// the replica starts or restores a snapshot (the memo is empty then) by a
// scan of the partition's reuse keys, and rebuilt the same way when it holds
// four times the keys it was built with (and at least 256), so it never
// falls below 16 bits per key. Each rebuild scans the partition's reuse keys
// in Pebble: growing four-fold (and from 256) rather than two-fold (and from
// 64) halves those scans while a partition fills, and spares them to a
// partition of fewer than 256 links, for the same memory (up to 64 bits per
// key at build, as before) and at most 0.1 % false positives.

// reuseFilterHashes is the number of bits a key sets in a reuse filter;
// with 16 or more bits per key, 6 gives at most 0.1% false positives.
const reuseFilterHashes = 6

// reuseFilter is one partition's filter.
type reuseFilter struct {
	bits  []uint64 // a power of two of them
	keys  int      // keys added
	limit int      // keys added beyond which the filter is rebuilt
}

// reuseFilterKey is the memo key of partition's *reuseFilter.
type reuseFilterKey uint32

// reuseKeyPartition returns the partition of a reuse index key.
func reuseKeyPartition(key []byte) (uint32, bool) {
	if len(key) != reuseKeyLen || key[4] != kindReuse {
		return 0, false
	}
	return binary.BigEndian.Uint32(key), true
}

// reuseFilterMinKeys is the fewest keys a filter is sized for.
const reuseFilterMinKeys = 256

// newReuseFilter returns an empty filter for a partition of keys keys,
// sized for four times as many.
func newReuseFilter(keys int) *reuseFilter {
	limit := max(4*keys, reuseFilterMinKeys)
	words := 1 << bits.Len(uint(limit*16/64-1)) // 16 bits per key at the limit
	return &reuseFilter{bits: make([]uint64, words), limit: limit}
}

// reuseHashes returns the two hashes a key's bit positions derive from:
// two words of its SHA-256, which is uniform already.
func reuseHashes(key []byte) (h1, h2 uint64) {
	return binary.LittleEndian.Uint64(key[5:]), binary.LittleEndian.Uint64(key[13:]) | 1
}

// add adds the key of hashes h1, h2 (reuseHashes).
func (f *reuseFilter) add(h1, h2 uint64) {
	mask := uint64(len(f.bits)*64 - 1)
	for i := range uint64(reuseFilterHashes) {
		pos := (h1 + i*h2) & mask
		f.bits[pos/64] |= 1 << (pos % 64)
	}
	f.keys++
}

// mayHold reports whether the partition may store the key of hashes h1,
// h2; false is exact.
func (f *reuseFilter) mayHold(h1, h2 uint64) bool {
	mask := uint64(len(f.bits)*64 - 1)
	for i := range uint64(reuseFilterHashes) {
		pos := (h1 + i*h2) & mask
		if f.bits[pos/64]&(1<<(pos%64)) == 0 {
			return false
		}
	}
	return true
}

// reuseFilterOf returns the filter of partition p from memo, building it
// from tx's reuse keys of p when the memo has none or the one it has is
// full.
func reuseFilterOf(tx raftstore.Txn, memo *raftstore.Memo, p uint32) *reuseFilter {
	if v, ok := memo.Get(reuseFilterKey(p)); ok {
		if f := v.(*reuseFilter); f.keys <= f.limit {
			return f
		}
	}
	lower := binary.BigEndian.AppendUint32(make([]byte, 0, 5), p)
	upper := append(lower[:4:4], kindReuse+1)
	lower = append(lower, kindReuse)
	var hashes [][2]uint64
	must("scan reuse index", tx.Scan(lower, upper, func(k, _ []byte) bool {
		if len(k) == reuseKeyLen {
			h1, h2 := reuseHashes(k)
			hashes = append(hashes, [2]uint64{h1, h2})
		}
		return true
	}))
	f := newReuseFilter(len(hashes))
	for _, h := range hashes {
		f.add(h[0], h[1])
	}
	memo.Set(reuseFilterKey(p), f)
	return f
}
