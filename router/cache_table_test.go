package router

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// checkCacheTable verifies the cache's internal invariants: every entry is
// found from its home slot, the table holds exactly one slot per entry, and
// the parts stay within their limit.
func checkCacheTable(t *testing.T, c *targetCache) {
	t.Helper()
	for pi := range c.parts {
		p := &c.parts[pi]
		if len(p.entries) > p.limit {
			t.Fatalf("part %d holds %d entries, limit %d", pi, len(p.entries), p.limit)
		}
		used := 0
		for _, v := range p.table {
			if v != 0 {
				used++
				if int(v) > len(p.entries) {
					t.Fatalf("part %d: slot points at entry %d of %d", pi, v-1, len(p.entries))
				}
			}
		}
		if used != len(p.entries) {
			t.Fatalf("part %d: %d used slots for %d entries", pi, used, len(p.entries))
		}
		for i := range p.entries {
			e := &p.entries[i]
			if got, _ := p.findString(e.code(), e.hash); got != int32(i) {
				t.Fatalf("part %d: entry %d (%q) found at %d", pi, i, e.code(), got)
			}
		}
	}
}

// TestCacheTableModel drives small caches (many collisions, constant
// eviction) with random Puts, Gets and Invalidates and checks every answer
// against a model and the table's invariants after each step.
func TestCacheTableModel(t *testing.T) {
	for _, size := range []int{1, 5, 16, 40, 200} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(size), 7))
			c := newTargetCache(size, time.Hour)
			now := time.Now().UnixMilli()
			model := map[string]string{} // what a hit must answer: the last target put (an edit replaces it)
			for step := range 5000 {
				code := "c" + strconv.Itoa(rng.IntN(3*size+3))
				switch op := rng.IntN(10); {
				case op < 5:
					target := "https://example.com/" + strconv.Itoa(step)
					model[code] = target
					status := []uint16{0, 301, 302, 307, 308}[rng.IntN(5)]
					c.Put(code, target, status, 0, now)
					if got, gotStatus, st := c.Get([]byte(code), now); st != cacheHit || got != model[code] || gotStatus != status {
						t.Fatalf("step %d: after Put(%s, %d): %q %d %v, want %q", step, code, status, got, gotStatus, st, model[code])
					}
				case op < 8:
					got, _, st := c.Get([]byte(code), now)
					if st == cacheHit && got != model[code] {
						t.Fatalf("step %d: Get(%s) = %q, want %q", step, code, got, model[code])
					}
				default:
					c.Invalidate(code)
					delete(model, code)
					if _, _, st := c.Get([]byte(code), now); st != cacheMiss {
						t.Fatalf("step %d: %s answered after Invalidate", step, code)
					}
				}
				checkCacheTable(t, c)
			}
			if c.Len() > size+len(c.parts) {
				t.Fatalf("%d entries for size %d", c.Len(), size)
			}
		})
	}
}
