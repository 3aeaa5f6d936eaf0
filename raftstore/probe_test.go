package raftstore

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestProbeAndJoin follows a group's state on disk from nothing to a group
// that ran (Probe), and a replica that joins it empty (GroupConfig.Join)
// as a non-voter, catches up and is made a voter again.
func TestProbeAndJoin(t *testing.T) {
	nodes, peers := newTestNodes(t, 3, nil)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	// n3 opens its store without the group: nothing there.
	layer := newTCPLayer(t, n3.addr)
	s3, err := Open(Options{NodeID: n3.id, Dir: n3.dir, Network: testNet{testGroup: layer}, Logger: testLogger(t).Named(n3.id), Raft: fastRaft, TransportTimeout: 2 * time.Second})
	if err != nil {
		_ = layer.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s3.Close() })
	if p, err := s3.Probe(testGroup); err != nil || p.HasState || p.Ran() {
		t.Fatalf("probe of a group never opened: %+v, %v", p, err)
	}

	// n1 and n2 bootstrap the group with all three as voters and run it.
	n1.start(peers)
	n2.start(peers)
	leader := waitLeader(t, []*testNode{n1, n2})
	for i := range 10 {
		propose(t, leader.group, "k"+string(rune('a'+i)), "")
	}
	p, err := n1.store.Probe(testGroup)
	if err != nil || !p.HasState || !p.Ran() || p.LastIndex < 12 || p.Term < 2 || p.Applied == 0 {
		t.Fatalf("probe of a running group: %+v, %v", p, err)
	}

	// The leader takes n3's vote (it is down, empty) before n3 starts.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 2 { // idempotent
		if err := leader.group.DemoteVoter(ctx, n3.id); err != nil {
			t.Fatal(err)
		}
	}
	if err := leader.group.AddNonvoter(ctx, n3.id, n3.addr); err != nil {
		t.Fatal(err)
	}
	follower := n1
	if leader == n1 {
		follower = n2
	}
	if err := follower.group.DemoteVoter(ctx, n3.id); !isNotLeader(err) {
		t.Fatalf("demote at a follower: %v", err)
	}
	conf, _, err := leader.group.Configuration()
	if err != nil {
		t.Fatal(err)
	}
	if suffrageOf(conf, n3.id) != raft.Nonvoter || suffrageOf(conf, n1.id) != raft.Voter {
		t.Fatalf("configuration after the demotion: %+v", conf.Servers)
	}

	// n3 joins without bootstrapping and catches up.
	g3, err := s3.OpenGroup(GroupConfig{ID: testGroup, Machine: &counterMachine{}, Join: true})
	if err != nil {
		t.Fatal(err)
	}
	commit := leader.group.Raft().CommitIndex()
	waitFor(t, 10*time.Second, "n3 to catch up", func() bool { return g3.Raft().AppliedIndex() >= commit })
	if g3.IsLeader() {
		t.Fatal("a non-voter leads")
	}
	if err := leader.group.AddVoter(ctx, n3.id, n3.addr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "n3 to know it is a voter", func() bool {
		c, _, err := g3.Configuration()
		return err == nil && suffrageOf(c, n3.id) == raft.Voter
	})
	want := groupState(t, leader.store.DB(), testGroup)
	waitFor(t, 10*time.Second, "n3's state to match the leader's", func() bool {
		return groupState(t, s3.DB(), testGroup) == want
	})
	if p, err := s3.Probe(testGroup); err != nil || !p.Ran() {
		t.Fatalf("probe of the joined replica: %+v, %v", p, err)
	}
}

func suffrageOf(c raft.Configuration, id string) raft.ServerSuffrage {
	for _, s := range c.Servers {
		if string(s.ID) == id {
			return s.Suffrage
		}
	}
	return -1
}

func isNotLeader(err error) bool {
	_, ok := err.(*NotLeaderError)
	return ok
}
