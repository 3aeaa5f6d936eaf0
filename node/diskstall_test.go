package node_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/linkraft/linkraft/diskfault"
	"github.com/linkraft/linkraft/node"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
	"github.com/valyala/fasthttp"
)

// TestDiskStallMovesLeadership stalls every write of a shard leader's disk
// (its Pebble DB runs on a diskfault.FS) while a create is waiting on it.
// The node must notice, refuse leader work at once, and lose the
// leadership of every shard it led to the other two, which then
// acknowledge creates while the disk is still stalled. After the stall the
// node is still running, serves again, and has every link.
func TestDiskStallMovesLeadership(t *testing.T) {
	var (
		mu    sync.Mutex
		disks = make(map[string]*diskfault.FS)
		fatal []string
	)
	c := nodetest.Start(t, nodetest.Options{
		NodeOptions: func(id string, o *node.Options) {
			fs := diskfault.Wrap(vfs.Default)
			mu.Lock()
			disks[id] = fs
			mu.Unlock()
			o.FS = fs
			o.DiskHealth = node.DiskHealth{Threshold: 500 * time.Millisecond}
			o.Fatal = func(msg string) {
				mu.Lock()
				fatal = append(fatal, id+": "+msg)
				mu.Unlock()
			}
		},
	})
	r := mustRing(t, c.Config())
	cl := rpc{t: t}
	leaders := c.WaitLeaders()
	const shard = 1
	victim := leaders[shard]
	var led []uint64
	for s, l := range leaders {
		if l == victim {
			led = append(led, s)
		}
	}
	first := cl.createAtLeader(c, shard, shardrpc.CreateRequest{Partition: partitionOf(t, r, shard, 0), URL: "https://before.example/", RequestID: "before"})
	if first.status != fasthttp.StatusOK {
		t.Fatalf("create before the stall: %s", first)
	}
	firstCode := first.link(t).Code

	mu.Lock()
	fs := disks[victim]
	mu.Unlock()
	t.Logf("stalling the disk of %s, leader of shards %v", victim, led)
	stalled := time.Now()
	fs.StallWrites()
	defer fs.Heal() // the cluster's cleanup needs a working disk

	// A create reaching the victim now waits for its disk (outcome
	// unknown to the caller); it must not keep the leadership there.
	blocked := make(chan answer, 1)
	go func() {
		a, err := cl.do(c.RPCAddr(victim), fasthttp.MethodPost, shardrpc.PathCreate, shard,
			shardrpc.CreateRequest{Partition: partitionOf(t, r, shard, 1), URL: "https://during.example/", RequestID: "blocked"})
		if err != nil {
			a = answer{status: -1, body: []byte(err.Error())}
		}
		blocked <- a
	}()

	// Every shard the victim led gets a leader among the other two.
	newLeader := make(map[uint64]string)
	c.Eventually("the shards of the stalled node led elsewhere", func() error {
		for _, s := range led {
			newLeader[s] = ""
			for _, id := range c.Running() {
				if g := c.Node(id).Group(s); id != victim && g != nil && g.IsLeader() {
					newLeader[s] = id
				}
			}
			if newLeader[s] == "" {
				return fmt.Errorf("shard %d: no leader besides %s", s, victim)
			}
		}
		return nil
	})
	t.Logf("leadership moved %s after the stall began: %v", time.Since(stalled).Round(time.Millisecond), newLeader)
	if fs.Mode() != diskfault.Stalled || fs.Stalled() == 0 {
		t.Fatalf("the disk is not stalled any more (mode %s, %d writes blocked): the test proves nothing", fs.Mode(), fs.Stalled())
	}

	// The stalled node refuses leader work at once and says so.
	a := cl.call(c.RPCAddr(victim), shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: partitionOf(t, r, shard, 2), URL: "https://refused.example/", RequestID: "refused"})
	if a.status != fasthttp.StatusMisdirectedRequest || a.errorBody(t).Code != shardrpc.ErrCodeNotLeader || a.errorBody(t).LeaderID != "" {
		t.Fatalf("create at the stalled node: %s, want 421 not_leader naming no leader", a)
	}
	for _, call := range []struct {
		path string
		body any
	}{
		{shardrpc.PathDelete, shardrpc.DeleteRequest{Code: firstCode}},
		{shardrpc.PathClicks, []byte("x")},
		{shardrpc.PathStats, struct{}{}},
		{shardrpc.PathList, struct{}{}},
		{shardrpc.PathResolve, shardrpc.ResolveRequest{Code: firstCode, Linearizable: true}},
		{shardrpc.PathResolveBinary, shardrpc.AppendResolveRequest(nil, firstCode, true)},
	} {
		if a := cl.call(c.RPCAddr(victim), call.path, shard, call.body); a.status != fasthttp.StatusMisdirectedRequest || a.errorBody(t).Code != shardrpc.ErrCodeNotLeader {
			t.Errorf("%s at the stalled node: %s, want 421 not_leader", call.path, a)
		}
	}
	// A local read is still served: reads need no disk write.
	if a := cl.call(c.RPCAddr(victim), shardrpc.PathResolve, shard, shardrpc.ResolveRequest{Code: firstCode}); a.status != fasthttp.StatusOK {
		t.Errorf("local resolve at the stalled node: %s, want 200", a)
	}
	if a := cl.call(c.RPCAddr(victim), shardrpc.PathResolveBinary, shard, shardrpc.AppendResolveRequest(nil, firstCode, false)); a.status != fasthttp.StatusOK {
		t.Errorf("local binary resolve at the stalled node: %s, want 200", a)
	}
	var st shardrpc.Status
	if a := cl.call(c.RPCAddr(victim), shardrpc.PathStatus, shard, struct{}{}); a.status != fasthttp.StatusOK {
		t.Fatalf("status at the stalled node: %s", a)
	} else if err := json.Unmarshal(a.body, &st); err != nil {
		t.Fatal(err)
	}
	if st.State != shardrpc.StateDiskStalled || st.LeaderID == victim {
		t.Fatalf("status at the stalled node: %+v, want state %s and not itself as leader", st, shardrpc.StateDiskStalled)
	}

	// Creates are acknowledged by the new leaders while the disk stalls
	// (at whichever other node leads now: a loaded machine may see one
	// more election; retries carry the same request ID).
	var codes []string
	for _, s := range led {
		for i := range 3 {
			req := shardrpc.CreateRequest{Partition: partitionOf(t, r, s, i), URL: fmt.Sprintf("https://stall.example/%d/%d", s, i), RequestID: fmt.Sprintf("stall-%d-%d", s, i)}
			var last answer
			c.Eventually(fmt.Sprintf("create %s acknowledged by a leader of shard %d other than %s", req.RequestID, s, victim), func() error {
				for _, id := range c.Running() {
					if g := c.Node(id).Group(s); id == victim || g == nil || !g.IsLeader() {
						continue
					}
					a, err := cl.do(c.RPCAddr(id), fasthttp.MethodPost, shardrpc.PathCreate, s, req)
					if err != nil {
						return err
					}
					if last = a; a.status != fasthttp.StatusOK {
						return fmt.Errorf("%s answered %s", id, a)
					}
					return nil
				}
				return fmt.Errorf("no leader besides %s", victim)
			})
			codes = append(codes, last.link(t).Code)
		}
	}
	if fs.Mode() != diskfault.Stalled {
		t.Fatal("the disk recovered before the creates: the test proves nothing")
	}
	t.Logf("%d creates acknowledged during the stall, %s after it began", len(codes), time.Since(stalled).Round(time.Millisecond))

	fs.Resume()
	select {
	case a := <-blocked:
		t.Logf("the create blocked on the stalled disk answered %s", a)
	case <-time.After(30 * time.Second):
		t.Fatal("the create blocked on the stalled disk never answered")
	}
	// The node recovers: it serves again, and catches up.
	c.Eventually("the victim to report a healthy disk", func() error {
		a, err := cl.do(c.RPCAddr(victim), fasthttp.MethodPost, shardrpc.PathStatus, shard, struct{}{})
		if err != nil {
			return err
		}
		var st shardrpc.Status
		if err := json.Unmarshal(a.body, &st); err != nil {
			return err
		}
		if st.State == shardrpc.StateDiskStalled {
			return fmt.Errorf("still %s", st.State)
		}
		return nil
	})
	for _, s := range led {
		c.WaitLeader(s)
		c.WaitApplied(s, c.Node(c.Leader(s)).Group(s).AppliedIndex())
	}
	for _, code := range codes {
		s := r.ShardOf(r.PartitionOfCode(code))
		a := cl.call(c.RPCAddr(victim), shardrpc.PathResolve, s, shardrpc.ResolveRequest{Code: code})
		if a.status != fasthttp.StatusOK {
			t.Errorf("resolve %s at %s after the stall: %s", code, victim, a)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(fatal) > 0 {
		t.Fatalf("a node fail-stopped during a short stall: %q", fatal)
	}
}
