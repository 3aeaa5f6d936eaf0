package linkstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/linkraft/linkraft/raftstore"
)

// TypePurge removes expired links (Purge): the shard leader's background
// sweep proposes it (package node).
const TypePurge CommandType = 0x05

// ResultPurged is the status of the result of a Purge: the number of links
// it removed follows (DecodePurgeResult). DecodeResult does not accept it.
const ResultPurged Status = 0x0b

// MaxPurgeItems bounds the codes of one Purge command.
const MaxPurgeItems = 256

// PurgeItem names one link a Purge may remove.
type PurgeItem struct {
	// Partition is the code's partition (ring.PartitionOfCode).
	Partition uint32
	// Code is the generated code or alias.
	Code string
}

// Purge removes the links among Items whose expiry is at or before
// CutoffMs, exactly as a Delete would (the record is replaced by a
// tombstone, whose time is the link's expiry, and a reuse index entry
// pointing at the code is removed), so that a purged code is never issued
// again and answers "gone" like a deleted one (and leaves the list
// indexes). Each item's expiry is
// checked again in Apply against CutoffMs, which the proposing leader
// chose (its clock minus a grace period): Apply reads no clock, so every
// replica decides alike, and a link whose expiry was moved past the cutoff
// (or cleared) after the leader scanned it is left alone. Items that are
// missing, already tombstones, without expiry or not yet expired at the
// cutoff are skipped. Click statistics are kept, as for a Delete.
type Purge struct {
	// CutoffMs is the latest expiry (Unix ms) a purged link may have.
	CutoffMs int64
	// Items are the candidates, 1 to MaxPurgeItems.
	Items []PurgeItem
}

// Type returns TypePurge.
func (Purge) Type() CommandType { return TypePurge }

// AppendPurge appends the command encoding of p to dst:
//
//	version 0x01 | 0x05 | cutoff_ms zigzag varint | count uvarint |
//	{ partition u32 | code length u8 | code }*
func AppendPurge(dst []byte, p Purge) []byte {
	dst = append(dst, commandVersion, byte(TypePurge))
	dst = binary.AppendVarint(dst, p.CutoffMs)
	dst = binary.AppendUvarint(dst, uint64(len(p.Items)))
	for _, it := range p.Items {
		dst = binary.BigEndian.AppendUint32(dst, it.Partition)
		dst = append(dst, byte(len(it.Code)))
		dst = append(dst, it.Code...)
	}
	return dst
}

func decodePurge(b []byte) (Purge, error) {
	cutoff, n := binary.Varint(b)
	if n <= 0 {
		return Purge{}, fmt.Errorf("%w: purge cutoff", ErrMalformed)
	}
	b = b[n:]
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return Purge{}, fmt.Errorf("%w: purge count", ErrMalformed)
	}
	if count == 0 || count > MaxPurgeItems {
		return Purge{}, fmt.Errorf("%w: purge of %d items, want 1 to %d", ErrMalformed, count, MaxPurgeItems)
	}
	b = b[n:]
	p := Purge{CutoffMs: cutoff, Items: make([]PurgeItem, count)}
	for i := range p.Items {
		if len(b) < 5 {
			return Purge{}, fmt.Errorf("%w: purge item %d truncated", ErrMalformed, i)
		}
		part, cl := binary.BigEndian.Uint32(b[:4]), int(b[4])
		b = b[5:]
		if cl == 0 || cl > MaxCodeLength || cl > len(b) {
			return Purge{}, fmt.Errorf("%w: purge item %d code length %d", ErrMalformed, i, cl)
		}
		p.Items[i] = PurgeItem{Partition: part, Code: string(b[:cl])}
		b = b[cl:]
	}
	if len(b) != 0 {
		return Purge{}, fmt.Errorf("%w: %d bytes after the purge", ErrMalformed, len(b))
	}
	return p, nil
}

// checkPurge returns why p cannot be applied, or "".
func (m *Machine) checkPurge(p Purge) string {
	if p.CutoffMs < 0 {
		return fmt.Sprintf("purge cutoff %d is before 1970", p.CutoffMs)
	}
	for i, it := range p.Items {
		if int(it.Partition) >= m.codec.Partitions() {
			return fmt.Sprintf("purge item %d: partition %d is outside [0, %d)", i, it.Partition, m.codec.Partitions())
		}
		if q := m.place.PartitionOfCode(it.Code); q != it.Partition {
			return fmt.Sprintf("purge item %d: code %q belongs to partition %d, not %d", i, it.Code, q, it.Partition)
		}
	}
	return ""
}

// applyPurge removes the expired links of p and returns the purge result.
func (m *Machine) applyPurge(tx raftstore.Txn, p Purge) []byte {
	if reason := m.checkPurge(p); reason != "" {
		return badRequest(reason)
	}
	var purged uint64
	for _, it := range p.Items {
		key := LinkKey(it.Partition, it.Code)
		v, err := tx.Get(key)
		switch {
		case errors.Is(err, raftstore.ErrNotFound):
			continue
		case err != nil:
			must("read link", err)
		}
		if IsTombstone(v) {
			continue
		}
		rec, err := DecodeRecord(v)
		must("decode purged record", err)
		if rec.ExpiresAtMs == 0 || rec.ExpiresAtMs > p.CutoffMs {
			continue
		}
		m.dropReuse(tx, it.Partition, rec)
		unindexLink(tx, it.Partition, rec)
		must("store tombstone", tx.Set(key, appendTombstone(nil, rec.ExpiresAtMs)))
		purged++
	}
	return binary.AppendUvarint([]byte{resultVersion, byte(ResultPurged)}, purged)
}

// dropReuse removes the reuse index entry of rec's URL when it points at
// rec (only generated links are indexed).
func (m *Machine) dropReuse(tx raftstore.Txn, p uint32, rec Record) {
	if rec.Alias {
		return
	}
	reuseKey := ReuseKey(p, rec.Owner, rec.URL)
	code, err := tx.Get(reuseKey)
	switch {
	case err == nil && bytes.Equal(code, []byte(rec.Code)):
		must("delete reuse index", tx.Delete(reuseKey))
	case err != nil && !errors.Is(err, raftstore.ErrNotFound):
		must("read reuse index", err)
	}
}

// DecodePurgeResult returns the number of links a Purge removed. A purge
// refused as a whole (ResultBadRequest) is an error wrapping
// ErrBatchRefused. It never panics.
func DecodePurgeResult(b []byte) (uint64, error) {
	if len(b) < 2 {
		return 0, fmt.Errorf("%w: purge result of %d bytes", ErrMalformed, len(b))
	}
	if b[0] != resultVersion {
		return 0, fmt.Errorf("%w: result version %#x", ErrUnknownVersion, b[0])
	}
	if Status(b[1]) != ResultPurged {
		r, err := DecodeResult(b)
		if err != nil {
			return 0, fmt.Errorf("purge result: %w", err)
		}
		return 0, fmt.Errorf("%w: %s: %s", ErrBatchRefused, r.Status, r.Reason)
	}
	n, l := binary.Uvarint(b[2:])
	if l <= 0 || 2+l != len(b) || n > MaxPurgeItems {
		return 0, fmt.Errorf("%w: purge result count", ErrMalformed)
	}
	return n, nil
}

// ScanExpired looks at up to limit link records of partition p, in code
// order after the code after ("" for the start), and calls fn with the
// code of each live link whose expiry is at or before cutoffMs; fn
// returning false stops the scan there. It returns the code to resume
// after ("" when the partition's end was reached) and how many records it
// looked at. The background purge
// sweep calls it on a local read of the leader; the Purge it proposes
// checks every expiry again.
func ScanExpired(r raftstore.Reader, p uint32, after string, cutoffMs int64, limit int, fn func(code string) bool) (resume string, seen int, err error) {
	lower := LinkKey(p, after)
	if after != "" {
		lower = append(lower, 0x00) // the first key after after's
	}
	upper := binary.BigEndian.AppendUint32(nil, p)
	upper = append(upper, kindLink+1)
	var last string
	var scanErr error
	stopped := false
	err = r.Scan(lower, upper, func(k, v []byte) bool {
		if seen >= limit {
			stopped = true
			return false
		}
		seen++
		last = string(k[5:])
		// Records without limits (version 0x01) and tombstones never
		// expire: skip them without decoding.
		if len(v) == 0 || v[0] == recordVersion || IsTombstone(v) {
			return true
		}
		rec, derr := DecodeRecord(v)
		if derr != nil {
			scanErr = fmt.Errorf("linkstore: record %q in partition %d: %w", last, p, derr)
			return false
		}
		if rec.ExpiresAtMs != 0 && rec.ExpiresAtMs <= cutoffMs && !fn(rec.Code) {
			stopped = true
			return false
		}
		return true
	})
	if err == nil {
		err = scanErr
	}
	if err != nil {
		return "", seen, fmt.Errorf("linkstore: scan partition %d for expired links: %w", p, err)
	}
	if stopped {
		return last, seen, nil
	}
	return "", seen, nil
}
