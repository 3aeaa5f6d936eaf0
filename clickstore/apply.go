package clickstore

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"github.com/linkraft/linkraft/clicks"
	"github.com/linkraft/linkraft/internal/keyfilter"
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
	a := applier{tx: tx, memo: recordMemoOf(tx), filters: codeFiltersOf(tx), partitionOf: partitionOf}
	for _, k := range a.order(batch.Deltas) {
		if err := a.applyDelta(&batch.Deltas[k.i], &sketches[k.i], k); err != nil {
			return 0, err
		}
	}
	if err := tx.Set(markKey, binary.BigEndian.AppendUint64(nil, batch.Seq)); err != nil {
		return 0, &StorageError{Op: "store flush mark", Err: err}
	}
	return Applied, nil
}

// validate checks batch and parses its sketches (the zero sketchView for a
// delta without one).
func validate(b clicks.Batch) ([]sketchView, error) {
	if b.Router == "" || len(b.Router) > clicks.MaxRouterLen {
		return nil, fmt.Errorf("%w: router ID of %d bytes", ErrInvalid, len(b.Router))
	}
	if b.Seq == 0 {
		return nil, fmt.Errorf("%w: sequence 0", ErrInvalid)
	}
	sketches := make([]sketchView, len(b.Deltas))
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
			sk, ok := parseSketch(d.Visitors)
			if !ok {
				return nil, fmt.Errorf("%w: code %q: %w", ErrInvalid, d.Code, sketchError(d.Visitors))
			}
			sketches[i] = sk
		}
	}
	return sketches, nil
}

// applier applies one batch's deltas, reusing its buffers from one delta
// to the next (Pebble's batch copies what Set is given).
type applier struct {
	tx          raftstore.Txn
	memo        *recordMemo // the replica's, or nil
	filters     codeFilters // the replica's, or nil
	partitionOf func(string) uint32
	keys        []deltaKey
	key, val    []byte
	// The day record being merged: its visitor sketches and its tallies
	// (the stored ones, then with the delta's merged in).
	visitors sketchMerger
	tallies  [4][]clicks.Count
}

// deltaKey is a delta's partition, day key and index in the batch.
type deltaKey struct {
	key []byte
	p   uint32
	i   int
}

// order returns the deltas' keys in the order of their day keys, with
// deltas of the same key in batch order, so the reads and writes of a
// batch walk the store's keys in order (neighbouring codes share blocks in
// the block cache and the batch's skiplist). Deltas of different keys
// touch different records (and add to totals, which commute), and those
// of one key keep their order, so the result is the one batch order gives.
// It computes each delta's partition once (partitionOf may unpermute the
// code, see ring.PartitionOfCode).
func (a *applier) order(deltas []clicks.Delta) []deltaKey {
	// Sized once: the keys' bytes are one buffer, which growing by
	// appends would allocate about twice over.
	size := 0
	for i := range deltas {
		size += 10 + len(deltas[i].Code) // a day key's bytes
	}
	buf := make([]byte, 0, size)
	a.keys = slices.Grow(a.keys[:0], len(deltas))
	sorted := true
	for i := range deltas {
		d := &deltas[i]
		if d.Clicks == 0 && d.Bots == 0 {
			continue
		}
		start := len(buf)
		p := a.partitionOf(d.Code)
		buf = appendDayKey(buf, p, d.Code, uint32(d.Day))
		k := deltaKey{key: buf[start:len(buf):len(buf)], p: p, i: i}
		if sorted && len(a.keys) > 0 && bytes.Compare(a.keys[len(a.keys)-1].key, k.key) > 0 {
			sorted = false
		}
		a.keys = append(a.keys, k)
	}
	if sorted {
		// In key order already (the leader proposes batches ordered by
		// OrderDeltas), equal keys in batch order: nothing to sort.
		return a.keys
	}
	// Equal keys in batch order: (key, index) is a total order, so an
	// unstable sort gives what a stable one would, without its merges.
	slices.SortFunc(a.keys, func(x, y deltaKey) int {
		if c := bytes.Compare(x.key, y.key); c != 0 {
			return c
		}
		return cmp.Compare(x.i, y.i)
	})
	return a.keys
}

// OrderDeltas returns deltas in the order Apply merges them: by day key
// (partition, code, day), deltas of one code and day in their order in
// deltas. partitions[i] is the partition of deltas[i].Code
// (ring.PartitionOfCode). Deltas without clicks or bots keep their place
// relative to the others of their key; Apply skips them.
//
// Applying the result stores what applying deltas does (the batch order of
// deltas of different keys does not matter, see the package doc), and
// Apply recognizes a batch in this order and does not sort it again: the
// leader orders a batch once before proposing it, instead of every replica
// sorting it in its apply. The result is a new slice; deltas is unchanged.
func OrderDeltas(deltas []clicks.Delta, partitions []uint32) []clicks.Delta {
	if len(partitions) != len(deltas) {
		panic(fmt.Sprintf("clickstore: OrderDeltas: %d partitions for %d deltas", len(partitions), len(deltas)))
	}
	idx := make([]int32, len(deltas))
	for i := range idx {
		idx[i] = int32(i)
	}
	// The day key compares as (partition, code, day): partitions are
	// big-endian, and a code holds no 0x00, so the 0x00 after it makes a
	// code sort before the codes it is a prefix of, as string comparison
	// does. (key, index) is a total order, so the unstable sort is stable.
	slices.SortFunc(idx, func(x, y int32) int {
		if c := cmp.Compare(partitions[x], partitions[y]); c != 0 {
			return c
		}
		dx, dy := &deltas[x], &deltas[y]
		if c := cmp.Compare(dx.Code, dy.Code); c != 0 {
			return c
		}
		if c := cmp.Compare(dx.Day, dy.Day); c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	})
	out := make([]clicks.Delta, len(deltas))
	for j, i := range idx {
		out[j] = deltas[i]
	}
	return out
}

// applyDelta merges d (with sk, its parsed sketch, and k, its key from
// order) into its code's day record and totals, reading them from the
// memo when it holds them. It writes the bytes that decoding the stored
// record (decodeDayRecord), merging d into it and encoding it again gave
// before this package merged sketches and tallies in its own buffers
// (TestApplyMatchesLibraryMerge).
func (a *applier) applyDelta(d *clicks.Delta, sk *sketchView, k deltaKey) error {
	dayKey := k.key
	a.key = appendTotalKey(a.key[:0], k.p, d.Code)
	totalKey := a.key
	var memo *codeMemo
	if a.memo != nil {
		memo = a.memo.code(totalKey)
	}
	// fresh: the partition's clicked-code filter does not hold the code,
	// so it has no records (codefilter.go): nothing to read, and the
	// filter takes the code once its totals are written.
	var filter *keyfilter.Filter
	var h1, h2 uint64
	fresh := false
	if a.filters != nil && memo == nil {
		var err error
		if filter, err = a.filters.of(a.tx, k.p); err != nil {
			return &StorageError{Op: "scan totals", Err: err}
		}
		h1, h2 = codeHashes(totalKey[5:])
		fresh = !filter.MayHold(h1, h2)
	}

	var day totals
	a.visitors.reset()
	for i := range a.tallies {
		a.tallies[i] = a.tallies[i][:0]
	}
	v, ok := memo.dayRecord(uint32(d.Day))
	var err error
	switch {
	case fresh:
		err = raftstore.ErrNotFound
	case !ok:
		v, err = a.tx.Get(dayKey)
	}
	switch {
	case err == nil:
		if day, err = a.decodeDay(v); err != nil {
			return &StorageError{Op: "decode day record", Err: err}
		}
	case !errors.Is(err, raftstore.ErrNotFound):
		return &StorageError{Op: "read day record", Err: err}
	}
	day.clicks = addSat(day.clicks, d.Clicks)
	day.bots = addSat(day.bots, d.Bots)
	if len(d.Visitors) > 0 {
		a.visitors.add(*sk)
	}
	for i, t := range [...][]clicks.Count{d.Referrers, d.Browsers, d.OSes, d.Devices} {
		if len(t) > 0 {
			a.tallies[i] = mergeTally(a.tallies[i], t)
		}
	}
	v = append(a.val[:0], recordVersion)
	v = binary.AppendUvarint(v, day.clicks)
	v = binary.AppendUvarint(v, day.bots)
	v = a.visitors.appendSketch(v)
	for _, t := range a.tallies {
		v = clicks.AppendTally(v, t)
	}
	a.val = v
	if err := a.tx.Set(dayKey, v); err != nil {
		return &StorageError{Op: "store day record", Err: err}
	}
	if a.memo != nil {
		if memo == nil {
			memo = a.memo.add(totalKey)
		}
		a.memo.setDay(memo, uint32(d.Day), v)
	}

	var tot totals
	switch {
	case fresh:
		// A code clicked for the first time: its totals start at zero,
		// and the filter holds it from now on.
		filter.Add(h1, h2)
	case memo != nil && memo.hasTotals:
		tot = memo.totals
	default:
		switch v, err := a.tx.Get(totalKey); {
		case err == nil:
			if tot, err = decodeTotals(v); err != nil {
				return &StorageError{Op: "decode totals", Err: err}
			}
		case !errors.Is(err, raftstore.ErrNotFound):
			return &StorageError{Op: "read totals", Err: err}
		}
	}
	tot.clicks = addSat(tot.clicks, d.Clicks)
	tot.bots = addSat(tot.bots, d.Bots)
	a.val = appendTotals(a.val[:0], tot)
	if err := a.tx.Set(totalKey, a.val); err != nil {
		return &StorageError{Op: "store totals", Err: err}
	}
	if memo != nil {
		memo.totals, memo.hasTotals = tot, true
	}
	return nil
}

// decodeDay decodes a stored day record (the layout decodeDayRecord
// reads, with the same checks) into a's merge state: its sketch into
// a.visitors and its tallies into a.tallies. It returns the record's
// counts.
//
// The tally keys are strings over b's bytes (unsafe.String), not copies:
// b is the copy raftstore.Reader.Get returns or a record the memo holds,
// which only the memoizing of the merged record overwrites, and the keys
// are only used until that record is encoded, before that.
func (a *applier) decodeDay(b []byte) (totals, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return totals{}, fmt.Errorf("%w: day record version", ErrMalformed)
	}
	b = b[1:]
	var t totals
	var err error
	if t.clicks, b, err = uvarint(b); err != nil {
		return totals{}, err
	}
	if t.bots, b, err = uvarint(b); err != nil {
		return totals{}, err
	}
	n, b, err := uvarint(b)
	if err != nil || n > uint64(len(b)) {
		return totals{}, fmt.Errorf("%w: day record sketch length", ErrMalformed)
	}
	if n > 0 && !a.visitors.addStored(b[:n]) {
		return totals{}, sketchError(b[:n])
	}
	b = b[n:]
	str := unsafe.String(unsafe.SliceData(b), len(b))
	off := 0
	for i := range a.tallies {
		if a.tallies[i], off, err = appendTallyAt(a.tallies[i][:0], b, str, off); err != nil {
			return totals{}, err
		}
	}
	if off != len(b) {
		return totals{}, fmt.Errorf("%w: day record: %d trailing bytes", ErrMalformed, len(b)-off)
	}
	return t, nil
}

// dayRecord returns the memoized record of day, if e (maybe nil) holds
// it. It is only valid until the record is memoized again.
func (e *codeMemo) dayRecord(day uint32) ([]byte, bool) {
	if e == nil {
		return nil, false
	}
	return e.day(day)
}

// smallTally is the most counts mergeTally merges itself.
const smallTally = 16

// mergeTally returns clicks.TopCounts(append(stored, add...),
// clicks.MaxTallyKeys), reusing stored's array, for stored the stored
// tally and add the delta's. With at most smallTally counts in all (fewer
// than the cap: nothing is folded into OtherKey) it sums equal keys by a
// linear search and sorts by count with an insertion sort, cheaper than
// TopCounts' two general sorts on such short tallies; the order (count
// descending, then key) is total on distinct keys, so the result is the
// same (TestMergeTallyMatchesTopCounts).
//
// It adds the delta's counts to the stored ones where the keys match
// rather than appending them and summing after: a Count holds a string,
// so each count copied into the array is a pointer write (with the GC's
// write barrier while it marks), and a delta's keys are mostly ones the
// record already holds.
func mergeTally(stored, add []clicks.Count) []clicks.Count {
	if len(stored)+len(add) > smallTally {
		return clicks.TopCounts(append(stored, add...), clicks.MaxTallyKeys)
	}
	out := stored[:0] // out never passes the count being read
	for i, c := range stored {
		if j := countIndex(out, c.Key); j >= 0 {
			out[j].N += c.N
		} else if len(out) == i {
			out = out[:i+1] // in place already (a stored tally's keys are distinct)
		} else {
			out = append(out, c)
		}
	}
	for _, c := range add {
		if j := countIndex(out, c.Key); j >= 0 {
			out[j].N += c.N
		} else {
			out = append(out, c)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && countBefore(out[j], out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// countIndex returns the index of key in t, or -1.
func countIndex(t []clicks.Count, key string) int {
	for j := range t {
		if t[j].Key == key {
			return j
		}
	}
	return -1
}

// countBefore reports whether a sorts before b in a tally: larger count
// first, then smaller key.
func countBefore(a, b clicks.Count) bool {
	return a.N > b.N || a.N == b.N && a.Key < b.Key
}

// addSat adds without wrapping around.
func addSat(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return ^uint64(0)
}
