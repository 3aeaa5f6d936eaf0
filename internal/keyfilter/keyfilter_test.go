package keyfilter

import (
	"math/rand/v2"
	"testing"
)

// TestNoFalseNegatives: every key added is held, at every size up to the
// limit and beyond it.
func TestNoFalseNegatives(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, built := range []int{0, 10, 1000} {
		f := New(built)
		var added [][2]uint64
		for range f.Limit() + 100 {
			h := [2]uint64{rng.Uint64(), rng.Uint64() | 1}
			f.Add(h[0], h[1])
			added = append(added, h)
		}
		for _, h := range added {
			if !f.MayHold(h[0], h[1]) {
				t.Fatalf("built for %d: an added key is not held", built)
			}
		}
		if f.Keys() != len(added) || !f.Full() {
			t.Fatalf("built for %d: %d keys, full %v; want %d, full", built, f.Keys(), f.Full(), len(added))
		}
	}
}

// TestFalsePositivesAtLimit: at its limit a filter answers yes for at
// most 0.1 % of keys never added (with some slack for the sample).
func TestFalsePositivesAtLimit(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	f := New(5000)
	if f.Limit() != 20000 || f.Full() {
		t.Fatalf("limit %d, full %v; want 20000, not full", f.Limit(), f.Full())
	}
	for range f.Limit() {
		f.Add(rng.Uint64(), rng.Uint64()|1)
	}
	if f.Full() {
		t.Fatal("full at its limit")
	}
	const probes = 200000
	yes := 0
	for range probes {
		if f.MayHold(rng.Uint64(), rng.Uint64()|1) {
			yes++
		}
	}
	if rate := float64(yes) / probes; rate > 0.0015 {
		t.Fatalf("false positive rate %.4f at the limit, want <= 0.001", rate)
	}
}

// TestMinKeys: a filter built for few keys is sized for MinKeys.
func TestMinKeys(t *testing.T) {
	if f := New(3); f.Limit() != MinKeys {
		t.Fatalf("limit %d, want %d", f.Limit(), MinKeys)
	}
}
