package node_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/linkraft/linkraft/clicks"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
)

// BenchmarkClicksRPC flushes click batches of 5,000 codes (3 clicks each,
// from a mix of agents, referrers and visitors) to the leader of a
// 3-replica shard, as a router does every second under the cold workload:
// the RPC's decode and checks, the proposal, replication and the apply on
// all three replicas (command decode, clickstore.Apply through the
// replica's memo, commit). One op is one batch; cpu-ns/code is the whole
// process's CPU time (the three nodes and the client) per code.
func BenchmarkClicksRPC(b *testing.B) {
	const codes, warm, distinct = 5000, 2, 8
	c := nodetest.Start(b, nodetest.Options{Shards: 1, Partitions: 16})
	r, err := c.Config().Ring()
	if err != nil {
		b.Fatal(err)
	}
	c.WaitLeaders()
	cl := shardrpc.NewClient(c.Config(), shardrpc.ClientOptions{IdleConnTimeout: 100 * time.Millisecond})
	b.Cleanup(cl.Close)

	ps := r.PartitionsOf(1)
	names := make([][]byte, codes)
	for i := range names {
		lo, _ := r.Codec().Range(ps[i%len(ps)])
		names[i] = []byte(r.Codec().Encode(lo + uint64(i)))
	}
	hasher := clicks.NewVisitorHasher(clicks.VisitorKey("bench"))
	classifier := clicks.NewClassifier(0)
	agents := []clicks.Agent{
		classifier.Classify([]byte("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")),
		classifier.Classify([]byte("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1")),
	}
	refs := [][]byte{nil, []byte("news.example.com"), []byte("t.co"), nil, []byte("www.google.com")}
	day := clicks.DayOf(time.Now())
	batches := make([][]clicks.Delta, warm+distinct)
	for s := range batches {
		counter := clicks.NewCounter(func([]byte) uint64 { return 1 })
		for i, code := range names {
			for j := range 3 {
				k := i*3 + j + s
				counter.Record(code, clicks.ClickInfo{Day: day, Referrer: refs[k%len(refs)], Agent: agents[k%len(agents)],
					Visitor: hasher.Sum(fmt.Appendf(nil, "10.0.%d.%d", k/256%4, k%256), nil)})
			}
		}
		batches[s] = counter.Drain()[1]
	}
	seq := uint64(0)
	flushOne := func(deltas []clicks.Delta) {
		seq++
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cl.FlushClicks(ctx, 1, clicks.Batch{Router: "bench", Seq: seq, Deltas: deltas}); err != nil {
			b.Fatal(err)
		}
	}
	for _, d := range batches[:warm] {
		flushOne(d)
	}
	b.ReportAllocs()
	cpu0 := rusageCPU(b)
	b.ResetTimer()
	for i := range b.N {
		flushOne(batches[warm+i%distinct])
	}
	b.StopTimer()
	b.ReportMetric(float64(rusageCPU(b)-cpu0)/float64(b.N*codes), "cpu-ns/code")
}

// rusageCPU returns the CPU time (user + system) of this process so far.
func rusageCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
