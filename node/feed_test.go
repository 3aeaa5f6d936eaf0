package node_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/raftstore/rafttest"
	"github.com/linkraft/linkraft/shardrpc"
)

// TestChangesFeedOnCluster: the change feed lists deletes and edits after
// the caller's position, continues without a reset across a leader change
// (followers keep the changes too), answers a reset to a position ahead of
// the group, and answers at the wait's end when nothing changed.
func TestChangesFeedOnCluster(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r, cl := clusterClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const shard = 1

	first, err := cl.Changes(ctx, shard, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	pos := first.Index
	// changesUntil polls from pos until the codes want arrived (in order),
	// and returns the new position; no answer may be a reset.
	changesUntil := func(want ...string) {
		t.Helper()
		var got []string
		for len(got) < len(want) {
			ch, err := cl.Changes(ctx, shard, pos, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Reset {
				t.Fatalf("reset from %d to %d", pos, ch.Index)
			}
			for _, e := range ch.Events {
				if e.Index <= pos || e.Index > ch.Index {
					t.Fatalf("event %d outside (%d, %d]", e.Index, pos, ch.Index)
				}
				got = append(got, e.Code)
			}
			pos = ch.Index
		}
		if !slices.Equal(got, want) {
			t.Fatalf("changes %q, want %q", got, want)
		}
	}

	p := partitionOf(t, r, shard, 0)
	var codes []string
	for i := range 3 {
		l, err := cl.Create(ctx, shard, shardrpc.CreateRequest{Partition: p, URL: fmt.Sprintf("https://example.com/feed/%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, l.Code)
	}
	// A long poll answers at once when a change arrives, with nothing
	// but the change (creates are not changes).
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := cl.Delete(ctx, shard, codes[0])
		done <- err
	}()
	changesUntil(codes[0])
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("the change took %v to arrive; the long poll waits 1s without one", d)
	}
	newURL := "https://example.com/feed/edited"
	if _, err := cl.Edit(ctx, shard, shardrpc.EditRequest{Code: codes[1], URL: &newURL}); err != nil {
		t.Fatal(err)
	}
	changesUntil(codes[1])

	// The same position at a new leader: no reset.
	leader := c.WaitLeader(shard)
	c.StopNode(leader)
	if _, err := cl.Delete(ctx, shard, codes[2]); err != nil {
		t.Fatal(err)
	}
	changesUntil(codes[2])

	// Nothing changed: the answer comes after the wait, at the position.
	ch, err := cl.Changes(ctx, shard, pos, 200*time.Millisecond)
	if err != nil || ch.Reset || len(ch.Events) != 0 || ch.Index < pos {
		t.Fatalf("idle poll from %d: %+v %v", pos, ch, err)
	}
	// A position ahead of the group (another incarnation): a reset.
	ch, err = cl.Changes(ctx, shard, pos+1_000_000, 0)
	if err != nil || !ch.Reset || ch.Index >= pos+1_000_000 {
		t.Fatalf("poll from ahead: %+v %v", ch, err)
	}
}

// TestChangesFeedResetsAfterSnapshotInstall: a follower that caught up by
// a snapshot install never applied the entries the snapshot covers, so it
// cannot list their changes: once it leads, a feed position from before the
// install gets a reset, never an answer without the delete it missed.
func TestChangesFeedResetsAfterSnapshotInstall(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{Raft: func(rc *raft.Config) {
		rafttest.TestRaftConfig(rc)
		rc.TrailingLogs = 2 // a snapshot leaves a stopped follower behind the log
	}})
	r, cl := clusterClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const shard = 1
	p := partitionOf(t, r, shard, 0)
	create := func(i int) string {
		t.Helper()
		l, err := cl.Create(ctx, shard, shardrpc.CreateRequest{Partition: p, URL: fmt.Sprintf("https://example.com/snap/%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		return l.Code
	}
	gone := create(0)
	ch, err := cl.Changes(ctx, shard, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	pos := ch.Index

	leader := c.WaitLeader(shard)
	lagging := follower(t, c, shard, leader)
	c.StopNode(lagging)
	if _, err := cl.Delete(ctx, shard, gone); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		create(i)
	}
	if err := c.Node(leader).Group(shard).Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	c.StartNode(lagging)
	c.Eventually("the restarted follower to install the snapshot", func() error {
		g := c.Node(lagging).Group(shard)
		if g == nil {
			return fmt.Errorf("no group")
		}
		if st := g.Stats(); st.SnapshotRestores == 0 || st.AppliedIndex < c.Node(leader).Group(shard).AppliedIndex() {
			return fmt.Errorf("%d restores, applied %d", st.SnapshotRestores, st.AppliedIndex)
		}
		return nil
	})
	// Make the follower lead: stop the leader; if the third replica wins,
	// it hands over to the only other voter left.
	c.StopNode(leader)
	c.Eventually("the restored follower to lead", func() error {
		l := c.Leader(shard)
		switch l {
		case "", leader:
			return fmt.Errorf("no new leader yet")
		case lagging:
			return nil
		}
		if err := c.Node(l).Group(shard).TransferLeadership(); err != nil {
			return fmt.Errorf("transfer from %s: %w", l, err)
		}
		return fmt.Errorf("%s led; handed over", l)
	})
	ch, err = cl.Changes(ctx, shard, pos, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Reset {
		t.Fatalf("changes after %d from the restored replica: %+v, want a reset (the delete of %s came by snapshot)", pos, ch, gone)
	}
	// From the reset's index on, the feed goes on.
	pos = ch.Index
	other := create(6)
	if _, err := cl.Delete(ctx, shard, other); err != nil {
		t.Fatal(err)
	}
	ch, err = cl.Changes(ctx, shard, pos, time.Second)
	if err != nil || ch.Reset || len(ch.Events) != 1 || ch.Events[0].Code != other {
		t.Fatalf("changes after the reset: %+v %v", ch, err)
	}
}
