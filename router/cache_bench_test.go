package router

import (
	"testing"
	"time"
)

// BenchmarkCacheGet measures a hit in a full 100,000-entry cache (uniform
// over its codes, so most lookups miss the CPU caches, as with a big
// working set).
func BenchmarkCacheGet(b *testing.B) {
	const n = 100_000
	codes, targets := cacheFill(n, 2)
	c := newTargetCache(n, time.Hour)
	now := time.Now().UnixMilli()
	keys := make([][]byte, n)
	for i := range codes {
		c.Put(codes[i], targets[i], 0, 0, now)
		keys[i] = []byte(codes[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i = (i + 7919) % n
			_, _, _ = c.Get(keys[i], now)
		}
	})
}
