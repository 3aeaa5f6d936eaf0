package node_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
)

// BenchmarkResolveRPC measures the resolve round trip of a cold redirect:
// shardrpc.Client.Resolve against a 3-node in-process cluster over
// loopback TCP (one shard, 2,000 links, uniform draws, local reads at the
// leader), from 2 (par1) and 64 (par32, make bench's cold concurrency on
// 2 cores) goroutines. "json" is the previous JSON RPC
// (ClientOptions.ResolveJSON), "binary" the binary one; allocs/op counts
// both ends (client and node are in this process).
func BenchmarkResolveRPC(b *testing.B) {
	c := nodetest.Start(b, nodetest.Options{Shards: 1, Partitions: 16})
	c.WaitLeader(1)
	codes := createLinks(b, c, 2000)
	for _, wire := range []string{"json", "binary", "binary-pipelined"} {
		for _, par := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/par%d", wire, par), func(b *testing.B) {
				cl := shardrpc.NewClient(c.Config(), shardrpc.ClientOptions{ResolveJSON: wire == "json", ResolveConns: pipelined(wire), IdleConnTimeout: 100 * time.Millisecond})
				defer cl.Close()
				ctx := context.Background()
				if _, err := cl.Resolve(ctx, 1, codes[0]); err != nil {
					b.Fatal(err)
				}
				b.SetParallelism(par)
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
					for pb.Next() {
						code := codes[rng.IntN(len(codes))]
						l, err := cl.Resolve(ctx, 1, code)
						if err != nil || l.Code != code {
							b.Errorf("resolve %s: %+v, %v", code, l, err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkResolveManyRPC measures what coalescing saves a cold redirect:
// shardrpc.Client.Resolve against the cluster of BenchmarkResolveRPC
// (3 nodes in-process, one shard, 2,000 links, uniform draws, local reads)
// from exactly conc goroutines. The client has no switch to turn
// coalescing off, so conc1 and conc2 are the single binary resolve (the
// shard has two resolve slots: one or two callers never find both busy,
// so they never join a batch; conc2 keeps both CPUs busy) and conc64
// (make bench's cold concurrency) the coalesced path, where resolves that
// wait share one multi-resolve. cpu-ns/op is this process's
// user+system CPU, client and all three nodes, per resolve.
func BenchmarkResolveManyRPC(b *testing.B) {
	c := nodetest.Start(b, nodetest.Options{Shards: 1, Partitions: 16})
	c.WaitLeader(1)
	codes := createLinks(b, c, 2000)
	for _, conc := range []int{1, 2, 64} {
		b.Run(fmt.Sprintf("conc%d", conc), func(b *testing.B) {
			cl := shardrpc.NewClient(c.Config(), shardrpc.ClientOptions{IdleConnTimeout: 100 * time.Millisecond})
			defer cl.Close()
			ctx := context.Background()
			if _, err := cl.Resolve(ctx, 1, codes[0]); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := rusageCPU(b)
			for range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
					for next.Add(1) <= int64(b.N) {
						code := codes[rng.IntN(len(codes))]
						l, err := cl.Resolve(ctx, 1, code)
						if err != nil || l.Code != code {
							b.Errorf("resolve %s: %+v, %v", code, l, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(rusageCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// createLinks creates n links in shard 1 through a client and returns
// their codes.
func createLinks(b *testing.B, c *nodetest.Cluster, n int) []string {
	b.Helper()
	cl := shardrpc.NewClient(c.Config(), shardrpc.ClientOptions{IdleConnTimeout: 100 * time.Millisecond})
	defer cl.Close()
	r, err := c.Config().Ring()
	if err != nil {
		b.Fatal(err)
	}
	parts := r.PartitionsOf(1)
	codes := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	const workers = 64
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				l, err := cl.Create(context.Background(), 1, shardrpc.CreateRequest{Partition: parts[i%len(parts)], URL: fmt.Sprintf("https://bench.example/resolve/%d", i)})
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
				codes[i] = l.Code
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	return codes
}

// pipelined is the ClientOptions.ResolveConns of a benchmark's wire.
func pipelined(wire string) int {
	if wire == "binary-pipelined" {
		return 2
	}
	return -1
}
