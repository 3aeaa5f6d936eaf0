package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// errStableNotFound is what StableStore.Get and GetUint64 return for a
// missing key. hashicorp/raft recognises this case by the text "not found"
// (raft.go, api.go), the convention of raft-boltdb and raft's InmemStore, so
// the text must stay exactly that.
var errStableNotFound = errors.New("not found")

// logEncodingV1 is the first byte of every encoded raft log entry.
const logEncodingV1 byte = 1

// LogStore is a raft.LogStore and raft.StableStore for one group, kept in the
// node's shared Pebble DB under the group's 0x01 (log) and 0x02 (stable)
// ranges. Every write is synced before it returns. It is safe for concurrent
// use.
type LogStore struct {
	db    *pebble.DB
	group uint64

	logLower, logUpper []byte // bounds of the group's log range
	stablePrefix       []byte

	// truncated, if set, is told the highest index of every committed
	// DeleteRange that took the head of the log (the Store's
	// logCompactor).
	truncated func(group, max uint64)
}

var (
	_ raft.LogStore    = (*LogStore)(nil)
	_ raft.StableStore = (*LogStore)(nil)
)

// NewLogStore returns the log and stable store of group in db. It does not
// own db: closing db is the caller's job.
func NewLogStore(db *pebble.DB, group uint64) *LogStore {
	return &LogStore{
		db:           db,
		group:        group,
		logLower:     kindPrefix(group, kindLog),
		logUpper:     kindPrefix(group, kindLog+1),
		stablePrefix: kindPrefix(group, kindStable),
	}
}

// FirstIndex returns the first index written, 0 for an empty log.
func (s *LogStore) FirstIndex() (uint64, error) {
	return s.edgeIndex(true)
}

// LastIndex returns the last index written, 0 for an empty log.
func (s *LogStore) LastIndex() (uint64, error) {
	return s.edgeIndex(false)
}

func (s *LogStore) edgeIndex(first bool) (uint64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: s.logLower, UpperBound: s.logUpper})
	if err != nil {
		return 0, fmt.Errorf("raftstore: group %d: log iterator: %w", s.group, err)
	}
	var ok bool
	if first {
		ok = it.First()
	} else {
		ok = it.Last()
	}
	var idx uint64
	if ok {
		var valid bool
		if idx, valid = logIndexOf(it.Key()); !valid {
			_ = it.Close()
			return 0, fmt.Errorf("raftstore: group %d: malformed log key %x", s.group, it.Key())
		}
	}
	if err := it.Close(); err != nil {
		return 0, fmt.Errorf("raftstore: group %d: log iterator: %w", s.group, err)
	}
	return idx, nil
}

// GetLog reads the entry at index into log, or returns raft.ErrLogNotFound.
func (s *LogStore) GetLog(index uint64, log *raft.Log) error {
	v, closer, err := s.db.Get(logKey(s.group, index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("raftstore: group %d: get log %d: %w", s.group, index, err)
	}
	// decodeLog aliases its input: give it a copy that outlives closer.
	buf := make([]byte, len(v))
	copy(buf, v)
	_ = closer.Close()
	if err := decodeLog(buf, log); err != nil {
		return fmt.Errorf("raftstore: group %d: log %d: %w", s.group, index, err)
	}
	if log.Index != index {
		return fmt.Errorf("raftstore: group %d: log key %d holds entry %d", s.group, index, log.Index)
	}
	return nil
}

// StoreLog stores one entry.
func (s *LogStore) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs stores entries in one synced Pebble batch: all or none.
func (s *LogStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	size := 0
	for _, l := range logs {
		size += 2*(groupPrefixLen+9) + maxLogHeader + len(l.Data) + len(l.Extensions)
	}
	b := s.db.NewBatchWithSize(size)
	defer b.Close()
	var key, val []byte
	for _, l := range logs {
		key = appendLogKey(key[:0], s.group, l.Index)
		val = appendLog(val[:0], l)
		// Batch.Set copies key and value into the batch.
		if err := b.Set(key, val, nil); err != nil {
			return fmt.Errorf("raftstore: group %d: store log %d: %w", s.group, l.Index, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("raftstore: group %d: store logs %d..%d: %w", s.group, logs[0].Index, logs[len(logs)-1].Index, err)
	}
	return nil
}

// DeleteRange deletes the entries with indexes in [min, max], with one
// synced range deletion.
func (s *LogStore) DeleteRange(min, max uint64) error {
	if min > max {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(logKey(s.group, min), logKeyAfter(s.group, max), nil); err != nil {
		return fmt.Errorf("raftstore: group %d: delete logs %d..%d: %w", s.group, min, max, err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("raftstore: group %d: delete logs %d..%d: %w", s.group, min, max, err)
	}
	if s.truncated != nil && s.headDeleted(max) {
		s.truncated(s.group, max)
	}
	return nil
}

// headDeleted reports whether the log now starts after max (or is empty):
// a deletion up to max took the head of the log (raft's truncation after a
// snapshot) rather than a conflicting suffix, whose range is not dead
// weight below live entries.
func (s *LogStore) headDeleted(max uint64) bool {
	first, err := s.FirstIndex()
	return err == nil && (first == 0 || first > max)
}

// Set stores a stable key, synced.
func (s *LogStore) Set(key []byte, val []byte) error {
	if err := s.db.Set(prefixed(s.stablePrefix, key), val, pebble.Sync); err != nil {
		return fmt.Errorf("raftstore: group %d: stable set %q: %w", s.group, key, err)
	}
	return nil
}

// Get returns a copy of a stable key's value. A missing key returns an error
// with the text "not found", which is how hashicorp/raft recognises it.
func (s *LogStore) Get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(prefixed(s.stablePrefix, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, errStableNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("raftstore: group %d: stable get %q: %w", s.group, key, err)
	}
	out := make([]byte, len(v))
	copy(out, v)
	_ = closer.Close()
	return out, nil
}

// SetUint64 stores a stable uint64 (8 bytes, big-endian), synced.
func (s *LogStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns a stable uint64. A missing key returns 0 and the same
// "not found" error as Get.
func (s *LogStore) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raftstore: group %d: stable key %q holds %d bytes, want 8", s.group, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// maxLogHeader bounds the fixed part of an encoded entry: version, index,
// term, type, appended_at and two lengths.
const maxLogHeader = 1 + 3*binary.MaxVarintLen64 + 1 + 2*binary.MaxVarintLen64

// appendLog appends the encoding of l to dst:
//
//	version 0x01 | index uvarint | term uvarint | type u8 |
//	appended_at varint (Unix ns, 0 = zero time) |
//	len(data) uvarint | data | len(extensions) uvarint | extensions
func appendLog(dst []byte, l *raft.Log) []byte {
	dst = append(dst, logEncodingV1)
	dst = binary.AppendUvarint(dst, l.Index)
	dst = binary.AppendUvarint(dst, l.Term)
	dst = append(dst, byte(l.Type))
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	dst = binary.AppendVarint(dst, at)
	dst = binary.AppendUvarint(dst, uint64(len(l.Data)))
	dst = append(dst, l.Data...)
	dst = binary.AppendUvarint(dst, uint64(len(l.Extensions)))
	return append(dst, l.Extensions...)
}

var errCorruptLog = errors.New("raftstore: corrupt log entry")

// decodeLog decodes an entry encoded by appendLog. l.Data and l.Extensions
// alias b (nil when empty).
func decodeLog(b []byte, l *raft.Log) error {
	if len(b) == 0 || b[0] != logEncodingV1 {
		return fmt.Errorf("%w: unknown encoding", errCorruptLog)
	}
	b = b[1:]
	var n int
	if l.Index, n = binary.Uvarint(b); n <= 0 {
		return fmt.Errorf("%w: index", errCorruptLog)
	}
	b = b[n:]
	if l.Term, n = binary.Uvarint(b); n <= 0 {
		return fmt.Errorf("%w: term", errCorruptLog)
	}
	b = b[n:]
	if len(b) == 0 {
		return fmt.Errorf("%w: type", errCorruptLog)
	}
	l.Type = raft.LogType(b[0])
	b = b[1:]
	at, n := binary.Varint(b)
	if n <= 0 {
		return fmt.Errorf("%w: appended_at", errCorruptLog)
	}
	b = b[n:]
	l.AppendedAt = time.Time{}
	if at != 0 {
		l.AppendedAt = time.Unix(0, at)
	}
	var err error
	if l.Data, b, err = decodeBytes(b); err != nil {
		return fmt.Errorf("%w: data: %w", errCorruptLog, err)
	}
	if l.Extensions, b, err = decodeBytes(b); err != nil {
		return fmt.Errorf("%w: extensions: %w", errCorruptLog, err)
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errCorruptLog, len(b))
	}
	return nil
}

// decodeBytes reads uvarint length | bytes; an empty field decodes as nil.
func decodeBytes(b []byte) (field, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, nil, errors.New("bad length")
	}
	b = b[k:]
	if n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("length %d exceeds %d remaining bytes", n, len(b))
	}
	if n == 0 {
		return nil, b, nil
	}
	return b[:n:n], b[n:], nil
}
