package node_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/linkraft/linkraft/clicks"
	"github.com/linkraft/linkraft/clickstore"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/raftstore/rafttest"
	"github.com/linkraft/linkraft/ring"
	"github.com/linkraft/linkraft/shardrpc"
)

// codeIn returns a generated-shape code placed in shard (clicks are not
// checked against links by the shard, so no link is needed).
func codeIn(t *testing.T, r *ring.Ring, shard uint64, i int) string {
	t.Helper()
	p := partitionOf(t, r, shard, i)
	lo, _ := r.Codec().Range(p)
	return r.Codec().Encode(lo + uint64(i))
}

func clickBatchFor(router string, seq uint64, code string, day clicks.Day, humans, bots uint64) clicks.Batch {
	return clicks.Batch{Router: router, Seq: seq, Deltas: []clicks.Delta{{
		Code: code, Day: day, Clicks: humans, Bots: bots,
		Browsers: []clicks.Count{{Key: "Firefox", N: humans}},
	}}}
}

func statsOf(t *testing.T, cl *shardrpc.Client, shard uint64, code string, day clicks.Day) clicks.Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := cl.Stats(ctx, shard, shardrpc.StatsRequest{Code: code, From: day.String(), To: day.String()})
	if err != nil {
		t.Fatalf("stats of %s: %v", code, err)
	}
	return st
}

func flush(t *testing.T, cl *shardrpc.Client, shard uint64, b clicks.Batch) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.FlushClicks(ctx, shard, b); err != nil {
		t.Fatalf("flush %s/%d: %v", b.Router, b.Seq, err)
	}
}

func TestClicksAppliedOnceAcrossRetriesAndRestarts(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{Raft: func(rc *raft.Config) {
		rafttest.TestRaftConfig(rc)
		rc.TrailingLogs = 2 // a snapshot leaves a stopped follower behind the log
	}})
	r, cl := clusterClient(t, c)
	day := clicks.DayOf(time.Now())

	code1, code2 := codeIn(t, r, 1, 0), codeIn(t, r, 2, 1)
	b1 := clickBatchFor("r1", 100, code1, day, 5, 2)
	flush(t, cl, 1, b1)
	flush(t, cl, 1, b1) // a retry: same (router, seq)
	flush(t, cl, 1, clickBatchFor("r2", 100, code1, day, 3, 0))
	flush(t, cl, 2, clickBatchFor("r1", 101, code2, day, 7, 0))
	if st := statsOf(t, cl, 1, code1, day); st.Clicks != 8 || st.Bots != 2 || st.TotalClicks != 8 {
		t.Fatalf("shard 1 stats: %+v", st)
	}
	if st := statsOf(t, cl, 2, code2, day); st.Clicks != 7 || st.Browsers[0] != (clicks.Count{Key: "Firefox", N: 7}) {
		t.Fatalf("shard 2 stats: %+v", st)
	}

	// A wrong shard, a bad body and a bad range are refused.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.FlushClicks(ctx, 2, clickBatchFor("r1", 102, code1, day, 1, 0)); err == nil {
		t.Fatal("a code of shard 1 was accepted by shard 2")
	}
	if _, err := cl.Stats(ctx, 1, shardrpc.StatsRequest{Code: code1, From: "2026-01-02", To: "2026-01-01"}); err == nil {
		t.Fatal("an inverted range was accepted")
	}
	if a := (rpc{t: t}).call(c.RPCAddr(c.WaitLeader(1)), shardrpc.PathClicks, 1, []byte{1, 2, 3}); a.status != 400 {
		t.Fatalf("garbage batch: %s", a)
	}

	// Restart every node: nothing is applied twice on replay.
	for _, id := range c.NodeIDs() {
		c.RestartNode(id)
	}
	c.WaitLeaders()
	flush(t, cl, 1, b1) // still a duplicate after the restarts
	if st := statsOf(t, cl, 1, code1, day); st.Clicks != 8 || st.TotalClicks != 8 {
		t.Fatalf("after restart: %+v", st)
	}

	// A follower that misses batches catches up by a snapshot install and
	// holds exactly the leader's counts.
	leader := c.WaitLeader(1)
	var lagging string
	for _, id := range c.NodeIDs() {
		if id != leader {
			lagging = id
			break
		}
	}
	c.StopNode(lagging)
	for i := range 5 {
		flush(t, cl, 1, clickBatchFor("r1", uint64(200+i), code1, day, 1, 0))
	}
	leader = c.WaitLeader(1)
	if err := c.Node(leader).Group(1).Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	c.StartNode(lagging)
	want := statsOf(t, cl, 1, code1, day)
	if want.Clicks != 13 {
		t.Fatalf("leader after snapshot: %+v", want)
	}
	p := r.PartitionOfCode(code1)
	c.Eventually("the restarted follower to hold the leader's clicks", func() error {
		n := c.Node(lagging)
		if n == nil {
			return fmt.Errorf("node %s not running", lagging)
		}
		var got clicks.Stats
		err := n.Group(1).Read(context.Background(), raftstore.ReadLocal, func(rd raftstore.Reader) error {
			var err error
			got, err = clickstore.Query(rd, p, code1, day, day)
			return err
		})
		if err != nil {
			return err
		}
		if snap := n.Group(1).Raft().Stats()["last_snapshot_index"]; snap == "0" {
			return fmt.Errorf("follower has installed no snapshot")
		}
		if got.Clicks != want.Clicks || got.TotalClicks != want.TotalClicks {
			return fmt.Errorf("follower has %d clicks, leader %d", got.Clicks, want.Clicks)
		}
		return nil
	})
	// Old batches stay duplicates on the new state too.
	flush(t, cl, 1, clickBatchFor("r1", 203, code1, day, 1, 0))
	if st := statsOf(t, cl, 1, code1, day); st.Clicks != 13 {
		t.Fatalf("after a re-sent batch: %+v", st)
	}
}
