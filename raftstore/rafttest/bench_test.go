package rafttest_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/linkraft/linkraft/raftstore/rafttest"
)

// BenchmarkPropose measures committed proposals per second on one group of
// three replicas (three nodes on loopback, each with its own Pebble), at a
// given number of concurrent proposers. Each proposal is a 100-byte Put
// with an idempotency key, through Cluster.Propose to the leader.
func BenchmarkPropose(b *testing.B) {
	for _, conc := range []int{1, 64, 512} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			c := rafttest.New(b, rafttest.Options{Nodes: 3, Groups: 1, LogLevel: hclog.Warn})
			c.WaitLeader(1)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			value := make([]byte, 100)
			var next atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						k := next.Add(1) - 1
						if k >= int64(b.N) {
							return
						}
						id := fmt.Appendf(nil, "b-%d", k)
						if _, err := c.Propose(ctx, 1, rafttest.Put(id, id, value), id); err != nil {
							failed.CompareAndSwap(nil, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "proposals/s")
		})
	}
}
