package clickstore

import "github.com/linkraft/linkraft/raftstore"

// recordMemoBudget bounds a replica's recordMemo: the bytes of its keys
// and values plus recordMemoOverhead an entry. A var so that tests can
// exercise eviction.
var recordMemoBudget = 16 << 20

// recordMemoOverhead approximates what a map entry costs beyond its key's
// and value's bytes (string and slice headers, the map's slot).
const recordMemoOverhead = 64

// recordMemoKey is the raftstore.Memo key of a replica's recordMemo.
type recordMemoKey struct{}

// recordMemo holds, for a replica, the values Apply last wrote to day
// record and totals keys, so that the next batch that clicks the same code
// and day merges into them without a Pebble read. Apply writes through it
// (every Set of such a key updates it), nothing else writes those keys,
// and the group's FSM empties the raftstore.Memo that holds it on a
// snapshot restore, so an entry always equals the stored value. Entries
// beyond recordMemoBudget are evicted at random (map order): a miss only
// costs the read.
type recordMemo struct {
	vals map[string]*memoEntry
	size int
}

// memoEntry is one memoized value.
type memoEntry struct{ v []byte }

// ForgetMemo drops the record memo of tx's replica. A command that writes
// or deletes day record or totals keys other than through Apply must call
// it in the same apply, or the next Apply would merge into the values the
// memo holds instead of the stored ones.
func ForgetMemo(tx raftstore.Txn) {
	if m := raftstore.MemoOf(tx); m != nil {
		m.Delete(recordMemoKey{})
	}
}

// recordMemoOf returns the replica's recordMemo, creating it, or nil when
// tx carries no raftstore.Memo.
func recordMemoOf(tx raftstore.Txn) *recordMemo {
	m := raftstore.MemoOf(tx)
	if m == nil {
		return nil
	}
	if v, ok := m.Get(recordMemoKey{}); ok {
		return v.(*recordMemo)
	}
	rm := &recordMemo{vals: make(map[string]*memoEntry)}
	m.Set(recordMemoKey{}, rm)
	return rm
}

// get returns the entry of key, or nil. The caller must not modify its
// value.
func (m *recordMemo) get(key []byte) *memoEntry { return m.vals[string(key)] }

// update sets e, an entry get returned with no put since, to a copy of
// value, reusing its array. Callers must be done with slices of its old
// value.
func (m *recordMemo) update(e *memoEntry, value []byte) {
	m.size -= cap(e.v)
	e.v = append(e.v[:0], value...)
	m.size += cap(e.v)
}

// put memoizes a copy of value as key's value (which get did not have),
// evicting other entries beyond recordMemoBudget.
func (m *recordMemo) put(key, value []byte) {
	e := &memoEntry{v: append([]byte(nil), value...)}
	m.vals[string(key)] = e
	m.size += len(key) + cap(e.v) + recordMemoOverhead
	if m.size <= recordMemoBudget {
		return
	}
	for k, x := range m.vals {
		if x == e {
			continue
		}
		delete(m.vals, k)
		if m.size -= len(k) + cap(x.v) + recordMemoOverhead; m.size <= recordMemoBudget {
			break
		}
	}
}
