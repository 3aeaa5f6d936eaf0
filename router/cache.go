package router

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// cacheShards is the number of independently locked parts of a cache; a
// power of two.
const cacheShards = 64

// targetCache is a bounded map code -> target URL with CLOCK eviction.
// Links never change their target, but they can be deleted or expire, so
// an entry is served only while it is fresh: for ttl after it was stored
// (after that Get reports a miss and the router asks the shard again,
// which refreshes or replaces the entry), and never at or after the link's
// own expiry (Get reports cacheExpired). Invalidate drops an entry at once
// (the router that served a DELETE). Both checks are one integer compare
// each on a hit.
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
	ttlMs int64
	parts []cachePart
}

// cacheState is the outcome of a Get.
type cacheState uint8

const (
	// cacheMiss: no entry, or one older than the cache's TTL.
	cacheMiss cacheState = iota
	// cacheHit: a fresh entry; the target is valid.
	cacheHit
	// cacheExpired: the link expired (its expiry is at or before now);
	// the entry stays, so repeated requests answer 410 without a shard call.
	cacheExpired
)

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
	// freshUntil is when the entry must be revalidated (Unix ms).
	freshUntil int64
	// expiresAt is the link's expiry (Unix ms), 0 for none.
	expiresAt int64
	// status is the link's own redirect status, 0 for the cluster's
	// default.
	status uint16
	ref    atomic.Bool
}

// newTargetCache returns a cache holding up to size entries, each served
// for at most ttl after it was stored, or nil when size <= 0 (caching
// disabled; a nil *targetCache misses every Get and ignores every Put).
func newTargetCache(size int, ttl time.Duration) *targetCache {
	if size <= 0 {
		return nil
	}
	n := cacheShards
	for n > 1 && size/n < 16 {
		n /= 2 // small caches: fewer, fuller parts, so eviction stays fair
	}
	c := &targetCache{seed: maphash.MakeSeed(), mask: uint64(n - 1), ttlMs: max(ttl.Milliseconds(), 1), parts: make([]cachePart, n)}
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

// Get returns the target of code at time now (Unix ms): cacheHit with the
// target and the link's redirect status (0: the cluster's default),
// cacheExpired when the link's expiry has passed, or cacheMiss (no entry,
// or one not revalidated within the TTL). It allocates nothing.
func (c *targetCache) Get(code []byte, now int64) (string, uint16, cacheState) {
	if c == nil {
		return "", 0, cacheMiss
	}
	p := c.part(code)
	p.mu.RLock()
	i, ok := p.index[string(code)]
	if !ok {
		p.mu.RUnlock()
		return "", 0, cacheMiss
	}
	e := &p.entries[i]
	if e.expiresAt != 0 && now >= e.expiresAt {
		p.mu.RUnlock()
		return "", 0, cacheExpired
	}
	if now >= e.freshUntil {
		p.mu.RUnlock()
		return "", 0, cacheMiss
	}
	if !e.ref.Load() {
		e.ref.Store(true)
	}
	target, status := e.target, e.status
	p.mu.RUnlock()
	return target, status, cacheHit
}

// Put stores code -> target for a link with redirect status status (0:
// the cluster's default) that expires at expiresAt (Unix ms, 0 for
// never), fresh until now + the cache's TTL. An existing entry keeps its
// target, takes the status and is refreshed.
func (c *targetCache) Put(code, target string, status uint16, expiresAt, now int64) {
	if c == nil {
		return
	}
	fresh := now + c.ttlMs
	p := &c.parts[maphash.String(c.seed, code)&c.mask]
	p.mu.Lock()
	defer p.mu.Unlock()
	if i, ok := p.index[code]; ok {
		// A code's target never changes (a deleted code is never issued
		// again) and an expiry never moves later: only the freshness is
		// renewed, and an earlier expiry (a link found used up) kept.
		e := &p.entries[i]
		e.freshUntil = fresh
		e.status = status
		if expiresAt != 0 && (e.expiresAt == 0 || expiresAt < e.expiresAt) {
			e.expiresAt = expiresAt
		}
		return
	}
	if len(p.entries) < p.limit {
		p.entries = append(p.entries, cacheEntry{code: code, target: target, freshUntil: fresh, expiresAt: expiresAt, status: status})
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
		e.code, e.target, e.freshUntil, e.expiresAt, e.status = code, target, fresh, expiresAt, status
		p.index[code] = int32(p.hand)
		p.hand = (p.hand + 1) % len(p.entries)
		return
	}
}

// Invalidate drops the entry of code, if there is one: the last entry of
// its part moves into the freed slot.
func (c *targetCache) Invalidate(code string) {
	if c == nil {
		return
	}
	p := &c.parts[maphash.String(c.seed, code)&c.mask]
	p.mu.Lock()
	defer p.mu.Unlock()
	i, ok := p.index[code]
	if !ok {
		return
	}
	delete(p.index, code)
	last := int32(len(p.entries) - 1)
	if i != last {
		e, l := &p.entries[i], &p.entries[last]
		e.code, e.target, e.freshUntil, e.expiresAt, e.status = l.code, l.target, l.freshUntil, l.expiresAt, l.status
		e.ref.Store(l.ref.Load())
		p.index[e.code] = i
	}
	p.entries[last] = cacheEntry{}
	p.entries = p.entries[:last]
	if p.hand >= len(p.entries) {
		p.hand = 0
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
