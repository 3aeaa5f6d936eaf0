package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkraft/linkraft/node"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
	"github.com/valyala/fasthttp"
)

// BenchmarkCreateRPC measures generated creates through the internal RPC of
// a 3-node cluster's leader (Raft replication, fsync and apply included),
// from parallel keep-alive connections: "batched" coalesces the creates
// that arrive while a proposal is in flight into one Raft entry (the
// node's default), "single" proposes one entry per create (the previous
// path, kept for this comparison).
func BenchmarkCreateRPC(b *testing.B) {
	for _, mode := range []struct {
		name     string
		batched  bool
		inFlight int
		linger   time.Duration
	}{{"single", false, 0, 0}, {"batched", true, 0, 0}, {"batched-linger", true, 0, 2 * time.Millisecond}, {"batched-inflight4", true, 4, 0}} {
		// Connections per GOMAXPROCS: 8 (16 on 2 cores), 32 (64 on 2
		// cores, make bench's closed-loop shorten run) and 128 (256 on 2
		// cores, the shorten target's concurrency).
		for _, par := range []int{8, 32, 128} {
			b.Run(fmt.Sprintf("%s/par%d", mode.name, par), func(b *testing.B) {
				restore := node.SetCreateBatching(mode.batched, mode.inFlight)
				defer restore()
				defer node.SetBatchLinger(mode.linger)()
				benchmarkCreateRPC(b, par)
			})
		}
	}
}

func benchmarkCreateRPC(b *testing.B, parallelism int) {
	c := nodetest.Start(b, nodetest.Options{Shards: 1, Partitions: 16})
	leader := c.WaitLeader(1)
	addr := c.RPCAddr(leader)
	var seq atomic.Int64
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		br, bw := bufio.NewReader(conn), bufio.NewWriter(conn)
		var req fasthttp.Request
		var resp fasthttp.Response
		for pb.Next() {
			i := seq.Add(1)
			body, _ := json.Marshal(shardrpc.CreateRequest{Partition: uint32(i % 16), URL: fmt.Sprintf("https://bench.example/%d", i), RequestID: strconv.FormatInt(i, 10)})
			req.Reset()
			req.Header.SetMethod(fasthttp.MethodPost)
			req.SetRequestURI("http://" + addr + shardrpc.PathCreate)
			req.Header.Set(shardrpc.HeaderShard, "1")
			req.SetBody(body)
			if err := req.Write(bw); err != nil {
				b.Error(err)
				return
			}
			if err := bw.Flush(); err != nil {
				b.Error(err)
				return
			}
			if err := resp.Read(br); err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode() != 200 {
				b.Errorf("create: %d %s", resp.StatusCode(), resp.Body())
				return
			}
		}
	})
}

// BenchmarkBulkCreateRPC measures generated creates sent as bulk creates
// of 32 items (a router's coalesced batch) by a shardrpc.Client to a
// 3-node cluster (in-process: the client's encoding and decoding, Raft
// replication, fsync and apply are all in the numbers), 8 bulks in flight
// (router/createbatch.go's bound per shard), over the JSON call and the
// binary one (shardrpc/bulkwire.go). One op is one create; cpu-ns/op is
// the CPU of the whole process (client and the three nodes) per create.
func BenchmarkBulkCreateRPC(b *testing.B) {
	for _, wire := range []string{"json", "binary"} {
		b.Run(wire, func(b *testing.B) {
			c := nodetest.Start(b, nodetest.Options{Shards: 1, Partitions: 16})
			c.WaitLeader(1)
			cl := shardrpc.NewClient(c.Config(), shardrpc.ClientOptions{BulkCreateJSON: wire == "json", IdleConnTimeout: 100 * time.Millisecond})
			defer cl.Close()
			const perBulk = 32
			var seq atomic.Int64
			b.SetParallelism(max(8/runtime.GOMAXPROCS(0), 1))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := rusageCPU(b)
			b.RunParallel(func(pb *testing.PB) {
				items := make([]shardrpc.CreateRequest, 0, perBulk)
				send := func() bool {
					if len(items) == 0 {
						return true
					}
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					res, err := cl.BulkCreate(ctx, 1, items)
					if err != nil {
						b.Error(err)
						return false
					}
					for _, r := range res {
						if r.Link == nil {
							b.Errorf("bulk item: %+v", r.Error)
							return false
						}
					}
					items = items[:0]
					return true
				}
				for pb.Next() {
					i := seq.Add(1)
					items = append(items, shardrpc.CreateRequest{Partition: uint32(i % 16), URL: fmt.Sprintf("https://bench.example/%d", i),
						RequestID: "bulk-" + strconv.FormatInt(i, 10), Title: "a bench link", Owner: "bench"})
					if len(items) == perBulk && !send() {
						return
					}
				}
				send()
			})
			b.ReportMetric(float64(rusageCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
