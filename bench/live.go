package bench

import (
	"math/bits"
	"sync/atomic"
)

// liveHist is a coarse latency histogram a worker records into with atomic
// adds, so that the progress reporter can read percentiles while the run goes
// on without a lock on the hot path. Values are microseconds; below 16 each
// value has its own bucket, above it every power of two is split into 16
// buckets (about 6% resolution). The exact percentiles of the result come
// from the HDR histograms; this one only feeds the progress line.
type liveHist struct {
	counts [liveBuckets]atomic.Int64
}

const (
	liveSubBits = 4
	liveSub     = 1 << liveSubBits
	liveMaxExp  = 40 // values up to 2^41 µs, far beyond MaxLatency
	liveBuckets = liveSub + (liveMaxExp-liveSubBits+1)*liveSub
)

// liveIndex returns the bucket of v (µs, >= 0).
func liveIndex(v int64) int {
	if v < liveSub {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	exp := bits.Len64(uint64(v)) - 1 // >= liveSubBits
	if exp > liveMaxExp {
		return liveBuckets - 1
	}
	sub := int(v>>(exp-liveSubBits)) & (liveSub - 1)
	return liveSub + (exp-liveSubBits)*liveSub + sub
}

// liveUpper returns the largest value of bucket i.
func liveUpper(i int) int64 {
	if i < liveSub {
		return int64(i)
	}
	exp := (i-liveSub)/liveSub + liveSubBits
	sub := int64((i - liveSub) % liveSub)
	return ((liveSub+sub+1)<<(exp-liveSubBits) - 1)
}

func (h *liveHist) record(us int64) { h.counts[liveIndex(us)].Add(1) }

// addTo adds the current counts of h to sum.
func (h *liveHist) addTo(sum *[liveBuckets]int64) {
	for i := range h.counts {
		sum[i] += h.counts[i].Load()
	}
}

// liveQuantile returns the upper bound of the bucket that holds quantile q
// (0..1) of the counts, or 0 when there are none.
func liveQuantile(counts *[liveBuckets]int64, q float64) int64 {
	var total int64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := int64(q*float64(total) + 0.5)
	rank = max(rank, 1)
	var seen int64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			return liveUpper(i)
		}
	}
	return liveUpper(liveBuckets - 1)
}
