package clickstore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/axiomhq/hyperloglog"
	"github.com/linkraft/linkraft/clicks"
	"github.com/linkraft/linkraft/raftstore"
)

// Outcome says what Apply did with a batch.
type Outcome int

const (
	// Applied: the batch was merged and the router's mark advanced.
	Applied Outcome = iota + 1
	// Duplicate: the batch's sequence is at or below the router's mark;
	// it was applied before and nothing changed.
	Duplicate
)

func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case Duplicate:
		return "duplicate"
	default:
		return fmt.Sprintf("Outcome(%d)", int(o))
	}
}

// ErrInvalid is wrapped by Apply's errors about a batch that cannot be
// applied; nothing was written.
var ErrInvalid = errors.New("clickstore: invalid batch")

// StorageError wraps a read or write error of the Txn. Inside a Raft apply
// it must stop the replica (linkstore panics with it): an apply cannot be
// skipped or half done without the replicas diverging.
type StorageError struct {
	Op  string
	Err error
}

func (e *StorageError) Error() string { return "clickstore: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the store's error.
func (e *StorageError) Unwrap() error { return e.Err }

// ValidCode reports whether code can name a link: 1..clicks.MaxCodeLen of
// [A-Za-z0-9_-].
func ValidCode(code string) bool {
	if len(code) == 0 || len(code) > clicks.MaxCodeLen {
		return false
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Apply merges batch into the shard's keys through tx, deterministically,
// at most once per (router, seq): see the package doc. partitionOf is the
// cluster's ring.PartitionOfCode. An invalid batch gives an error wrapping
// ErrInvalid and writes nothing; a Txn failure gives a *StorageError.
func Apply(tx raftstore.Txn, partitionOf func(code string) uint32, batch clicks.Batch) (Outcome, error) {
	sketches, err := validate(batch)
	if err != nil {
		return 0, err
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
	for i := range batch.Deltas {
		if err := applyDelta(tx, partitionOf, &batch.Deltas[i], sketches[i]); err != nil {
			return 0, err
		}
	}
	if err := tx.Set(markKey, binary.BigEndian.AppendUint64(nil, batch.Seq)); err != nil {
		return 0, &StorageError{Op: "store flush mark", Err: err}
	}
	return Applied, nil
}

// validate checks batch and decodes its sketches.
func validate(b clicks.Batch) ([]*hyperloglog.Sketch, error) {
	if b.Router == "" || len(b.Router) > clicks.MaxRouterLen {
		return nil, fmt.Errorf("%w: router ID of %d bytes", ErrInvalid, len(b.Router))
	}
	if b.Seq == 0 {
		return nil, fmt.Errorf("%w: sequence 0", ErrInvalid)
	}
	sketches := make([]*hyperloglog.Sketch, len(b.Deltas))
	for i := range b.Deltas {
		d := &b.Deltas[i]
		if !ValidCode(d.Code) {
			return nil, fmt.Errorf("%w: code %q", ErrInvalid, d.Code)
		}
		for _, t := range [...][]clicks.Count{d.Referrers, d.Browsers, d.OSes, d.Devices} {
			if len(t) > clicks.MaxTallyKeys {
				return nil, fmt.Errorf("%w: code %q: tally of %d keys", ErrInvalid, d.Code, len(t))
			}
			for _, c := range t {
				if len(c.Key) > clicks.MaxKeyLen {
					return nil, fmt.Errorf("%w: code %q: tally key of %d bytes", ErrInvalid, d.Code, len(c.Key))
				}
			}
		}
		if len(d.Visitors) > 0 {
			sk, err := decodeSketch(d.Visitors)
			if err != nil {
				return nil, fmt.Errorf("%w: code %q: %w", ErrInvalid, d.Code, err)
			}
			sketches[i] = sk
		}
	}
	return sketches, nil
}

func applyDelta(tx raftstore.Txn, partitionOf func(string) uint32, d *clicks.Delta, sk *hyperloglog.Sketch) error {
	if d.Clicks == 0 && d.Bots == 0 {
		return nil
	}
	p := partitionOf(d.Code)
	dayKey := DayKey(p, d.Code, uint32(d.Day))
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
			// Precisions were checked by validate and decodeDayRecord.
			return &StorageError{Op: "merge visitor sketch", Err: err}
		}
	}
	for i, t := range [...][]clicks.Count{d.Referrers, d.Browsers, d.OSes, d.Devices} {
		if len(t) > 0 {
			rec.tallies[i] = clicks.TopCounts(append(append([]clicks.Count(nil), rec.tallies[i]...), t...), clicks.MaxTallyKeys)
		}
	}
	v, err := appendDayRecord(nil, rec)
	if err != nil {
		return &StorageError{Op: "encode day record", Err: err}
	}
	if err := tx.Set(dayKey, v); err != nil {
		return &StorageError{Op: "store day record", Err: err}
	}

	totalKey := TotalKey(p, d.Code)
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

// addSat adds without wrapping around.
func addSat(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return ^uint64(0)
}
