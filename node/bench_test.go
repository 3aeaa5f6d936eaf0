package node_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
	"github.com/valyala/fasthttp"
)

// BenchmarkCreateRPC measures generated creates through the internal RPC of
// a 3-node cluster's leader (Raft replication, fsync and apply included),
// from parallel keep-alive connections.
func BenchmarkCreateRPC(b *testing.B) {
	c := nodetest.Start(b, nodetest.Options{Shards: 1, Partitions: 16})
	leader := c.WaitLeader(1)
	addr := c.RPCAddr(leader)
	var seq atomic.Int64
	b.SetParallelism(8)
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
