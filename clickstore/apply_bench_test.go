package clickstore

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/linkraft/linkraft/clicks"
	"github.com/linkraft/linkraft/raftstore"
)

// benchBatches returns n batches of router r1 as a cold workload's flushes
// look: codes distinct codes, a few clicks each from a mix of user agents,
// referrers and visitors (of 1,000), all on one day.
func benchBatches(n, codes, clicksPer int) []clicks.Batch {
	return benchBatchesOf(n, codes, clicksPer, func(s, k int) int { return k % 1000 })
}

// benchBatchesOf is benchBatches with the visitor of each click, click k
// of batch s, from visitor(s, k).
func benchBatchesOf(n, codes, clicksPer int, visitor func(s, k int) int) []clicks.Batch {
	uas := []string{uaChrome, uaIPhone, uaChrome, uaIPhone, uaBingBot}
	refs := []string{"", "https://news.example.com/a", "https://t.co/x", "", "https://www.google.com/"}
	out := make([]clicks.Batch, n)
	for s := range n {
		out[s] = clickBatch("r1", uint64(s+1), func(rec func(string, clicks.Day, int, string, string)) {
			for i := range codes {
				for j := range clicksPer {
					k := i*clicksPer + j + s
					rec(fmt.Sprintf("c%06d", (i*7919)%codes), day0, visitor(s, k), uas[k%len(uas)], refs[(k/3)%len(refs)])
				}
			}
		})
	}
	return out
}

// processCPU returns the CPU time (user + system) of this process so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// openStoreDB opens an in-memory Pebble with a Store's options (bloom
// filters, a 64 MiB block cache).
func openStoreDB(b *testing.B) *pebble.DB {
	o := raftstore.DefaultPebbleOptions()
	o.FS = vfs.NewMem()
	o.Logger = quietLogger{b}
	o.Cache = pebble.NewCache(64 << 20)
	defer o.Cache.Unref()
	db, err := pebble.Open("", o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := db.Close(); err != nil {
			b.Error(err)
		}
	})
	return db
}

// BenchmarkApplyBatch applies a 5,000-code batch (3 clicks a code) to a
// Pebble store where every code already has its day record, as a shard
// does under the cold workload: the per-code read-modify-write dominates.
// One op is one batch applied and committed. The Txn has no memo, as on a
// replica that just started: every record is read from Pebble.
func BenchmarkApplyBatch(b *testing.B) { benchApplyBatch(b, nil, benchBatches(10, 5000, 3), 5000) }

// BenchmarkApplyBatchMemo is BenchmarkApplyBatch with the replica's memo,
// as the group's FSM applies: the batches click the same codes again, so
// every record comes from the memo (a replica whose memo holds the codes
// clicked in the last flushes).
func BenchmarkApplyBatchMemo(b *testing.B) {
	benchApplyBatch(b, raftstore.NewMemo(), benchBatches(10, 5000, 3), 5000)
}

// BenchmarkApplyBatchMemoOrdered is BenchmarkApplyBatchMemo with the
// batches in the order the leader proposes them (OrderDeltas), as the
// replicas apply them: Apply takes them as they are instead of sorting.
func BenchmarkApplyBatchMemoOrdered(b *testing.B) {
	batches := benchBatches(10, 5000, 3)
	for i := range batches {
		batches[i].Deltas = OrderDeltas(batches[i].Deltas, partitionsOf(batches[i].Deltas))
	}
	benchApplyBatch(b, raftstore.NewMemo(), batches, 5000)
}

// BenchmarkApplyBatchHot is BenchmarkApplyBatchMemo for the head of the
// cached workload's Zipf distribution: 1,000 codes with 300 clicks a flush
// each, every click from a new visitor, so a code's day sketch is a sparse
// list of hundreds of keys after the first flushes and dense after
// about five.
func BenchmarkApplyBatchHot(b *testing.B) {
	const codes, per = 1000, 300
	batches := benchBatchesOf(10, codes, per, func(s, k int) int { return s*codes*per + k })
	benchApplyBatch(b, raftstore.NewMemo(), batches, codes)
}

// benchApplyBatch applies the first 2 of batches (10, each of codes
// codes), then the other 8 in turn with increasing sequences.
func benchApplyBatch(b *testing.B, memo *raftstore.Memo, batches []clicks.Batch, codes int) {
	const warm = 2
	db := openStoreDB(b)
	txn := func(pb *pebble.Batch) raftstore.Txn {
		if memo != nil {
			return raftstore.NewMemoTxn(pb, testGroup, memo)
		}
		return raftstore.NewTxn(pb, testGroup)
	}
	for _, x := range batches[:warm] {
		pb := db.NewIndexedBatch()
		if _, err := Apply(txn(pb), partitionOf, x); err != nil {
			b.Fatal(err)
		}
		if err := pb.Commit(pebble.NoSync); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	cpu0 := processCPU(b)
	b.ResetTimer()
	for i := range b.N {
		// Later sequences of the same batches: the mark must advance.
		x := batches[warm+i%8]
		x.Seq = uint64(warm + i + 1)
		pb := db.NewIndexedBatch()
		if _, err := Apply(txn(pb), partitionOf, x); err != nil {
			b.Fatal(err)
		}
		if err := pb.Commit(pebble.NoSync); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// CPU time rather than wall time: on a shared machine the wall clock
	// mostly measures the other processes. It includes the GC's workers.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N*codes), "cpu-ns/code")
}
