package router

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// cacheShards is the number of independently locked parts of a cache; a
// power of two.
const cacheShards = 64

// targetCache is a bounded map code -> target URL with CLOCK eviction.
// Links never change their target, so an entry never goes stale and there
// is nothing to invalidate.
//
// It is split into cacheShards parts, each behind an RWMutex. A hit takes
// only the read lock and sets the entry's reference bit with an atomic
// store (skipped when already set, so a hot entry does not bounce its cache
// line between cores); Get with a []byte key allocates nothing, because
// the compiler does not copy the key for a map lookup m[string(b)]. An
// insert into a full part advances the part's clock hand past recently
// referenced entries (clearing their bit) and replaces the first
// unreferenced one: a second-chance approximation of LRU in O(1) amortized
// time and without per-entry pointers.
type targetCache struct {
	seed  maphash.Seed
	mask  uint64
	parts []cachePart
}

type cachePart struct {
	mu      sync.RWMutex
	index   map[string]int32
	entries []cacheEntry
	limit   int
	hand    int
	_       [32]byte // keep neighbouring parts' locks off one cache line
}

type cacheEntry struct {
	code   string
	target string
	ref    atomic.Bool
}

// newTargetCache returns a cache holding up to size entries, or nil when
// size <= 0 (caching disabled; a nil *targetCache misses every Get and
// ignores every Put).
func newTargetCache(size int) *targetCache {
	if size <= 0 {
		return nil
	}
	n := cacheShards
	for n > 1 && size/n < 16 {
		n /= 2 // small caches: fewer, fuller parts, so eviction stays fair
	}
	c := &targetCache{seed: maphash.MakeSeed(), mask: uint64(n - 1), parts: make([]cachePart, n)}
	per := (size + n - 1) / n
	for i := range c.parts {
		c.parts[i].limit = per
		c.parts[i].index = make(map[string]int32, min(per, 1024))
	}
	return c
}

func (c *targetCache) part(code []byte) *cachePart {
	return &c.parts[maphash.Bytes(c.seed, code)&c.mask]
}

// Get returns the target of code.
func (c *targetCache) Get(code []byte) (string, bool) {
	if c == nil {
		return "", false
	}
	p := c.part(code)
	p.mu.RLock()
	i, ok := p.index[string(code)]
	if !ok {
		p.mu.RUnlock()
		return "", false
	}
	e := &p.entries[i]
	if !e.ref.Load() {
		e.ref.Store(true)
	}
	target := e.target
	p.mu.RUnlock()
	return target, true
}

// Put stores code -> target. An existing entry is left as it is (a code's
// target never changes).
func (c *targetCache) Put(code, target string) {
	if c == nil {
		return
	}
	p := &c.parts[maphash.String(c.seed, code)&c.mask]
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.index[code]; ok {
		return
	}
	if len(p.entries) < p.limit {
		p.entries = append(p.entries, cacheEntry{code: code, target: target})
		p.index[code] = int32(len(p.entries) - 1)
		return
	}
	for {
		e := &p.entries[p.hand]
		if e.ref.Load() {
			e.ref.Store(false)
			p.hand = (p.hand + 1) % len(p.entries)
			continue
		}
		delete(p.index, e.code)
		e.code, e.target = code, target
		p.index[code] = int32(p.hand)
		p.hand = (p.hand + 1) % len(p.entries)
		return
	}
}

// Len returns the number of entries.
func (c *targetCache) Len() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.parts {
		p := &c.parts[i]
		p.mu.RLock()
		n += len(p.entries)
		p.mu.RUnlock()
	}
	return n
}
