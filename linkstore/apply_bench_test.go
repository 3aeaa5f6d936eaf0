package linkstore

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/linkraft/linkraft/raftstore"
)

// countingTxn counts the point reads an Apply makes, and passes the
// replica's memo on.
type countingTxn struct {
	raftstore.Txn
	memo *raftstore.Memo
	gets int
}

func (c *countingTxn) Get(key []byte) ([]byte, error) {
	c.gets++
	return c.Txn.Get(key)
}

func (c *countingTxn) Memo() *raftstore.Memo { return c.memo }

// BenchmarkApplyCreateBatch measures one generated create applied as a node
// applies them: create batches of 85 items (items=85: 256 concurrent
// creates over 3 shards, the peak) or of 3 (items=3: an entry at moderate
// load, where the per-batch work counts), each with its request ID, spread
// over the 341 partitions one shard of the default cluster owns (1024
// partitions, 3 shards), on a store that already holds 85,000 links. It
// reports the Pebble point reads per create (gets/create) and runs with
// the replica's memo ("memo", what every group does) and without
// ("nomemo": a restarted replica's first batches, and the code before the
// memo). It also reports what Pebble wrote per create while it ran: the
// WAL's logical bytes (walB/create: the batches' keys and values) and the
// sstable bytes of flushes and compactions (flushB/create,
// compactB/create; these depend on when Pebble flushes and compacts during
// the run, so compare them over several counts).
//
//	go test -run '^$' -bench ApplyCreateBatch -count 6 ./linkstore/
func BenchmarkApplyCreateBatch(b *testing.B) {
	for _, bench := range []struct {
		withMemo bool
		items    int
	}{{false, 85}, {true, 85}, {false, 3}, {true, 3}} {
		withMemo, items := bench.withMemo, bench.items
		name := "nomemo"
		if withMemo {
			name = "memo"
		}
		b.Run(fmt.Sprintf("%s/items=%d", name, items), func(b *testing.B) {
			rg := testRing(b, 7, 1024)
			rep := newReplica(b, rg)
			var memo *raftstore.Memo
			if withMemo {
				memo = raftstore.NewMemo()
			}
			seq := 0
			batch := func() []byte {
				var cb CreateBatch
				for range items {
					seq++
					cb.Items = append(cb.Items, BatchItem{
						RequestID: fmt.Sprintf("r1-%016x", uint64(seq)*0x9e3779b97f4a7c15),
						Create: Create{Partition: uint32(seq*3%1023) + 1, CreatedAtMs: int64(seq),
							URL: fmt.Sprintf("https://www.example-shop.com/products/item-%d?utm_source=bench", seq)},
					})
				}
				return AppendCreateBatch(nil, cb)
			}
			gets := 0
			apply := func(cmd []byte) {
				pb := rep.db.NewIndexedBatch()
				var tx raftstore.Txn = raftstore.NewTxn(pb, testGroup)
				if memo != nil {
					tx = raftstore.NewMemoTxn(pb, testGroup, memo)
				}
				ctx := &countingTxn{Txn: tx, memo: memo}
				rep.ix++
				rep.m.Apply(ctx, rep.ix, cmd)
				gets += ctx.gets
				if err := pb.Commit(pebble.NoSync); err != nil {
					b.Fatal(err)
				}
				_ = pb.Close()
			}
			for range 85000 / items {
				apply(batch())
			}
			cmds := make([][]byte, b.N/items+1)
			for i := range cmds {
				cmds[i] = batch()
			}
			gets = 0
			before := rep.db.Metrics()
			b.ReportAllocs()
			b.ResetTimer()
			for _, cmd := range cmds {
				apply(cmd)
			}
			b.StopTimer()
			after := rep.db.Metrics()
			creates := float64(len(cmds) * items)
			b.ReportMetric(float64(gets)/creates, "gets/create")
			b.ReportMetric(float64(after.WAL.BytesIn-before.WAL.BytesIn)/creates, "walB/create")
			ta, tb := after.Total(), before.Total()
			b.ReportMetric(float64(ta.TableBytesFlushed-tb.TableBytesFlushed)/creates, "flushB/create")
			b.ReportMetric(float64(ta.TableBytesCompacted-tb.TableBytesCompacted)/creates, "compactB/create")
		})
	}
}
