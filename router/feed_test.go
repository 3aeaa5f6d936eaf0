package router

import (
	"fmt"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/linkraft/linkraft/internal/testutil"
	"github.com/linkraft/linkraft/shardrpc"
)

// TestCacheEntrySize: the feed tag shares the entry's freshness field, so
// the entry stays 48 bytes (TestCacheMemoryBudget's margin).
func TestCacheEntrySize(t *testing.T) {
	if s := unsafe.Sizeof(cacheEntry{}); s != 48 {
		t.Fatalf("cacheEntry is %d bytes, want 48", s)
	}
	for _, tc := range []struct {
		shard int
		gen   uint32
	}{{0, 0}, {0, 1<<32 - 1}, {5, 7}, {1<<31 - 1, 1<<32 - 1}} {
		tag := feedTag(tc.shard, tc.gen)
		if s, g := untag(tag); tag >= 0 || s != tc.shard || g != tc.gen {
			t.Errorf("feedTag(%d, %d) = %d, untags to %d, %d", tc.shard, tc.gen, tag, s, g)
		}
	}
}

// TestCacheFeedBacked drives the feed-backed freshness with a fake clock:
// an entry is served while its shard's feed confirmed within the TTL and
// its generation is current; a feed change or reset drops it; answers the
// feed cannot vouch for (behind its position, no index, no confirmation)
// are kept on their own TTL.
func TestCacheFeedBacked(t *testing.T) {
	const ttl = 10 * time.Second
	ttlMs := ttl.Milliseconds()
	c := newTargetCache(100, ttl).withFeeds(2)
	const t0 = int64(1_000_000)
	st := c.feed(1)
	get := func(code string, at int64) cacheState {
		_, _, s := c.Get([]byte(code), at)
		return s
	}
	check := func(code string, at int64, want cacheState) {
		t.Helper()
		if got := get(code, at); got != want {
			t.Errorf("Get(%s) at t0%+d ms: state %d, want %d", code, at-t0, got, want)
		}
	}

	// Before the feed's first answer nothing is feed-backed.
	c.PutAt("unconf1", "https://example.com/u", 0, 0, t0, 1, 50)
	check("unconf1", t0+ttlMs-1, cacheHitRefresh)
	check("unconf1", t0+ttlMs, cacheMiss)

	applyChanges(c, st, shardrpc.Changes{Index: 40, Reset: true})
	st.confirmedAt.Store(t0)
	c.PutAt("backed1", "https://example.com/a", 0, 0, t0, 1, 40) // at the position
	c.PutAt("backed2", "https://example.com/b", 0, 0, t0, 1, 45) // after it
	c.PutAt("behind1", "https://example.com/c", 0, 0, t0, 1, 39) // before it: TTL
	c.PutAt("noindex", "https://example.com/d", 0, 0, t0, 1, 0)  // older node: TTL
	c.PutAt("noshard", "https://example.com/e", 0, 0, t0, -1, 45)
	for _, code := range []string{"backed1", "backed2"} {
		// No refresh ahead, however close to the TTL.
		check(code, t0+ttlMs-1, cacheHit)
		check(code, t0+ttlMs, cacheMiss) // the feed said nothing for a TTL
	}
	for _, code := range []string{"behind1", "noindex", "noshard"} {
		check(code, t0+ttlMs-1, cacheHitRefresh)
		check(code, t0+ttlMs, cacheMiss)
	}
	// Each answer confirms again: the entries outlive their TTL.
	for i := int64(1); i <= 5; i++ {
		applyChanges(c, st, shardrpc.Changes{Index: 40 + uint64(i)})
		st.confirmedAt.Store(t0 + i*ttlMs/2)
		check("backed1", t0+i*ttlMs/2+ttlMs-1, cacheHit)
	}
	check("behind1", t0+ttlMs, cacheMiss)
	// A change drops its code, only its code.
	applyChanges(c, st, shardrpc.Changes{Index: 50, Events: []shardrpc.ChangeEvent{{Index: 47, Code: "backed2"}}})
	check("backed2", t0+3*ttlMs, cacheMiss)
	check("backed1", t0+3*ttlMs, cacheHit)
	// The position is now 50: an answer from index 45 is not vouched for.
	c.PutAt("backed2", "https://example.com/b", 0, 0, t0+3*ttlMs, 1, 45)
	check("backed2", t0+4*ttlMs, cacheMiss)
	c.PutAt("backed2", "https://example.com/b", 0, 0, t0+3*ttlMs, 1, 50)
	check("backed2", t0+3*ttlMs+ttlMs/2-1, cacheHit)
	// A feed that stopped answering: a new answer goes on its own TTL.
	c.PutAt("late0001", "https://example.com/l", 0, 0, t0+4*ttlMs, 1, 60)
	check("late0001", t0+5*ttlMs-1, cacheHitRefresh)
	// A reset drops every feed-backed entry of the shard at once.
	st.confirmedAt.Store(t0 + 4*ttlMs)
	applyChanges(c, st, shardrpc.Changes{Index: 7, Reset: true})
	check("backed1", t0+4*ttlMs, cacheMiss)
	check("backed2", t0+4*ttlMs, cacheMiss)
	if st.pos.Load() != 7 || st.resets.Load() != 2 {
		t.Errorf("after the reset: position %d, %d resets", st.pos.Load(), st.resets.Load())
	}
	// After it, an answer at or after the new position is backed again.
	c.PutAt("backed1", "https://example.com/a", 0, 0, t0+4*ttlMs, 1, 7)
	check("backed1", t0+5*ttlMs-1, cacheHit)
	// The other shard's entries never depended on this one.
	c.feed(0).confirmedAt.Store(t0)
	c.PutAt("shard0ab", "https://example.com/s", 0, 0, t0, 0, 1)
	check("shard0ab", t0+ttlMs-1, cacheHit)
	// An expired link is never a hit, feed-backed or not.
	c.PutAt("expired1", "https://example.com/x", 0, t0+10, t0, 0, 1)
	check("expired1", t0+10, cacheExpired)
}

// TestCacheFeedHitAllocatesNothing: a feed-backed hit allocates nothing.
func TestCacheFeedHitAllocatesNothing(t *testing.T) {
	c := newTargetCache(100, time.Minute).withFeeds(1)
	now := time.Now().UnixMilli()
	c.feed(0).confirmedAt.Store(now)
	c.PutAt("abc1234", "https://example.com/", 0, 0, now, 0, 1)
	key := []byte("abc1234")
	allocs := testing.AllocsPerRun(1000, func() {
		if _, _, st := c.Get(key, now); st != cacheHit {
			t.Fatalf("state %d", st)
		}
	})
	if allocs != 0 {
		t.Fatalf("a feed-backed hit allocates %.1f times", allocs)
	}
}

// BenchmarkCacheGetFeed compares a hit on an entry on its own TTL with one
// on a feed-backed entry (the generation and confirmation checks instead of
// the TTL compare), in a small cache (the check's CPU cost) and a full
// 100,000-entry one (uniform over its codes, as BenchmarkCacheGet).
func BenchmarkCacheGetFeed(b *testing.B) {
	for _, n := range []int{1000, 100_000} {
		codes, targets := cacheFill(n, 2)
		keys := make([][]byte, n)
		for i := range codes {
			keys[i] = []byte(codes[i])
		}
		for _, feed := range []bool{false, true} {
			c := newTargetCache(n, time.Hour).withFeeds(3)
			now := time.Now().UnixMilli()
			for i := range 3 {
				c.feed(i).confirmedAt.Store(now)
			}
			for i := range codes {
				if feed {
					c.PutAt(codes[i], targets[i], 0, 0, now, i%3, 1)
				} else {
					c.Put(codes[i], targets[i], 0, 0, now)
				}
			}
			hits := 0
			for _, k := range keys {
				if _, _, st := c.Get(k, now); st == cacheHit {
					hits++
				}
			}
			if hits < n*9/10 { // a few were evicted by a fuller part
				b.Fatalf("%d of %d entries hit", hits, n)
			}
			runtime.GC() // the previous cache is garbage: not during the run
			b.Run(fmt.Sprintf("entries=%d/feed=%v", n, feed), func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						i = (i + 7919) % n
						_, _, _ = c.Get(keys[i], now)
					}
				})
			})
		}
	}
}

// waitFeeds waits until every change feed of r answered once (a feed's
// first poll makes the shard's leader run its term's read barrier, a Raft
// entry, which tests counting entries must not see).
func waitFeeds(t *testing.T, r *Router) {
	t.Helper()
	testutil.EventuallyEvery(t, 10*time.Millisecond, 30*time.Second, "every change feed to answer", func() error {
		for _, f := range r.FeedStatus() {
			if f.Lag < 0 {
				return fmt.Errorf("not answering: %+v", r.FeedStatus())
			}
		}
		return nil
	})
}
