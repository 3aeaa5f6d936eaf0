package clicks

import (
	"cmp"
	"slices"
	"sync"

	"github.com/axiomhq/hyperloglog"
	"github.com/cespare/xxhash/v2"
)

// NumStripes is the number of independently locked stripes of a Counter.
const NumStripes = 64

// SketchPrecision is the precision of the visitor sketches: 2^12 registers,
// a standard error of about 1.6 %, at most 4 KiB dense and far less sparse.
const SketchPrecision = 12

// Limits of the counter's memory per (code, day).
const (
	// maxCounterKeys caps the distinct keys a tally collects between two
	// flushes; later new keys count under OtherKey.
	maxCounterKeys = 256
	// maxIdleFlushes: a code without clicks in this many drains of one of
	// a stripe's two maps (twice as many flushes, 10 s at the default
	// interval) is forgotten there, so memory follows the codes clicked
	// recently while a code clicked all the time stays warm.
	maxIdleFlushes = 5
)

// ClickInfo is what the redirect path knows of one click.
type ClickInfo struct {
	// Day is the UTC day of the click.
	Day Day
	// Referrer is the referrer host (AppendReferrerHost); empty for a
	// direct click. Record does not retain it.
	Referrer []byte
	// Agent is the class of the user agent (Classifier.Classify).
	Agent Agent
	// Visitor is VisitorHasher.Sum of the client IP and user agent.
	Visitor uint64
}

// Counter counts clicks per (code, day) until they are drained. It is safe
// for concurrent use: Record may run on any number of goroutines while one
// Drain runs.
type Counter struct {
	shardOf func(code []byte) uint64
	drainMu sync.Mutex
	// lastDeltas is the number of deltas per shard of the last Drain, the
	// capacity of the next one's slices; guarded by drainMu.
	lastDeltas map[uint64]int
	stripes    [NumStripes]stripe
}

type stripe struct {
	mu sync.Mutex
	// cur takes Record's counts; spare is being drained, or waits to be
	// swapped in again with its entries reset (so a warm code does not
	// allocate).
	cur, spare map[string]*entry
	_          [40]byte // keep stripes on separate cache lines
}

type entry struct {
	code  string
	shard uint64
	// day is the first day slot, kept inline: nearly every code is
	// clicked on one day per flush interval, and Record then reaches its
	// counts without another pointer to follow.
	day dayCounts
	// more holds other days' counts (the clicks of an interval that
	// crosses midnight UTC, or a router whose clock jumps).
	more []*dayCounts
	idle int // drains in a row without clicks
}

type dayCounts struct {
	day          Day
	clicks, bots uint64
	// direct counts the human clicks without a referrer host (most of
	// them): a counter is cheaper than a tally lookup of DirectKey. It is
	// folded into tallies[0] when drained.
	direct uint64
	// vis holds the first nvis distinct visitor hashes of the interval
	// in place: most codes see a handful of visitors per interval, and
	// comparing a few integers is far cheaper than a sparse HyperLogLog
	// insert. The next new visitor moves them all into visitors
	// (spilled); a drain turns the ones in place into a sketch.
	vis     [smallVisitors]uint64
	nvis    uint8
	spilled bool
	// visitors is the interval's sketch once spilled; it is kept, reset,
	// for the next spill.
	visitors *hyperloglog.Sketch
	tallies  [4]tally // referrers, browsers, OSes, devices
	// agents counts (browser, OS, device) classes: a short list compared
	// in place is cheaper than three map lookups per click. It is folded
	// into tallies 1-3 when drained.
	agents []agentCount
}

type agentCount struct {
	browser, os, device string
	n                   uint64
}

// maxAgentClasses bounds a dayCounts' agent list; further classes go to
// the tallies directly.
const maxAgentClasses = 32

func (d *dayCounts) addAgent(a *Agent) {
	for i := range d.agents {
		x := &d.agents[i]
		if x.browser == a.Browser && x.os == a.OS && x.device == a.Device {
			x.n++
			return
		}
	}
	if len(d.agents) < maxAgentClasses {
		// Copies, so that Record's argument does not escape.
		d.agents = append(d.agents, agentCount{browser: cloneString(a.Browser), os: cloneString(a.OS), device: cloneString(a.Device), n: 1})
		return
	}
	d.tallies[1].addString(a.Browser)
	d.tallies[2].addString(a.OS)
	d.tallies[3].addString(a.Device)
}

func cloneString(s string) string { return string(append(make([]byte, 0, len(s)), s...)) }

// foldAgents moves the agent counts into the tallies and zeroes them.
func (d *dayCounts) foldAgents() {
	for i := range d.agents {
		x := &d.agents[i]
		if x.n == 0 {
			continue
		}
		d.tallies[1].addN(x.browser, x.n)
		d.tallies[2].addN(x.os, x.n)
		d.tallies[3].addN(x.device, x.n)
		x.n = 0
	}
	if len(d.agents) == maxAgentClasses {
		d.agents = d.agents[:0] // make room for the classes of now
	}
}

func (d *dayCounts) empty() bool { return d.clicks == 0 && d.bots == 0 }

// tally counts keys; counts are kept by index so that counting a known key
// is a lookup, not an insert. Up to smallTally keys the lookup is a linear
// scan of keys (most tallies of one code and day hold one to three keys,
// and comparing those is cheaper than hashing); beyond, idx maps every key
// to its index.
type tally struct {
	idx    map[string]int // nil while there are at most smallTally keys
	keys   []string
	counts []uint64
}

// smallTally is the most keys a tally looks up by scanning.
const smallTally = 8

// index returns the index of key k, or -1.
func (t *tally) index(k string) int {
	if t.idx != nil {
		if i, ok := t.idx[k]; ok {
			return i
		}
		return -1
	}
	for i, x := range t.keys {
		if x == k {
			return i
		}
	}
	return -1
}

// indexBytes is index of a key given as bytes; it does not allocate.
func (t *tally) indexBytes(k []byte) int {
	if t.idx != nil {
		if i, ok := t.idx[string(k)]; ok {
			return i
		}
		return -1
	}
	for i, x := range t.keys {
		if x == string(k) {
			return i
		}
	}
	return -1
}

// put appends key k with count n; the caller checked that k is new and
// that there is room.
func (t *tally) put(k string, n uint64) {
	if t.idx == nil && len(t.keys) == smallTally {
		t.idx = make(map[string]int, 2*smallTally)
		for i, x := range t.keys {
			t.idx[x] = i
		}
	}
	if t.idx != nil {
		t.idx[k] = len(t.keys)
	}
	t.keys = append(t.keys, k)
	t.counts = append(t.counts, n)
}

func (t *tally) addBytes(k []byte) {
	if i := t.indexBytes(k); i >= 0 {
		t.counts[i]++
		return
	}
	t.insert(string(k))
}

func (t *tally) addString(k string) {
	if i := t.index(k); i >= 0 {
		t.counts[i]++
		return
	}
	t.insert(k)
}

// insert adds key k with count 1. It stores a copy of k, so that Record's
// arguments never escape (a referrer host may live in the caller's stack
// buffer).
// addN counts n of key k, which the tally may keep (off the hot path).
func (t *tally) addN(k string, n uint64) {
	if i := t.index(k); i >= 0 {
		t.counts[i] += n
		return
	}
	if len(t.keys) >= maxCounterKeys {
		if i := t.index(OtherKey); i >= 0 {
			t.counts[i] += n
			return
		}
		k = OtherKey
	}
	t.put(k, n)
}

func (t *tally) insert(k string) {
	if len(t.keys) >= maxCounterKeys {
		t.addStringKnown(OtherKey)
		return
	}
	t.put(cloneString(k), 1)
}

// addStringKnown counts OtherKey, inserting it past the key limit.
func (t *tally) addStringKnown(k string) {
	if i := t.index(k); i >= 0 {
		t.counts[i]++
		return
	}
	t.put(k, 1)
}

// take returns the nonzero counts, capped at MaxTallyKeys (TopCounts), and
// zeroes them. The result is carved out of a. Keys stay known, unless
// there are too many.
func (t *tally) take(a *drainArena) []Count {
	nonzero := 0
	for _, n := range t.counts {
		if n > 0 {
			nonzero++
		}
	}
	if nonzero == 0 {
		return nil
	}
	out := a.counts(nonzero)
	for i, n := range t.counts {
		if n > 0 {
			out = append(out, Count{Key: t.keys[i], N: n})
			t.counts[i] = 0
		}
	}
	if len(t.keys) >= maxCounterKeys/2 {
		t.idx = nil
		clear(t.keys) // let the old keys go
		t.keys, t.counts = t.keys[:0], t.counts[:0]
	}
	return TopCounts(out, MaxTallyKeys)
}

// TopCounts sorts counts by count (largest first), then key, merging equal
// keys, and keeps at most limit: when there are more, the largest limit-1
// stay and the rest are summed under OtherKey. It reorders and may reuse
// the slice.
func TopCounts(counts []Count, limit int) []Count {
	slices.SortFunc(counts, func(a, b Count) int { return cmp.Compare(a.Key, b.Key) })
	counts = mergeSorted(counts)
	if len(counts) > limit {
		// OtherKey may already be there: fold it in with the rest.
		var other uint64
		kept := counts[:0]
		for _, c := range counts {
			if c.Key == OtherKey {
				other += c.N
			} else {
				kept = append(kept, c)
			}
		}
		sortByCount(kept)
		if len(kept) > limit-1 {
			for _, c := range kept[limit-1:] {
				other += c.N
			}
			kept = kept[:limit-1]
		}
		counts = append(kept, Count{Key: OtherKey, N: other})
	}
	sortByCount(counts)
	return counts
}

func mergeSorted(counts []Count) []Count {
	out := counts[:0]
	for _, c := range counts {
		if n := len(out); n > 0 && out[n-1].Key == c.Key {
			out[n-1].N += c.N
			continue
		}
		out = append(out, c)
	}
	return out
}

func sortByCount(counts []Count) {
	slices.SortFunc(counts, func(a, b Count) int {
		if c := cmp.Compare(b.N, a.N); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
}

// NewCounter returns a counter that groups codes by shardOf (the cluster's
// ring.ShardOfCodeBytes; it must not retain its argument).
func NewCounter(shardOf func(code []byte) uint64) *Counter {
	c := &Counter{shardOf: shardOf}
	for i := range c.stripes {
		c.stripes[i].cur = make(map[string]*entry)
		c.stripes[i].spare = make(map[string]*entry)
	}
	return c
}

// Record counts one click of code. It does not retain code or
// info.Referrer. It does not allocate for a code, day, referrer, agent
// class and visitor it has counted before in both of the last two flush
// intervals.
func (c *Counter) Record(code []byte, info ClickInfo) {
	s := &c.stripes[xxhash.Sum64(code)%NumStripes]
	s.mu.Lock()
	e, ok := s.cur[string(code)]
	if !ok {
		e = &entry{code: string(code), shard: c.shardOf(code)}
		s.cur[e.code] = e
	}
	d := e.dayCounts(info.Day)
	if info.Agent.Bot {
		d.bots++
	} else {
		d.clicks++
		d.addVisitor(info.Visitor)
		if len(info.Referrer) == 0 {
			d.direct++
		} else {
			d.tallies[0].addBytes(info.Referrer)
		}
		d.addAgent(&info.Agent)
	}
	s.mu.Unlock()
}

// newSketch returns an empty sparse visitor sketch.
func newSketch() *hyperloglog.Sketch {
	sk, err := hyperloglog.NewSketch(SketchPrecision, true)
	if err != nil {
		panic("clicks: hyperloglog precision: " + err.Error()) // a constant, checked by tests
	}
	return sk
}

// dayCounts returns the counts of day, reusing an empty slot when there is
// one.
func (e *entry) dayCounts(day Day) *dayCounts {
	if e.day.day == day {
		return &e.day
	}
	for _, d := range e.more {
		if d.day == day {
			return d
		}
	}
	if e.day.empty() {
		e.day.day = day
		return &e.day
	}
	for _, d := range e.more {
		if d.empty() {
			d.day = day
			return d
		}
	}
	d := &dayCounts{day: day}
	e.more = append(e.more, d)
	return d
}

// Drain takes every count recorded so far, grouped by shard, each shard's
// deltas sorted by code and day, and resets the counter. Drains run one at
// a time.
func (c *Counter) Drain() map[uint64][]Delta {
	c.drainMu.Lock()
	defer c.drainMu.Unlock()
	out := make(map[uint64][]Delta, len(c.lastDeltas))
	for shard, n := range c.lastDeltas {
		// About as many deltas as last time: no regrowing and copying
		// of the shard's slice while it fills.
		out[shard] = make([]Delta, 0, n+n/8)
	}
	var a drainArena
	for i := range c.stripes {
		s := &c.stripes[i]
		s.mu.Lock()
		s.cur, s.spare = s.spare, s.cur
		s.mu.Unlock()
		// s.spare is no longer touched by Record until the next swap,
		// which only the next Drain does.
		for code, e := range s.spare {
			active := !e.day.empty()
			if active {
				out[e.shard] = append(out[e.shard], e.day.take(code, &a))
			}
			for _, d := range e.more {
				if d.empty() {
					continue
				}
				active = true
				out[e.shard] = append(out[e.shard], d.take(code, &a))
			}
			if active {
				e.idle = 0
			} else if e.idle++; e.idle >= maxIdleFlushes {
				delete(s.spare, code)
				continue
			}
			// The inline slot stays for reuse; the other days go.
			clear(e.more)
			e.more = e.more[:0]
		}
	}
	if c.lastDeltas == nil {
		c.lastDeltas = make(map[uint64]int)
	}
	clear(c.lastDeltas)
	for shard, ds := range out {
		if len(ds) == 0 {
			delete(out, shard)
			continue
		}
		c.lastDeltas[shard] = len(ds)
		slices.SortFunc(ds, func(a, b Delta) int {
			if c := cmp.Compare(a.Code, b.Code); c != 0 {
				return c
			}
			return cmp.Compare(a.Day, b.Day)
		})
	}
	return out
}

// smallVisitors is the number of distinct visitors a dayCounts keeps in
// place before it moves to its sketch.
const smallVisitors = 4

// addVisitor counts visitor hash h.
func (d *dayCounts) addVisitor(h uint64) {
	if d.spilled {
		d.visitors.InsertHash(h)
		return
	}
	n := int(d.nvis)
	for _, v := range d.vis[:n] {
		if v == h {
			return
		}
	}
	if n < smallVisitors {
		d.vis[n] = h
		d.nvis++
		return
	}
	if d.visitors == nil {
		d.visitors = newSketch()
	}
	for _, v := range d.vis[:n] {
		d.visitors.InsertHash(v)
	}
	d.visitors.InsertHash(h)
	d.spilled = true
}

// take returns the delta of d and resets it; its slices are carved out of
// a.
func (d *dayCounts) take(code string, a *drainArena) Delta {
	x := Delta{Code: code, Day: d.day, Clicks: d.clicks, Bots: d.bots}
	if d.clicks > 0 {
		sk := d.visitors
		if !d.spilled {
			// The same sketch as if they had been inserted one by one:
			// its sparse form depends only on the set of hashes.
			sk = a.scratchSketch()
			for _, v := range d.vis[:d.nvis] {
				sk.InsertHash(v)
			}
		}
		sk.Estimate() // compacts the sparse form before encoding
		x.Visitors = a.appendSketch(sk)
		d.foldAgents()
		if d.direct > 0 {
			// DirectKey keeps a key of its own even past
			// maxCounterKeys: it is a single key, and usually the
			// largest.
			if t := &d.tallies[0]; t.index(DirectKey) >= 0 {
				t.addN(DirectKey, d.direct)
			} else {
				t.put(DirectKey, d.direct)
			}
		}
		x.Referrers = d.tallies[0].take(a)
		x.Browsers = d.tallies[1].take(a)
		x.OSes = d.tallies[2].take(a)
		x.Devices = d.tallies[3].take(a)
	}
	if d.spilled {
		if len(x.Visitors) > 2*(1<<SketchPrecision)/3 {
			// It went dense: start sparse again, so a quiet interval
			// sends a small sketch.
			d.visitors = newSketch()
		} else {
			d.visitors.Reset()
		}
	}
	d.clicks, d.bots, d.direct = 0, 0, 0
	d.nvis, d.spilled = 0, false
	return x
}

// drainArena hands out the slices of one Drain's deltas from a few large
// allocations instead of five small ones per delta: the deltas of a drain
// live and die together (a batch is kept until its shard acknowledged it),
// so sharing backing arrays keeps nothing alive for longer.
type drainArena struct {
	countBuf []Count
	byteBuf  []byte
	scratch  *hyperloglog.Sketch // encodes the visitors kept in place
}

// scratchSketch returns the arena's empty sketch.
func (a *drainArena) scratchSketch() *hyperloglog.Sketch {
	if a.scratch == nil {
		a.scratch = newSketch()
	} else {
		a.scratch.Reset()
	}
	return a.scratch
}

// Chunk sizes of a drainArena.
const (
	arenaCounts = 1024
	arenaBytes  = 32 << 10
)

// counts returns an empty slice with capacity n whose appends up to n stay
// in place.
func (a *drainArena) counts(n int) []Count {
	if n > arenaCounts/4 {
		return make([]Count, 0, n)
	}
	if cap(a.countBuf)-len(a.countBuf) < n {
		a.countBuf = make([]Count, 0, arenaCounts)
	}
	start := len(a.countBuf)
	a.countBuf = a.countBuf[:start+n]
	return a.countBuf[start : start : start+n]
}

// appendSketch returns the binary form of sk in arena memory, nil when it
// cannot be encoded.
func (a *drainArena) appendSketch(sk *hyperloglog.Sketch) []byte {
	if cap(a.byteBuf)-len(a.byteBuf) < 1<<SketchPrecision+64 {
		// Room for a dense sketch: AppendBinary then never grows the
		// buffer away from the earlier sketches' memory.
		a.byteBuf = make([]byte, 0, arenaBytes)
	}
	start := len(a.byteBuf)
	b, err := sk.AppendBinary(a.byteBuf)
	if err != nil {
		return nil
	}
	a.byteBuf = b
	return b[start:len(b):len(b)]
}
