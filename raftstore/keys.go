package raftstore

import (
	"encoding/binary"
	"math"
)

// Key layout of the node's one Pebble DB (see the package documentation).
const (
	// keyspaceGroups is the first byte of every key that belongs to a group.
	keyspaceGroups byte = 0x01

	kindLog    byte = 0x01 // raft log entries, keyed by index
	kindStable byte = 0x02 // raft stable store (current term, vote, ...)
	kindMeta   byte = 0x03 // FSM metadata: applied index, idempotency table
	kindData   byte = 0x04 // the StateMachine's keys

	// groupPrefixLen is len(0x01 | group u64).
	groupPrefixLen = 1 + 8
)

// Names inside the FSM metadata range (after the kindMeta byte).
const (
	metaApplied byte = 'a' // meta|'a' -> applied index, u64 BE
	metaIdem    byte = 'i' // meta|'i'|idemKey -> stored result
	metaExpiry  byte = 'x' // meta|'x'|index u64 BE|idemKey -> empty
)

// groupPrefix returns 0x01 | group.
func groupPrefix(group uint64) []byte {
	b := make([]byte, groupPrefixLen, groupPrefixLen+1+8)
	b[0] = keyspaceGroups
	binary.BigEndian.PutUint64(b[1:], group)
	return b
}

// kindPrefix returns 0x01 | group | kind.
func kindPrefix(group uint64, kind byte) []byte {
	return append(groupPrefix(group), kind)
}

// logKey returns the key of the log entry at index.
func logKey(group uint64, index uint64) []byte {
	return appendLogKey(nil, group, index)
}

func appendLogKey(dst []byte, group uint64, index uint64) []byte {
	dst = append(dst, keyspaceGroups)
	dst = binary.BigEndian.AppendUint64(dst, group)
	dst = append(dst, kindLog)
	return binary.BigEndian.AppendUint64(dst, index)
}

// logIndexOf returns the index encoded in a log key.
func logIndexOf(key []byte) (uint64, bool) {
	if len(key) != groupPrefixLen+1+8 || key[groupPrefixLen] != kindLog {
		return 0, false
	}
	return binary.BigEndian.Uint64(key[groupPrefixLen+1:]), true
}

// logKeyAfter returns the exclusive upper key for log indexes <= max.
func logKeyAfter(group uint64, max uint64) []byte {
	if max == math.MaxUint64 {
		return kindPrefix(group, kindLog+1)
	}
	return logKey(group, max+1)
}

// prefixed returns prefix|key in a new slice.
func prefixed(prefix, key []byte) []byte {
	b := make([]byte, 0, len(prefix)+len(key))
	b = append(b, prefix...)
	return append(b, key...)
}

// metaKey returns 0x01 | group | 0x03 | name | rest.
func metaKey(group uint64, name byte, rest []byte) []byte {
	b := make([]byte, 0, groupPrefixLen+2+len(rest))
	b = append(b, groupPrefix(group)...)
	b = append(b, kindMeta, name)
	return append(b, rest...)
}

// expiryKey returns meta|'x'|index|idemKey.
func expiryKey(group uint64, index uint64, idemKey []byte) []byte {
	b := make([]byte, 0, groupPrefixLen+2+8+len(idemKey))
	b = append(b, groupPrefix(group)...)
	b = append(b, kindMeta, metaExpiry)
	b = binary.BigEndian.AppendUint64(b, index)
	return append(b, idemKey...)
}
