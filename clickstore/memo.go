package clickstore

import "github.com/linkraft/linkraft/raftstore"

// recordMemoBudget bounds a replica's recordMemo: the bytes of its keys
// and day records plus recordMemoOverhead an entry and a day. A var so
// that tests can exercise eviction.
var recordMemoBudget = 16 << 20

// recordMemoOverhead approximates what an entry or a day of one costs
// beyond its key's and record's bytes (headers, the map's slot).
const recordMemoOverhead = 64

// memoDays is the most days of one code an entry keeps: today's and
// yesterday's, around midnight UTC.
const memoDays = 2

// recordMemoKey is the raftstore.Memo key of a replica's recordMemo.
type recordMemoKey struct{}

// recordMemo holds, for a replica, what Apply last wrote for each code it
// merged clicks into: the code's totals and its latest day records, so
// that the next batch that clicks the same code and day merges into them
// without a Pebble read. Apply writes through it (every Set of such a key
// updates it), nothing else writes those keys, and the group's FSM
// empties the raftstore.Memo that holds it on a snapshot restore, so what
// it holds always equals the stored values. Entries beyond
// recordMemoBudget are evicted at random (map order): a miss only costs
// the read.
type recordMemo struct {
	codes map[string]*codeMemo // by the code's totals key
	size  int
}

// codeMemo is one code's memoized state. The zero value knows nothing.
type codeMemo struct {
	totals    totals
	hasTotals bool
	days      []dayMemo
	size      int // what it counts against recordMemoBudget
}

// dayMemo is one day record as stored.
type dayMemo struct {
	day uint32
	v   []byte
}

// ForgetMemo drops the record memo and the clicked-code filters of tx's
// replica. A command that writes or deletes day record or totals keys
// other than through Apply must call it in the same apply, or the next
// Apply would merge into the values the memo holds instead of the stored
// ones, or take a code the filter does not hold for one without records.
func ForgetMemo(tx raftstore.Txn) {
	if m := raftstore.MemoOf(tx); m != nil {
		m.Delete(recordMemoKey{})
		m.Delete(codeFiltersKey{})
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
	rm := &recordMemo{codes: make(map[string]*codeMemo)}
	m.Set(recordMemoKey{}, rm)
	return rm
}

// code returns the entry of the code whose totals key is totalKey, nil
// if there is none.
func (m *recordMemo) code(totalKey []byte) *codeMemo { return m.codes[string(totalKey)] }

// add returns a new, empty entry for the code whose totals key is
// totalKey (which code did not have), evicting other entries beyond
// recordMemoBudget.
func (m *recordMemo) add(totalKey []byte) *codeMemo {
	e := &codeMemo{size: len(totalKey) + recordMemoOverhead}
	m.codes[string(totalKey)] = e
	m.size += e.size
	m.evict(e)
	return e
}

// evict removes entries other than keep while the memo is over budget.
func (m *recordMemo) evict(keep *codeMemo) {
	if m.size <= recordMemoBudget {
		return
	}
	for k, x := range m.codes {
		if x == keep {
			continue
		}
		delete(m.codes, k)
		if m.size -= x.size; m.size <= recordMemoBudget {
			return
		}
	}
}

// day returns the stored record of day, if e holds it; the caller must not
// modify it.
func (e *codeMemo) day(day uint32) ([]byte, bool) {
	for _, d := range e.days {
		if d.day == day {
			return d.v, true
		}
	}
	return nil, false
}

// setDay memoizes a copy of v as e's record of day, reusing the array of
// the record it replaces (callers must be done with slices of it), or, for
// a day e does not hold, of its oldest day when it holds memoDays.
func (m *recordMemo) setDay(e *codeMemo, day uint32, v []byte) {
	i := 0
	for i < len(e.days) && e.days[i].day != day {
		i++
	}
	if i == len(e.days) {
		if len(e.days) < memoDays {
			e.days = append(e.days, dayMemo{})
			e.size += recordMemoOverhead
			m.size += recordMemoOverhead
		} else {
			i = 0
			for j := range e.days {
				if e.days[j].day < e.days[i].day {
					i = j
				}
			}
		}
	}
	d := &e.days[i]
	delta := -cap(d.v)
	d.day, d.v = day, append(d.v[:0], v...)
	delta += cap(d.v)
	e.size += delta
	m.size += delta
	m.evict(e)
}
