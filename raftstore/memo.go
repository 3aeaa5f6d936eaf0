package raftstore

import "github.com/cockroachdb/pebble/v2"

// Memo is what a StateMachine keeps in memory between Apply calls of one
// group's replica: values it derives from the group's state, so that it
// need not read them from Pebble for every command (linkstore keeps its
// partitions' allocator positions here, and summaries of its request table
// and reuse index that answer most lookups without a read).
//
// A Memo is a cache, never state. It is empty when the replica starts and
// the group's FSM empties it whenever the state changes other than through
// Apply (a snapshot restore), so it may only hold what Apply could derive
// from the store, and it must agree with the store after every Apply: a
// memoized value is the stored one, and a summary (a set of hashes, a
// Bloom filter) never contradicts the store where Apply trusts it (it may
// send Apply to the store for a key that is absent, never skip the store
// for one that is there). A state machine that writes a key it memoizes
// updates the memo in the same Apply. Then replicas that memoize and
// replicas that do not (a restarted one) apply every command alike.
//
// Only raft's FSM goroutine calls Apply, Snapshot and Restore, so a Memo
// has no lock; it must not be used outside Apply.
type Memo struct {
	m map[any]any
}

// NewMemo returns an empty Memo, for state machine tests (NewMemoTxn).
func NewMemo() *Memo { return &Memo{m: make(map[any]any)} }

// Get returns the value memoized under key.
func (m *Memo) Get(key any) (any, bool) {
	v, ok := m.m[key]
	return v, ok
}

// Set memoizes value under key (a comparable value; use a type of the
// state machine's own to keep keys apart).
func (m *Memo) Set(key, value any) { m.m[key] = value }

// Delete forgets key.
func (m *Memo) Delete(key any) { delete(m.m, key) }

// Clear forgets everything.
func (m *Memo) Clear() { clear(m.m) }

// Len returns the number of memoized keys.
func (m *Memo) Len() int { return len(m.m) }

// Memoizer is implemented by a Txn that carries its replica's Memo: the
// one a group's FSM hands to Apply, and wrappers that pass it on.
type Memoizer interface {
	// Memo returns the replica's Memo, or nil.
	Memo() *Memo
}

// MemoOf returns the Memo of the replica that tx applies to, or nil when tx
// has none (a Txn from NewTxn, or a wrapper that is not a Memoizer).
func MemoOf(tx Txn) *Memo {
	if t, ok := tx.(Memoizer); ok {
		return t.Memo()
	}
	return nil
}

// Memo returns the replica's memo (nil for NewTxn).
func (t *batchTxn) Memo() *Memo { return t.memo }

// NewMemoTxn is NewTxn with a Memo, as a group's FSM gives Apply: state
// machine tests use it to apply with the memo across batches.
func NewMemoTxn(b *pebble.Batch, group uint64, m *Memo) Txn {
	t := newBatchTxn(b, group)
	t.memo = m
	return t
}
