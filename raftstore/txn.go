package raftstore

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// dataReader implements Reader over any Pebble reader (a DB snapshot, an
// indexed batch), confined to one group's data range [0x04, 0x05).
type dataReader struct {
	r      pebble.Reader
	prefix []byte // 0x01 | group | 0x04
	upper  []byte // 0x01 | group | 0x05
}

func newDataReader(r pebble.Reader, group uint64) dataReader {
	return dataReader{r: r, prefix: kindPrefix(group, kindData), upper: kindPrefix(group, kindData+1)}
}

func (d dataReader) key(k []byte) []byte { return prefixed(d.prefix, k) }

// Get returns a copy of the value at key, or ErrNotFound.
func (d dataReader) Get(key []byte) ([]byte, error) { return d.get(d.key(key), key) }

// get returns a copy of the value at the prefixed key pk (key without the
// prefix, for errors), or ErrNotFound.
func (d dataReader) get(pk, key []byte) ([]byte, error) {
	v, closer, err := d.r.Get(pk)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("raftstore: get %q: %w", key, err)
	}
	out := make([]byte, len(v))
	copy(out, v)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("raftstore: get %q: %w", key, err)
	}
	return out, nil
}

// Scan calls fn for every key in [lower, upper), in order.
func (d dataReader) Scan(lower, upper []byte, fn func(key, value []byte) bool) error {
	opts := pebble.IterOptions{LowerBound: d.key(lower), UpperBound: d.upper}
	if upper != nil {
		opts.UpperBound = d.key(upper)
	}
	it, err := d.r.NewIter(&opts)
	if err != nil {
		return fmt.Errorf("raftstore: scan: %w", err)
	}
	n := len(d.prefix)
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("raftstore: scan: %w", err)
		}
		if !fn(it.Key()[n:], v) {
			break
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("raftstore: scan: %w", err)
	}
	return nil
}

// batchTxn implements Txn over the indexed batch of one ApplyBatch call.
type batchTxn struct {
	dataReader
	b    *pebble.Batch
	memo *Memo // the replica's, or nil (MemoOf)
	// kbuf is the prefixed key of the current Get, Set or Delete: Pebble
	// copies a key into the batch and keeps none after a Get, so one
	// buffer serves them all instead of an allocation per key (the
	// creates of a batch make several each).
	kbuf []byte
}

// scratchKey returns key with the group's prefix in t.kbuf, valid until
// the next call.
func (t *batchTxn) scratchKey(key []byte) []byte {
	t.kbuf = append(append(t.kbuf[:0], t.prefix...), key...)
	return t.kbuf
}

// Get returns a copy of the value at key, or ErrNotFound; it reads the
// batch's own writes.
func (t *batchTxn) Get(key []byte) ([]byte, error) { return t.get(t.scratchKey(key), key) }

func newBatchTxn(b *pebble.Batch, group uint64) *batchTxn {
	return &batchTxn{dataReader: newDataReader(b, group), b: b}
}

// Set writes key = value. The batch copies both: the caller may reuse
// them at once.
func (t *batchTxn) Set(key, value []byte) error {
	if err := t.b.Set(t.scratchKey(key), value, nil); err != nil {
		return fmt.Errorf("raftstore: set %q: %w", key, err)
	}
	return nil
}

// Delete deletes key.
func (t *batchTxn) Delete(key []byte) error {
	if err := t.b.Delete(t.scratchKey(key), nil); err != nil {
		return fmt.Errorf("raftstore: delete %q: %w", key, err)
	}
	return nil
}

// DeleteRange deletes every key in [lower, upper); upper nil means to the
// end of the group's data range.
func (t *batchTxn) DeleteRange(lower, upper []byte) error {
	end := t.upper
	if upper != nil {
		end = t.key(upper)
	}
	if err := t.b.DeleteRange(t.key(lower), end, nil); err != nil {
		return fmt.Errorf("raftstore: delete range [%q, %q): %w", lower, upper, err)
	}
	return nil
}

// NewTxn returns the Txn that a group's FSM hands to StateMachine.Apply:
// writes go to the indexed batch b, reads see b's writes, and every key is
// confined to group's data range. State machine tests use it to run their
// machine against the production key scoping on a real Pebble batch.
func NewTxn(b *pebble.Batch, group uint64) Txn { return newBatchTxn(b, group) }

// NewReader returns a Reader over r (a DB, a snapshot or a batch) confined
// to group's data range, as Group.Read gives one.
func NewReader(r pebble.Reader, group uint64) Reader { return newDataReader(r, group) }
