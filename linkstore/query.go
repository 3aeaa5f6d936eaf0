package linkstore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/linkraft/linkraft/raftstore"
)

// ErrNotFound is returned by the queries for a link that is not stored.
var ErrNotFound = errors.New("linkstore: link not found")

// Get returns the link of code in partition p: ErrNotFound when nothing is
// stored there, ErrDeleted when the link was deleted (a tombstone).
func Get(r raftstore.Reader, p uint32, code string) (Record, error) {
	if code == "" || len(code) > MaxCodeLength {
		return Record{}, ErrNotFound
	}
	v, err := r.Get(LinkKey(p, code))
	if err != nil {
		if errors.Is(err, raftstore.ErrNotFound) {
			return Record{}, ErrNotFound
		}
		return Record{}, fmt.Errorf("linkstore: get %q in partition %d: %w", code, p, err)
	}
	if IsTombstone(v) {
		return Record{}, ErrDeleted
	}
	rec, err := DecodeRecord(v)
	if err != nil {
		return Record{}, fmt.Errorf("linkstore: get %q in partition %d: %w", code, p, err)
	}
	return rec, nil
}

// FindURL returns the partition's first generated link of url by owner
// (the link a reuse create of that owner returns), or ErrNotFound.
func FindURL(r raftstore.Reader, p uint32, owner, url string) (Record, error) {
	code, err := r.Get(ReuseKey(p, owner, url))
	if err != nil {
		if errors.Is(err, raftstore.ErrNotFound) {
			return Record{}, ErrNotFound
		}
		return Record{}, fmt.Errorf("linkstore: reuse index of partition %d: %w", p, err)
	}
	return Get(r, p, string(code))
}

// Allocated returns how many IDs partition p's allocator has consumed
// (generated links plus the IDs skipped because an alias held their code).
func Allocated(r raftstore.Reader, p uint32) (uint64, error) {
	st, err := readAlloc(r, NextKey(p))
	if err != nil {
		return 0, fmt.Errorf("linkstore: allocator of partition %d: %w", p, err)
	}
	return st.offset, nil
}

// Count returns the number of links stored in partition p, tombstones of
// deleted links not included. It scans the partition's link records, so it
// costs time in proportion to their number.
func Count(r raftstore.Reader, p uint32) (uint64, error) {
	lower := binary.BigEndian.AppendUint32(nil, p)
	lower = append(lower, kindLink)
	upper := binary.BigEndian.AppendUint32(nil, p)
	upper = append(upper, kindLink+1)
	var n uint64
	err := r.Scan(lower, upper, func(_, v []byte) bool {
		if !IsTombstone(v) {
			n++
		}
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("linkstore: count partition %d: %w", p, err)
	}
	return n, nil
}
