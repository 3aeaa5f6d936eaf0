package linkstore

import (
	"encoding/binary"

	"github.com/linkraft/linkraft/internal/keyfilter"
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
// four times the keys it was built with (and at least 256: keyfilter.Full),
// so it never falls below 16 bits per key. Each rebuild scans the
// partition's reuse keys in Pebble: growing four-fold (and from 256) rather
// than two-fold (and from 64) halves those scans while a partition fills,
// and spares them to a partition of fewer than 256 links, for the same
// memory (up to 64 bits per key at build, as before) and at most 0.1 %
// false positives.

// reuseFilter is one partition's filter (keyfilter's: a "no" is exact).
type reuseFilter = keyfilter.Filter

// reuseFilterKey is the memo key of partition's *reuseFilter.
type reuseFilterKey uint32

// reuseKeyPartition returns the partition of a reuse index key.
func reuseKeyPartition(key []byte) (uint32, bool) {
	if len(key) != reuseKeyLen || key[4] != kindReuse {
		return 0, false
	}
	return binary.BigEndian.Uint32(key), true
}

// reuseHashes returns the two hashes a key's bit positions derive from:
// two words of its SHA-256, which is uniform already.
func reuseHashes(key []byte) (h1, h2 uint64) {
	return binary.LittleEndian.Uint64(key[5:]), binary.LittleEndian.Uint64(key[13:]) | 1
}

// reuseFilterOf returns the filter of partition p from memo, building it
// from tx's reuse keys of p when the memo has none or the one it has is
// full.
func reuseFilterOf(tx raftstore.Txn, memo *raftstore.Memo, p uint32) *reuseFilter {
	if v, ok := memo.Get(reuseFilterKey(p)); ok {
		if f := v.(*reuseFilter); !f.Full() {
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
	f := keyfilter.Of(hashes)
	memo.Set(reuseFilterKey(p), f)
	return f
}
