package clickstore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/axiomhq/hyperloglog"
	"github.com/linkraft/linkraft/clicks"
	"github.com/linkraft/linkraft/raftstore"
)

// This file keeps the apply path as it was before Apply merged sketches
// and tallies in its own buffers: decode the stored record into a
// dayRecord with the hyperloglog library, merge, compact (Estimate) and
// encode with the library. The tests hold Apply to it byte for byte.

// appendDayRecord encodes r as the library-based apply path did.
func appendDayRecord(dst []byte, r *dayRecord) ([]byte, error) {
	dst = append(dst, recordVersion)
	dst = binary.AppendUvarint(dst, r.clicks)
	dst = binary.AppendUvarint(dst, r.bots)
	var sk []byte
	if r.visitors != nil {
		r.visitors.Estimate() // compacts the sparse form: one canonical-enough encoding
		var err error
		if sk, err = r.visitors.AppendBinary(nil); err != nil {
			return nil, fmt.Errorf("encode visitor sketch: %w", err)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(sk)))
	dst = append(dst, sk...)
	for _, t := range r.tallies {
		dst = clicks.AppendTally(dst, t)
	}
	return dst, nil
}

// legacyApply is Apply with the library-based merge.
func legacyApply(tx raftstore.Txn, partitionOf func(code string) uint32, batch clicks.Batch) (Outcome, error) {
	if batch.Router == "" || len(batch.Router) > clicks.MaxRouterLen {
		return 0, fmt.Errorf("%w: router ID of %d bytes", ErrInvalid, len(batch.Router))
	}
	if batch.Seq == 0 {
		return 0, fmt.Errorf("%w: sequence 0", ErrInvalid)
	}
	sketches := make([]*hyperloglog.Sketch, len(batch.Deltas))
	for i := range batch.Deltas {
		d := &batch.Deltas[i]
		if !ValidCode(d.Code) {
			return 0, fmt.Errorf("%w: code %q", ErrInvalid, d.Code)
		}
		for _, t := range [...][]clicks.Count{d.Referrers, d.Browsers, d.OSes, d.Devices} {
			if len(t) > clicks.MaxTallyKeys {
				return 0, fmt.Errorf("%w: code %q: tally of %d keys", ErrInvalid, d.Code, len(t))
			}
			for _, c := range t {
				if len(c.Key) > clicks.MaxKeyLen {
					return 0, fmt.Errorf("%w: code %q: tally key of %d bytes", ErrInvalid, d.Code, len(c.Key))
				}
			}
		}
		if len(d.Visitors) > 0 {
			sk, err := decodeSketch(d.Visitors)
			if err != nil {
				return 0, fmt.Errorf("%w: code %q: %w", ErrInvalid, d.Code, err)
			}
			sketches[i] = sk
		}
	}
	markKey := MarkKey(batch.Router)
	switch v, err := tx.Get(markKey); {
	case err == nil:
		if len(v) != 8 {
			return 0, &StorageError{Op: "read flush mark", Err: fmt.Errorf("%w: mark of %d bytes", ErrMalformed, len(v))}
		}
		if batch.Seq <= binary.BigEndian.Uint64(v) {
			return Duplicate, nil
		}
	case !errors.Is(err, raftstore.ErrNotFound):
		return 0, &StorageError{Op: "read flush mark", Err: err}
	}
	a := applier{tx: tx, partitionOf: partitionOf}
	var scratch [4][]clicks.Count
	for _, k := range a.order(batch.Deltas) {
		if err := legacyApplyDelta(tx, partitionOf, &batch.Deltas[k.i], sketches[k.i], &scratch); err != nil {
			return 0, err
		}
	}
	if err := tx.Set(markKey, binary.BigEndian.AppendUint64(nil, batch.Seq)); err != nil {
		return 0, &StorageError{Op: "store flush mark", Err: err}
	}
	return Applied, nil
}

func legacyApplyDelta(tx raftstore.Txn, partitionOf func(string) uint32, d *clicks.Delta, sk *hyperloglog.Sketch, scratch *[4][]clicks.Count) error {
	p := partitionOf(d.Code)
	dayKey := appendDayKey(nil, p, d.Code, uint32(d.Day))
	rec := &dayRecord{}
	switch v, err := tx.Get(dayKey); {
	case err == nil:
		if rec, err = decodeDayRecord(v); err != nil {
			return &StorageError{Op: "decode day record", Err: err}
		}
	case !errors.Is(err, raftstore.ErrNotFound):
		return &StorageError{Op: "read day record", Err: err}
	}
	rec.clicks = addSat(rec.clicks, d.Clicks)
	rec.bots = addSat(rec.bots, d.Bots)
	if sk != nil {
		if rec.visitors == nil {
			rec.visitors = sk
		} else if err := rec.visitors.Merge(sk); err != nil {
			return &StorageError{Op: "merge visitor sketch", Err: err}
		}
	}
	for i, t := range [...][]clicks.Count{d.Referrers, d.Browsers, d.OSes, d.Devices} {
		if len(t) > 0 {
			scratch[i] = append(append(scratch[i][:0], rec.tallies[i]...), t...)
			rec.tallies[i] = clicks.TopCounts(scratch[i], clicks.MaxTallyKeys)
		}
	}
	v, err := appendDayRecord(nil, rec)
	if err != nil {
		return &StorageError{Op: "encode day record", Err: err}
	}
	if err := tx.Set(dayKey, v); err != nil {
		return &StorageError{Op: "store day record", Err: err}
	}
	totalKey := appendTotalKey(nil, p, d.Code)
	var tot totals
	switch v, err := tx.Get(totalKey); {
	case err == nil:
		if tot, err = decodeTotals(v); err != nil {
			return &StorageError{Op: "decode totals", Err: err}
		}
	case !errors.Is(err, raftstore.ErrNotFound):
		return &StorageError{Op: "read totals", Err: err}
	}
	tot.clicks = addSat(tot.clicks, d.Clicks)
	tot.bots = addSat(tot.bots, d.Bots)
	if err := tx.Set(totalKey, appendTotals(nil, tot)); err != nil {
		return &StorageError{Op: "store totals", Err: err}
	}
	return nil
}
