package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/node"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shardrpc"
)

// TestBatchedCreatesRetried sends concurrent creates that the leader
// coalesces into fewer Raft entries than creates, then retries every one of
// them (again concurrently, so retries share entries too) at the same
// leader and, after a leadership change, at the next one: every retry gets
// the first answer and no request ID makes a second link.
func TestBatchedCreatesRetried(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{Shards: 1})
	r := mustRing(t, c.Config())
	const shard, n = 1, 48
	leader := c.WaitLeader(shard)
	parts := r.PartitionsOf(shard)[:2]
	req := func(i int) shardrpc.CreateRequest {
		return shardrpc.CreateRequest{Partition: parts[i%2], URL: fmt.Sprintf("https://batch.example/%d", i), RequestID: fmt.Sprintf("batch-%d", i)}
	}
	// all sends every create at once and returns the codes.
	all := func() []string {
		codes := make([]string, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				cl := rpc{t: t}
				a, err := cl.atLeader(c, shard, shardrpc.PathCreate, req(i))
				if err != nil || a.status != 200 {
					t.Errorf("create %d: %s, %v", i, a, err)
					return
				}
				codes[i] = a.link(t).Code
			}()
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		return codes
	}

	g := c.Node(leader).Group(shard)
	before := g.Stats().LastIndex
	first := all()
	if entries := g.Stats().LastIndex - before; entries >= n {
		t.Errorf("%d concurrent creates took %d Raft entries: nothing was batched", n, entries)
	}
	seen := map[string]bool{}
	for i, code := range first {
		if seen[code] {
			t.Fatalf("code %s answered twice (create %d)", code, i)
		}
		seen[code] = true
	}

	check := func(what string, codes []string) {
		t.Helper()
		for i := range codes {
			if codes[i] != first[i] {
				t.Fatalf("%s: create %d answered %s, first %s", what, i, codes[i], first[i])
			}
		}
		next := c.WaitLeader(shard)
		var links uint64
		err := c.Node(next).Group(shard).Read(context.Background(), raftstore.ReadLinearizable, func(rd raftstore.Reader) error {
			for _, p := range parts {
				k, err := linkstore.Count(rd, p)
				if err != nil {
					return err
				}
				links += k
			}
			return nil
		})
		if err != nil || links != n {
			t.Fatalf("%s: %d links stored, %v; want %d", what, links, err, n)
		}
	}
	check("retry at the same leader", all())

	if err := g.TransferLeadership(); err != nil {
		t.Fatalf("transfer leadership: %v", err)
	}
	if next := c.WaitLeader(shard); next == leader {
		t.Fatalf("leadership did not move from %s", leader)
	}
	check("retry at the next leader", all())
}

// TestBatchLingerSparesALoneClient: the batcher waits for the clients of
// the proposal that just ended only when more of them are still out; a
// lone client's next create is the one it waits for, so even with a linger
// of an hour each of its creates is proposed at once (a wait would end in
// the node's request timeout, a 503).
func TestBatchLingerSparesALoneClient(t *testing.T) {
	defer node.SetBatchLinger(time.Hour)()
	c := nodetest.Start(t, nodetest.Options{Shards: 1})
	r := mustRing(t, c.Config())
	c.WaitLeader(1)
	p := r.PartitionsOf(1)[0]
	cl := rpc{t: t}
	for i := range 20 {
		leader := c.WaitLeader(1)
		a := cl.call(c.RPCAddr(leader), shardrpc.PathCreate, 1, shardrpc.CreateRequest{Partition: p, URL: fmt.Sprintf("https://alone.example/%d", i), RequestID: fmt.Sprintf("alone-%d", i)})
		if a.status != 200 {
			t.Fatalf("create %d: %s", i, a)
		}
	}
}
