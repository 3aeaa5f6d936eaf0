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
// Links can be edited (target, status, expiry), deleted or expire, so an
// entry is served only while it is fresh, and never at or after the link's
// own expiry (Get reports cacheExpired while the entry is fresh).
// Invalidate drops an entry at once (the router that served a DELETE or a
// PATCH, or a change the shard's change feed reported).
//
// An entry is fresh in one of two ways (feed.go has the argument):
//
//   - feed-backed: the entry names its shard's feedState and the
//     generation it was stored under; it is fresh while that generation is
//     current (a feed reset moves it) and the shard's change feed confirmed
//     the shard's changes within ttl (feedState.confirmedAt). The feed
//     drops the entries of changed codes, so such an entry lives until it
//     is evicted, changed, or the feed stops answering for ttl.
//   - on its own TTL: fresh for ttl after it was stored (then Get reports
//     a miss and the router asks the shard again, which refreshes or
//     replaces the entry). Put falls back to this when the feed cannot
//     vouch for the answer (see Put).
//
// Either check is one or two integer compares on a hit.
//
// It is split into cacheShards parts, each behind an RWMutex. A hit takes
// only the read lock and sets the entry's reference bit with an atomic
// store (skipped when already set, so a hot entry does not bounce its cache
// line between cores); Get with a []byte key allocates nothing. An insert
// into a full part advances the part's clock hand past recently referenced
// entries (clearing their bit) and replaces the first unreferenced one: a
// second-chance approximation of LRU in O(1) amortized time.
//
// Layout (memory is the budget of a big cache: docs/BENCHMARKS.md). Each
// part keeps its entries in one slice, and each entry holds its code and
// target as one string (one allocation: code bytes, then target bytes).
// The index is an open-addressing table of int32 entry numbers (linear
// probing, at most half full, backward-shift deletion, no tombstones)
// rather than a Go map, which would hold a second string header per entry
// and its own slack: about 40 + len(target) + 8 bytes per entry instead of
// about 110 + len(target).
type targetCache struct {
	seed  maphash.Seed
	mask  uint64
	ttlMs int64
	// refreshAheadMs: Get reports cacheHitRefresh this long before an
	// entry's freshness ends (ttlMs/refreshAheadDiv).
	refreshAheadMs int64
	parts          []cachePart
	// feeds are the change feed states of the cluster's shards, by shard
	// index (Router.shardIndex); nil without change feeds. Fixed at
	// construction.
	feeds []feedState
}

// feedState is what the cache knows about one shard's change feed. The
// feed goroutine of the shard (feed.go) writes it; Get and Put read it.
type feedState struct {
	// gen is the generation of the shard's feed-backed entries: a reset
	// moves it, and entries stored under an older one are misses.
	gen atomic.Uint32
	// pos is the feed's position: every change of the shard at or below
	// it has been applied to the cache (its code dropped).
	pos atomic.Uint64
	// confirmedAt is the send time (Unix ms) of the feed request last
	// answered; 0 before the first answer.
	confirmedAt atomic.Int64
	// resets counts the resets answered (for FeedStatus).
	resets atomic.Uint64
	_      [32]byte // keep neighbouring shards' states off one cache line
}

// feedTag is an entry's fresh value for a feed-backed entry of shard index
// shard stored under generation gen: negative, unlike a TTL deadline.
func feedTag(shard int, gen uint32) int64 { return -1 - (int64(shard)<<32 | int64(gen)) }

// untag returns the shard index and generation of a feed tag.
func untag(fresh int64) (shard int, gen uint32) {
	v := -1 - fresh
	return int(v >> 32), uint32(v)
}

// cacheState is the outcome of a Get.
type cacheState uint8

const (
	// cacheMiss: no entry, or one no longer fresh.
	cacheMiss cacheState = iota
	// cacheHit: a fresh entry; the target is valid.
	cacheHit
	// cacheHitRefresh: a fresh entry on its own TTL (the target is valid)
	// in the last part of it (refreshAheadMs): the router revalidates it
	// in the background, so a code in use never misses. Feed-backed
	// entries have no TTL of their own and never report it.
	cacheHitRefresh
	// cacheExpired: the link expired (its expiry is at or before now);
	// the entry stays, so repeated requests answer 410 without a shard call.
	cacheExpired
)

// maxCacheCode bounds the codes the cache stores (an entry keeps the
// length in a byte); aliases are at most 64 bytes, so every code fits.
const maxCacheCode = 255

type cachePart struct {
	mu      sync.RWMutex
	entries []cacheEntry
	// table maps a slot to 1 + the index of the entry whose code hashes
	// there (or, on collision, after it); 0 is an empty slot. Its length
	// is a power of two, at least twice limit.
	table []int32
	tmask uint64
	limit int
	hand  int
	_     [32]byte // keep neighbouring parts' locks off one cache line
}

type cacheEntry struct {
	// kv is the code followed by the target.
	kv string
	// fresh is when the entry must be revalidated (Unix ms, >= 0), or
	// for a feed-backed entry its feedTag (< 0).
	fresh int64
	// expiresAt is the link's expiry (Unix ms), 0 for none.
	expiresAt int64
	// hash is the high half of the code's hash: its home slot in the
	// part's table (the low bits chose the part).
	hash uint32
	// status is the link's own redirect status, 0 for the cluster's
	// default.
	status  uint16
	codeLen uint8
	ref     atomic.Bool
}

func (e *cacheEntry) code() string   { return e.kv[:e.codeLen] }
func (e *cacheEntry) target() string { return e.kv[e.codeLen:] }

// newTargetCache returns a cache holding up to size entries, each served
// for at most ttl after it was stored or after its shard's change feed last
// confirmed it, or nil when size <= 0 (caching disabled; a nil
// *targetCache misses every Get and ignores every Put). It has no change
// feed states until withFeeds.
func newTargetCache(size int, ttl time.Duration) *targetCache {
	if size <= 0 {
		return nil
	}
	n := cacheShards
	for n > 1 && size/n < 16 {
		n /= 2 // small caches: fewer, fuller parts, so eviction stays fair
	}
	c := &targetCache{seed: maphash.MakeSeed(), mask: uint64(n - 1), ttlMs: max(ttl.Milliseconds(), 1), parts: make([]cachePart, n)}
	c.refreshAheadMs = c.ttlMs / refreshAheadDiv
	per := (size + n - 1) / n
	slots := 1
	for slots < 2*per {
		slots *= 2
	}
	for i := range c.parts {
		c.parts[i].limit = per
		c.parts[i].table = make([]int32, slots)
		c.parts[i].tmask = uint64(slots - 1)
	}
	return c
}

// withFeeds gives c the change feed states of shards shards, before any
// other use, and returns c.
func (c *targetCache) withFeeds(shards int) *targetCache {
	if c != nil && shards > 0 {
		c.feeds = make([]feedState, shards)
	}
	return c
}

// feed returns the change feed state of shard index i, nil for none.
func (c *targetCache) feed(i int) *feedState {
	if c == nil || i < 0 || i >= len(c.feeds) {
		return nil
	}
	return &c.feeds[i]
}

// home returns the table slot a code with hash h starts probing at.
func (p *cachePart) home(h uint32) uint64 { return uint64(h) & p.tmask }

// find returns the entry index and table slot of code (hash h), or -1.
func (p *cachePart) find(code []byte, h uint32) (int32, uint64) {
	for s := p.home(h); ; s = (s + 1) & p.tmask {
		i := p.table[s] - 1
		if i < 0 {
			return -1, s
		}
		if e := &p.entries[i]; e.hash == h && e.code() == string(code) {
			return i, s
		}
	}
}

// findString is find for a string code.
func (p *cachePart) findString(code string, h uint32) (int32, uint64) {
	for s := p.home(h); ; s = (s + 1) & p.tmask {
		i := p.table[s] - 1
		if i < 0 {
			return -1, s
		}
		if e := &p.entries[i]; e.hash == h && e.code() == code {
			return i, s
		}
	}
}

// slotOf returns the table slot that holds entry i.
func (p *cachePart) slotOf(i int32) uint64 {
	for s := p.home(p.entries[i].hash); ; s = (s + 1) & p.tmask {
		if p.table[s] == i+1 {
			return s
		}
	}
}

// unlink empties slot s and moves the entries probed past it back, so that
// every entry stays reachable from its home slot (backward-shift deletion).
func (p *cachePart) unlink(s uint64) {
	for {
		p.table[s] = 0
		j := s
		for {
			j = (j + 1) & p.tmask
			v := p.table[j]
			if v == 0 {
				return
			}
			k := p.home(p.entries[v-1].hash)
			// The entry at j may move to s unless its home lies
			// cyclically in (s, j].
			if s <= j {
				if s < k && k <= j {
					continue
				}
			} else if s < k || k <= j {
				continue
			}
			p.table[s] = v
			s = j
			break
		}
	}
}

// hash returns the part of a code's hash and the high half (its hash
// within the part).
func (c *targetCache) hashBytes(code []byte) (*cachePart, uint32) {
	h := maphash.Bytes(c.seed, code)
	return &c.parts[h&c.mask], uint32(h >> 32)
}

func (c *targetCache) hashString(code string) (*cachePart, uint32) {
	h := maphash.String(c.seed, code)
	return &c.parts[h&c.mask], uint32(h >> 32)
}

// Get returns the target of code at time now (Unix ms): cacheHit with the
// target and the link's redirect status (0: the cluster's default;
// cacheHitRefresh instead when an entry on its own TTL is due for
// revalidation soon), cacheExpired when the link's expiry has passed, or
// cacheMiss (no entry, or one no longer fresh). It allocates nothing.
func (c *targetCache) Get(code []byte, now int64) (string, uint16, cacheState) {
	if c == nil {
		return "", 0, cacheMiss
	}
	p, h := c.hashBytes(code)
	p.mu.RLock()
	i, _ := p.find(code, h)
	if i < 0 {
		p.mu.RUnlock()
		return "", 0, cacheMiss
	}
	e := &p.entries[i]
	// Revalidate a stale entry, an expired one too: an edit may have
	// moved the link's expiry later.
	if e.fresh >= 0 {
		if now >= e.fresh {
			p.mu.RUnlock()
			return "", 0, cacheMiss
		}
	} else if !c.feedFresh(e.fresh, now) {
		p.mu.RUnlock()
		return "", 0, cacheMiss
	}
	if e.expiresAt != 0 && now >= e.expiresAt {
		p.mu.RUnlock()
		return "", 0, cacheExpired
	}
	if !e.ref.Load() {
		e.ref.Store(true)
	}
	target, status := e.target(), e.status
	st := cacheHit
	if e.fresh >= 0 && now >= e.fresh-c.refreshAheadMs {
		st = cacheHitRefresh
	}
	p.mu.RUnlock()
	return target, status, st
}

// feedFresh reports whether a feed-backed entry with tag fresh is fresh at
// now: its generation is its shard's current one and the shard's feed
// confirmed within the TTL.
func (c *targetCache) feedFresh(fresh, now int64) bool {
	shard, gen := untag(fresh)
	f := &c.feeds[shard]
	return gen == f.gen.Load() && now-f.confirmedAt.Load() < c.ttlMs
}

// Put stores code -> target for a link with redirect status status (0:
// the cluster's default) that expires at expiresAt (Unix ms, 0 for
// never), fresh until now + the cache's TTL: PutAt without a shard.
func (c *targetCache) Put(code, target string, status uint16, expiresAt, now int64) {
	c.PutAt(code, target, status, expiresAt, now, -1, 0)
}

// PutAt stores code -> target for a link with redirect status status (0:
// the cluster's default) that expires at expiresAt (Unix ms, 0 for
// never). The shard with index shard (-1: unknown) answered it from its
// state at applied index applied (0: unknown).
//
// The entry is feed-backed when the shard's change feed can vouch for it:
// the feed confirmed within the TTL and its position is at or below
// applied, so every change after applied is still to come from the feed
// (changes at or below it are in the answer). Otherwise (an older node, a
// link with a click limit, a feed behind or down) it is fresh until now +
// the cache's TTL. An existing entry takes the new answer. A code longer
// than maxCacheCode is not stored.
func (c *targetCache) PutAt(code, target string, status uint16, expiresAt, now int64, shard int, applied uint64) {
	if c == nil || len(code) > maxCacheCode {
		return
	}
	p, h := c.hashString(code)
	p.mu.Lock()
	defer p.mu.Unlock()
	// Read under the part's lock: the feed moves pos before it drops
	// the changed codes, each under its part's lock, so either this
	// entry is stored before its code is dropped, or pos already covers
	// the change (and then applied < pos if the answer predates it).
	fresh := now + c.ttlMs
	if shard >= 0 && shard < len(c.feeds) && applied != 0 {
		f := &c.feeds[shard]
		gen := f.gen.Load() // before pos: a reset moves pos, then gen
		if applied >= f.pos.Load() && now-f.confirmedAt.Load() < c.ttlMs {
			fresh = feedTag(shard, gen)
		}
	}
	i, s := p.findString(code, h)
	if i >= 0 {
		// An edit can change a link's target, status and expiry (later
		// too): the shard's answer replaces the entry. (A link used up by
		// its click limit comes with its expiry set to the check's time:
		// see admit.)
		e := &p.entries[i]
		e.fresh = fresh
		if e.target() != target {
			e.kv = code + target
		}
		e.status, e.expiresAt = status, expiresAt
		return
	}
	kv := code + target
	if len(p.entries) < p.limit {
		if len(p.entries) == cap(p.entries) {
			// Grow by doubling up to the limit, never past it: append's
			// own growth would leave up to a quarter of a full part's
			// slice unused.
			grown := make([]cacheEntry, len(p.entries), min(max(2*cap(p.entries), 16), p.limit))
			for j := range p.entries {
				copyEntry(&grown[j], &p.entries[j])
			}
			p.entries = grown
		}
		p.entries = p.entries[:len(p.entries)+1]
		e := &p.entries[len(p.entries)-1]
		e.kv, e.fresh, e.expiresAt, e.hash, e.status, e.codeLen = kv, fresh, expiresAt, h, status, uint8(len(code))
		p.table[s] = int32(len(p.entries))
		return
	}
	for {
		e := &p.entries[p.hand]
		if e.ref.Load() {
			e.ref.Store(false)
			p.hand = (p.hand + 1) % len(p.entries)
			continue
		}
		victim := int32(p.hand)
		p.unlink(p.slotOf(victim))
		e.kv, e.fresh, e.expiresAt, e.hash, e.status, e.codeLen = kv, fresh, expiresAt, h, status, uint8(len(code))
		// The victim's removal may have moved entries: probe again.
		_, s = p.findString(code, h)
		p.table[s] = victim + 1
		p.hand = (p.hand + 1) % len(p.entries)
		return
	}
}

// copyEntry copies src into dst (an atomic.Bool must not be copied by
// assignment).
func copyEntry(dst, src *cacheEntry) {
	dst.kv, dst.fresh, dst.expiresAt, dst.hash, dst.status, dst.codeLen = src.kv, src.fresh, src.expiresAt, src.hash, src.status, src.codeLen
	dst.ref.Store(src.ref.Load())
}

// Invalidate drops the entry of code, if there is one: the last entry of
// its part moves into the freed slot.
func (c *targetCache) Invalidate(code string) {
	if c == nil {
		return
	}
	p, h := c.hashString(code)
	p.mu.Lock()
	defer p.mu.Unlock()
	i, s := p.findString(code, h)
	if i < 0 {
		return
	}
	p.unlink(s)
	last := int32(len(p.entries) - 1)
	if i != last {
		p.table[p.slotOf(last)] = i + 1
		copyEntry(&p.entries[i], &p.entries[last])
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
