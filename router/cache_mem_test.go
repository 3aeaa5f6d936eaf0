package router

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"
)

// memEntries is the cache size of the memory target: a router with a
// 1,000,000-entry cache stays under 512 MiB RSS (issue 5).
const memEntries = 1_000_000

// cacheFill returns n distinct 7-character codes and a target URL for each,
// 60 to 100 bytes long (the length of a typical shortened link), each its own
// allocation as the router's miss path makes them (decoded from a shard's
// answer).
func cacheFill(n int, seed uint64) (codes, targets []string) {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	rng := rand.New(rand.NewPCG(seed, 1))
	seen := make(map[string]bool, n)
	codes, targets = make([]string, 0, n), make([]string, 0, n)
	var buf []byte
	for len(codes) < n {
		var c [7]byte
		for i := range c {
			c[i] = alphabet[rng.IntN(len(alphabet))]
		}
		code := string(c[:])
		if seen[code] {
			continue
		}
		seen[code] = true
		buf = fmt.Appendf(buf[:0], "https://shop.example-%d.com/collections/item-%d?utm_source=news&ref=",
			rng.IntN(1000), rng.IntN(1_000_000))
		for want := 60 + rng.IntN(41); len(buf) < want; {
			buf = append(buf, alphabet[rng.IntN(len(alphabet))])
		}
		codes = append(codes, code)
		targets = append(targets, string(buf[:min(len(buf), 100)]))
	}
	return codes, targets
}

// cacheMemory fills a cache of size entries and returns the live heap it
// holds (bytes, after a GC), the process's resident set and its peak
// (VmRSS, VmHWM from /proc/self/status, 0 where unavailable).
func cacheMemory(t testing.TB, size int) (heap, rss, hwm uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := fillCache(size)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if c.Len() < size {
		t.Fatalf("cache holds %d entries, want %d", c.Len(), size)
	}
	rss, hwm = procStatus("VmRSS:"), procStatus("VmHWM:")
	runtime.KeepAlive(c)
	return after.HeapAlloc - before.HeapAlloc, rss, hwm
}

// fillCache returns a full cache of size entries (a tenth more links are
// put than it holds, so that every part is full, as in a router that has
// run for a while); once it returns, the cache alone holds the codes and
// targets it keeps.
func fillCache(size int) *targetCache {
	codes, targets := cacheFill(size+size/10, 1)
	c := newTargetCache(size, time.Minute)
	now := time.Now().UnixMilli()
	for i := range codes {
		c.Put(codes[i], targets[i], 0, 0, now)
	}
	return c
}

// procStatus returns a kB field of /proc/self/status in bytes, or 0.
func procStatus(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if v, ok := bytes.CutPrefix(line, []byte(field)); ok {
			n, err := strconv.ParseUint(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
			if err != nil {
				return 0
			}
			return n << 10
		}
	}
	return 0
}

// TestCacheMemoryBudget holds the router cache's share of the memory
// target: a full cache must hold at most 256 bytes per entry of live heap,
// URL included (60-100 bytes), so that 1,000,000 entries stay within half
// of the 512 MiB budget and the Go runtime's headroom (GOGC=100 lets the
// heap grow to twice the live data between collections) keeps the process
// under it. It fills 200,000 entries (the per-entry cost does not depend on
// the count beyond the parts' growth); BenchmarkCacheMemory measures the
// full 1,000,000 with the process's RSS.
func TestCacheMemoryBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 200,000 cache entries")
	}
	const n = 200_000
	heap, _, _ := cacheMemory(t, n)
	per := float64(heap) / n
	t.Logf("%d entries: %.1f MiB live heap, %.1f B/entry", n, float64(heap)/(1<<20), per)
	if per > 256 {
		t.Errorf("the cache holds %.1f B of heap per entry, budget 256", per)
	}
}

// BenchmarkCacheMemory fills a 1,000,000-entry cache with realistic URLs
// and reports the live heap per entry, the heap in MiB and the process's
// RSS and peak RSS in MiB (Linux), once per iteration: run it with
// -benchtime 1x.
//
//	go test -run '^$' -bench CacheMemory -benchtime 1x ./router/
func BenchmarkCacheMemory(b *testing.B) {
	debug.FreeOSMemory()
	var heap, rss, hwm uint64
	for range b.N {
		heap, rss, hwm = cacheMemory(b, memEntries)
	}
	b.ReportMetric(float64(heap)/memEntries, "heap-B/entry")
	b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
	b.ReportMetric(float64(hwm)/(1<<20), "peak-rss-MiB")
}
