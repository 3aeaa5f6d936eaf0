package clickstore

import (
	"encoding/binary"
	"hash/maphash"

	"github.com/linkraft/linkraft/internal/keyfilter"
	"github.com/linkraft/linkraft/raftstore"
)

// A clicked-code filter is a replica's memo (raftstore.Memo) of which codes
// of one partition have click records: a keyfilter.Filter over the codes of
// the partition's totals keys. Apply reads a code's day record and totals
// only when the record memo does not hold them and the filter may hold the
// code, so the first click of a code (on a shortener, most codes are
// clicked rarely) costs no Pebble read: two point reads that miss, each
// through every level's iterators (docs/BENCHMARKS.md, "Cold redirects:
// where the nodes' CPU goes now").
//
// A "no" must be exact, or Apply would overwrite a code's records as if it
// had none and the replica would diverge. It is, because every code with
// click records has a totals key (Apply writes a code's day record and its
// totals in the same delta, and nothing else writes either:
// TestEveryDayRecordHasTotals), the filter is built from a scan of the
// partition's totals keys, and Apply adds each code whose totals it writes
// for the first time. Deletes leave it unchanged (a "yes" for a code with
// no records left only costs the reads). It is built on the first delta of
// the partition after the replica starts or restores a snapshot (the memo
// is empty then) and rebuilt the same way when it is full (four times the
// codes it was built with: keyfilter). ForgetMemo drops it with the record
// memo.

// codeFiltersKey is the raftstore.Memo key of a replica's codeFilters.
type codeFiltersKey struct{}

// codeFilters is a replica's clicked-code filters, by partition.
type codeFilters map[uint32]*keyfilter.Filter

// The seeds of a code's two hashes. Filters live in memory only, so any
// seed serves; one per process.
var codeSeed1, codeSeed2 = maphash.MakeSeed(), maphash.MakeSeed()

// codeHashes returns the two hashes of code a filter takes.
func codeHashes(code []byte) (h1, h2 uint64) {
	return maphash.Bytes(codeSeed1, code), maphash.Bytes(codeSeed2, code) | 1
}

// codeFiltersOf returns the replica's filters, creating them, or nil when
// tx carries no raftstore.Memo.
func codeFiltersOf(tx raftstore.Txn) codeFilters {
	m := raftstore.MemoOf(tx)
	if m == nil {
		return nil
	}
	if v, ok := m.Get(codeFiltersKey{}); ok {
		return v.(codeFilters)
	}
	fs := make(codeFilters)
	m.Set(codeFiltersKey{}, fs)
	return fs
}

// of returns partition p's filter, building it from tx's totals keys of p
// when there is none or the one there is is full.
func (fs codeFilters) of(tx raftstore.Txn, p uint32) (*keyfilter.Filter, error) {
	if f, ok := fs[p]; ok && !f.Full() {
		return f, nil
	}
	lower := binary.BigEndian.AppendUint32(make([]byte, 0, 5), p)
	upper := append(lower[:4:4], kindTotal+1)
	lower = append(lower, kindTotal)
	var hashes [][2]uint64
	if err := tx.Scan(lower, upper, func(k, _ []byte) bool {
		h1, h2 := codeHashes(k[len(lower):])
		hashes = append(hashes, [2]uint64{h1, h2})
		return true
	}); err != nil {
		return nil, err
	}
	f := keyfilter.Of(hashes)
	fs[p] = f
	return f, nil
}
