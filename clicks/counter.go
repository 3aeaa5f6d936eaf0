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
	stripes [NumStripes]stripe
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
	days  []*dayCounts
	idle  int // drains in a row without clicks
}

type dayCounts struct {
	day          Day
	clicks, bots uint64
	visitors     *hyperloglog.Sketch
	tallies      [4]tally // referrers, browsers, OSes, devices
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
// is a lookup, not an insert.
type tally struct {
	idx    map[string]int
	keys   []string
	counts []uint64
}

func (t *tally) addBytes(k []byte) {
	if i, ok := t.idx[string(k)]; ok {
		t.counts[i]++
		return
	}
	t.insert(string(k))
}

func (t *tally) addString(k string) {
	if i, ok := t.idx[k]; ok {
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
	if i, ok := t.idx[k]; ok {
		t.counts[i] += n
		return
	}
	if t.idx == nil {
		t.idx = make(map[string]int, 4)
	}
	if len(t.keys) >= maxCounterKeys {
		if i, ok := t.idx[OtherKey]; ok {
			t.counts[i] += n
			return
		}
		k = OtherKey
	}
	t.idx[k] = len(t.keys)
	t.keys = append(t.keys, k)
	t.counts = append(t.counts, n)
}

func (t *tally) insert(k string) {
	key := cloneString(k)
	if t.idx == nil {
		t.idx = make(map[string]int, 4)
	}
	if len(t.keys) >= maxCounterKeys {
		t.addStringKnown(OtherKey)
		return
	}
	t.idx[key] = len(t.keys)
	t.keys = append(t.keys, key)
	t.counts = append(t.counts, 1)
}

// addStringKnown counts OtherKey, inserting it past the key limit.
func (t *tally) addStringKnown(k string) {
	if i, ok := t.idx[k]; ok {
		t.counts[i]++
		return
	}
	t.idx[k] = len(t.keys)
	t.keys = append(t.keys, k)
	t.counts = append(t.counts, 1)
}

// take returns the nonzero counts, capped at MaxTallyKeys (TopCounts), and
// zeroes them. Keys stay known, unless there are too many.
func (t *tally) take() []Count {
	var out []Count
	for i, n := range t.counts {
		if n > 0 {
			out = append(out, Count{Key: t.keys[i], N: n})
			t.counts[i] = 0
		}
	}
	if len(t.keys) >= maxCounterKeys/2 {
		clear(t.idx)
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
		if d.visitors == nil {
			d.visitors = newSketch()
		}
		d.visitors.InsertHash(info.Visitor)
		if len(info.Referrer) == 0 {
			d.tallies[0].addString(DirectKey)
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
	for _, d := range e.days {
		if d.day == day {
			return d
		}
	}
	for _, d := range e.days {
		if d.empty() {
			d.day = day
			return d
		}
	}
	d := &dayCounts{day: day}
	e.days = append(e.days, d)
	return d
}

// Drain takes every count recorded so far, grouped by shard, each shard's
// deltas sorted by code and day, and resets the counter. Drains run one at
// a time.
func (c *Counter) Drain() map[uint64][]Delta {
	c.drainMu.Lock()
	defer c.drainMu.Unlock()
	out := make(map[uint64][]Delta)
	for i := range c.stripes {
		s := &c.stripes[i]
		s.mu.Lock()
		s.cur, s.spare = s.spare, s.cur
		s.mu.Unlock()
		// s.spare is no longer touched by Record until the next swap,
		// which only the next Drain does.
		for code, e := range s.spare {
			active := false
			for _, d := range e.days {
				if d.empty() {
					continue
				}
				active = true
				out[e.shard] = append(out[e.shard], d.take(code))
			}
			if active {
				e.idle = 0
			} else if e.idle++; e.idle >= maxIdleFlushes {
				delete(s.spare, code)
				continue
			}
			// Keep one day slot for reuse.
			if len(e.days) > 1 {
				e.days = e.days[:1]
			}
		}
	}
	for _, ds := range out {
		slices.SortFunc(ds, func(a, b Delta) int {
			if c := cmp.Compare(a.Code, b.Code); c != 0 {
				return c
			}
			return cmp.Compare(a.Day, b.Day)
		})
	}
	return out
}

// take returns the delta of d and resets it.
func (d *dayCounts) take(code string) Delta {
	x := Delta{Code: code, Day: d.day, Clicks: d.clicks, Bots: d.bots}
	if d.clicks > 0 && d.visitors != nil {
		d.visitors.Estimate() // compacts the sparse form before encoding
		if b, err := d.visitors.AppendBinary(nil); err == nil {
			x.Visitors = b
		}
		d.foldAgents()
		x.Referrers = d.tallies[0].take()
		x.Browsers = d.tallies[1].take()
		x.OSes = d.tallies[2].take()
		x.Devices = d.tallies[3].take()
	}
	if d.visitors != nil {
		if len(x.Visitors) > 2*(1<<SketchPrecision)/3 {
			// It went dense: start sparse again, so a quiet interval
			// sends a small sketch.
			d.visitors = newSketch()
		} else {
			d.visitors.Reset()
		}
	}
	d.clicks, d.bots = 0, 0
	return x
}
