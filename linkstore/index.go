package linkstore

import (
	"encoding/binary"

	"github.com/linkraft/linkraft/raftstore"
)

// Key kinds of the list indexes, the byte after the partition. Each entry's
// value is empty; the record is read from its link key.
//
//	partition u32 | 'a' | order u64 | code                       every live link
//	partition u32 | 'o' | len u8 | owner | order u64 | code      every live link with an owner
//
// order is the creation time inverted (orderOf), so an ascending scan
// yields the newest link first, ties by code ascending. Apply writes the
// entries with the record and removes them with it (a delete, and any
// later removal of a record, must call unindexLink); an edit that keeps
// the owner and the creation time leaves them as they are. Links stored
// before the indexes existed have no entries and are not listed.
const (
	kindAllIndex   = 'a'
	kindOwnerIndex = 'o'
)

// orderOf maps a creation time to its index order: later times sort
// first, and negative times (never written by a leader, but valid in a
// command) sort after every positive one.
func orderOf(createdAtMs int64) uint64 {
	return ^(uint64(createdAtMs) ^ (1 << 63))
}

// createdOf inverts orderOf.
func createdOf(order uint64) int64 {
	return int64(^order ^ (1 << 63))
}

// indexPrefix appends the prefix of the index of partition p that a list
// reads: the owner's index, or the all-links index when all is set.
func indexPrefix(dst []byte, p uint32, owner string, all bool) []byte {
	dst = binary.BigEndian.AppendUint32(dst, p)
	if all {
		return append(dst, kindAllIndex)
	}
	dst = append(dst, kindOwnerIndex, byte(len(owner)))
	return append(dst, owner...)
}

// appendIndexEntry appends the rest of an index key after its prefix.
func appendIndexEntry(dst []byte, createdAtMs int64, code string) []byte {
	dst = binary.BigEndian.AppendUint64(dst, orderOf(createdAtMs))
	return append(dst, code...)
}

// indexKeys returns the index keys of rec in partition p.
func indexKeys(p uint32, rec Record) [][]byte {
	keys := [][]byte{appendIndexEntry(indexPrefix(nil, p, "", true), rec.CreatedAtMs, rec.Code)}
	if rec.Owner != "" {
		keys = append(keys, appendIndexEntry(indexPrefix(nil, p, rec.Owner, false), rec.CreatedAtMs, rec.Code))
	}
	return keys
}

// indexLink adds rec, just stored in partition p, to the list indexes.
// It builds the keys in buf (Txn.Set copies them) and returns it, for the
// caller's next use.
func indexLink(tx raftstore.Txn, p uint32, rec Record, buf []byte) []byte {
	buf = appendIndexEntry(indexPrefix(buf[:0], p, "", true), rec.CreatedAtMs, rec.Code)
	must("store list index", tx.Set(buf, nil))
	if rec.Owner != "" {
		buf = appendIndexEntry(indexPrefix(buf[:0], p, rec.Owner, false), rec.CreatedAtMs, rec.Code)
		must("store list index", tx.Set(buf, nil))
	}
	return buf
}

// unindexLink removes rec of partition p from the list indexes; call it
// whenever a live record is removed or replaced by a tombstone.
func unindexLink(tx raftstore.Txn, p uint32, rec Record) {
	for _, k := range indexKeys(p, rec) {
		must("delete list index", tx.Delete(k))
	}
}

// Position is a place in a list's order: the link created at CreatedAtMs
// with Code (newest first, ties by code ascending).
type Position struct {
	CreatedAtMs int64
	Code        string
}

// Before reports whether p comes before q in the list order.
func (p Position) Before(q Position) bool {
	if p.CreatedAtMs != q.CreatedAtMs {
		return p.CreatedAtMs > q.CreatedAtMs
	}
	return p.Code < q.Code
}

// Compare orders p and q as the list does, for slices.SortFunc: -1 when p
// comes before q, +1 when after, 0 when they are the same place.
func (p Position) Compare(q Position) int {
	switch {
	case p.Before(q):
		return -1
	case q.Before(p):
		return 1
	}
	return 0
}
