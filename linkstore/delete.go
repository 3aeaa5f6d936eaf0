package linkstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/linkraft/linkraft/raftstore"
)

// TypeDelete deletes a link (Delete).
const TypeDelete CommandType = 0x03

// Results of a Delete.
const (
	// ResultDeleted: the link was replaced by a tombstone.
	ResultDeleted Status = 0x08
	// ResultNotFound: no link and no tombstone is stored at the code;
	// nothing changed.
	ResultNotFound Status = 0x09
	// ResultGone: the code holds a tombstone already (deleted before);
	// nothing changed.
	ResultGone Status = 0x0a
)

// ErrDeleted is returned by Get for a code whose link was deleted: the
// code holds a tombstone and is never issued again.
var ErrDeleted = errors.New("linkstore: link deleted")

// tombstoneMarker is the first byte of a tombstone value at a link key.
// Record encodings start with their version (>= 0x01), so the two never
// collide:
//
//	0x00 | deleted_at_ms zigzag varint
const tombstoneMarker = 0x00

// Delete removes the link of Code in Partition and leaves a tombstone at
// its key, so that neither the allocator nor an alias create ever hands the
// code out again. A reuse index entry that points at the code is removed,
// so a later reuse create of the same URL makes a new link.
type Delete struct {
	// Partition is the code's partition (ring.PartitionOfCode).
	Partition uint32
	// Code is the generated code or alias to delete.
	Code string
	// DeletedAtMs is the deletion time in Unix milliseconds, set by the
	// proposer (the leader's clock), so every replica stores the same.
	DeletedAtMs int64
}

// Type returns TypeDelete.
func (Delete) Type() CommandType { return TypeDelete }

// AppendDelete appends the command encoding of d to dst:
//
//	version 0x01 | 0x03 | partition u32 | deleted_at_ms zigzag varint | code
func AppendDelete(dst []byte, d Delete) []byte {
	dst = append(dst, commandVersion, byte(TypeDelete))
	dst = binary.BigEndian.AppendUint32(dst, d.Partition)
	dst = binary.AppendVarint(dst, d.DeletedAtMs)
	return append(dst, d.Code...)
}

func decodeDelete(b []byte) (Delete, error) {
	if len(b) < 4 {
		return Delete{}, fmt.Errorf("%w: delete of %d bytes", ErrMalformed, len(b))
	}
	d := Delete{Partition: binary.BigEndian.Uint32(b[:4])}
	b = b[4:]
	var n int
	d.DeletedAtMs, n = binary.Varint(b)
	if n <= 0 {
		return Delete{}, fmt.Errorf("%w: delete time", ErrMalformed)
	}
	d.Code = string(b[n:])
	return d, nil
}

// IsTombstone reports whether a value stored at a link key is a tombstone.
func IsTombstone(v []byte) bool { return len(v) > 0 && v[0] == tombstoneMarker }

// appendTombstone appends the tombstone of a link deleted at ms.
func appendTombstone(dst []byte, ms int64) []byte {
	return binary.AppendVarint(append(dst, tombstoneMarker), ms)
}

// decodeTombstone returns the deletion time of a tombstone.
func decodeTombstone(v []byte) (int64, error) {
	if !IsTombstone(v) {
		return 0, fmt.Errorf("%w: not a tombstone", ErrMalformed)
	}
	ms, n := binary.Varint(v[1:])
	if n <= 0 || 1+n != len(v) {
		return 0, fmt.Errorf("%w: tombstone %x", ErrMalformed, v)
	}
	return ms, nil
}

// checkPlace returns why code cannot be a code of partition, or "": the
// partition is out of range, the code's length is out of bounds, or the
// code places in another partition.
func (m *Machine) checkPlace(partition uint32, code string) string {
	if int(partition) >= m.codec.Partitions() {
		return fmt.Sprintf("partition %d is outside [0, %d)", partition, m.codec.Partitions())
	}
	if code == "" || len(code) > MaxCodeLength {
		return fmt.Sprintf("code must be 1 to %d bytes", MaxCodeLength)
	}
	if p := m.place.PartitionOfCode(code); p != partition {
		return fmt.Sprintf("code %q belongs to partition %d, not %d", code, p, partition)
	}
	return ""
}

// liveLink reads the stored record at key. It returns ResultNotFound for
// no record, ResultGone for a tombstone, and otherwise the record's bytes
// with status 0.
func liveLink(tx raftstore.Txn, key []byte) ([]byte, Status) {
	v, err := tx.Get(key)
	switch {
	case errors.Is(err, raftstore.ErrNotFound):
		return nil, ResultNotFound
	case err != nil:
		must("read link", err)
	}
	if IsTombstone(v) {
		return nil, ResultGone
	}
	return v, 0
}

// checkDelete returns why d cannot be applied, or "".
func (m *Machine) checkDelete(d Delete) string {
	if reason := m.checkPlace(d.Partition, d.Code); reason != "" {
		return reason
	}
	return ""
}

func (m *Machine) applyDelete(tx raftstore.Txn, d Delete) Result {
	if reason := m.checkDelete(d); reason != "" {
		return Result{Status: ResultBadRequest, Reason: reason}
	}
	key := LinkKey(d.Partition, d.Code)
	v, status := liveLink(tx, key)
	if status != 0 {
		return Result{Status: status}
	}
	rec, err := DecodeRecord(v)
	must("decode deleted record", err)
	if !rec.Alias {
		reuseKey := ReuseKey(d.Partition, rec.Owner, rec.URL)
		code, err := tx.Get(reuseKey)
		switch {
		case err == nil && bytes.Equal(code, []byte(d.Code)):
			must("delete reuse index", tx.Delete(reuseKey))
		case err != nil && !errors.Is(err, raftstore.ErrNotFound):
			must("read reuse index", err)
		}
	}
	unindexLink(tx, d.Partition, rec)
	must("store tombstone", tx.Set(key, appendTombstone(nil, d.DeletedAtMs)))
	return Result{Status: ResultDeleted}
}

// DeletedAt returns the deletion time (Unix milliseconds) of a deleted code
// in partition p: ErrNotFound when the code holds a live link or nothing.
func DeletedAt(r raftstore.Reader, p uint32, code string) (int64, error) {
	if code == "" || len(code) > MaxCodeLength {
		return 0, ErrNotFound
	}
	v, err := r.Get(LinkKey(p, code))
	if err != nil {
		if errors.Is(err, raftstore.ErrNotFound) {
			return 0, ErrNotFound
		}
		return 0, fmt.Errorf("linkstore: get %q in partition %d: %w", code, p, err)
	}
	if !IsTombstone(v) {
		return 0, ErrNotFound
	}
	ms, err := decodeTombstone(v)
	if err != nil {
		return 0, fmt.Errorf("linkstore: tombstone of %q in partition %d: %w", code, p, err)
	}
	return ms, nil
}
