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
// referrers and visitors, all on one day.
func benchBatches(n, codes, clicksPer int) []clicks.Batch {
	uas := []string{uaChrome, uaIPhone, uaChrome, uaIPhone, uaBingBot}
	refs := []string{"", "https://news.example.com/a", "https://t.co/x", "", "https://www.google.com/"}
	out := make([]clicks.Batch, n)
	for s := range n {
		out[s] = clickBatch("r1", uint64(s+1), func(rec func(string, clicks.Day, int, string, string)) {
			for i := range codes {
				for j := range clicksPer {
					k := i*clicksPer + j + s
					rec(fmt.Sprintf("c%06d", (i*7919)%codes), day0, k%1000, uas[k%len(uas)], refs[(k/3)%len(refs)])
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
func BenchmarkApplyBatch(b *testing.B) { benchApplyBatch(b, nil) }

// BenchmarkApplyBatchMemo is BenchmarkApplyBatch with the replica's memo,
// as the group's FSM applies: the batches click the same codes again, so
// every record comes from the memo (a replica whose memo holds the codes
// clicked in the last flushes).
func BenchmarkApplyBatchMemo(b *testing.B) { benchApplyBatch(b, raftstore.NewMemo()) }

func benchApplyBatch(b *testing.B, memo *raftstore.Memo) {
	const warm = 2
	batches := benchBatches(warm+8, 5000, 3)
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
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N*5000), "cpu-ns/code")
}
