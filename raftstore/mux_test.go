package raftstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/linkraft/linkraft/raftmux"
)

var _ Network = (*raftmux.Mux)(nil)

// TestMultiGroupOverMux runs two groups on three nodes, each node with one
// Store (one Pebble DB) and one raftmux listener for both groups.
func TestMultiGroupOverMux(t *testing.T) {
	type node struct {
		mux      *raftmux.Mux
		store    *Store
		groups   map[uint64]*Group
		machines map[uint64]*counterMachine
	}
	nodes := make([]*node, 3)
	peers := make([]raft.Server, 3)
	for i := range nodes {
		m, err := raftmux.Listen("127.0.0.1:0", raftmux.WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = &node{mux: m, groups: map[uint64]*Group{}, machines: map[uint64]*counterMachine{}}
		peers[i] = raft.Server{ID: raft.ServerID(fmt.Sprintf("n%d", i+1)), Address: raft.ServerAddress(m.Addr().String())}
	}
	for i, n := range nodes {
		s, err := Open(Options{NodeID: string(peers[i].ID), Dir: t.TempDir(), Network: n.mux, Logger: testLogger(t), Raft: fastRaft})
		if err != nil {
			t.Fatal(err)
		}
		n.store = s
		// Close the store (its transports) before the mux.
		t.Cleanup(func() {
			_ = s.Close()
			_ = n.mux.Close()
		})
		for _, id := range []uint64{1, 2} {
			n.machines[id] = &counterMachine{}
			g, err := s.OpenGroup(GroupConfig{ID: id, Peers: peers, Machine: n.machines[id]})
			if err != nil {
				t.Fatal(err)
			}
			n.groups[id] = g
		}
	}
	groupsOf := func(id uint64) []*Group {
		var gs []*Group
		for _, n := range nodes {
			gs = append(gs, n.groups[id])
		}
		return gs
	}
	for i := 0; i < 20; i++ {
		clusterPropose(t, groupsOf(1), "one", "")
		if i%2 == 0 {
			clusterPropose(t, groupsOf(2), "two", "")
		}
	}
	for _, id := range []uint64{1, 2} {
		var want uint64
		for _, g := range groupsOf(id) {
			want = max(want, g.AppliedIndex())
		}
		for _, n := range nodes {
			waitFor(t, 5*time.Second, "replication", func() bool { return n.groups[id].AppliedIndex() >= want })
		}
		ref := groupState(t, nodes[0].store.DB(), id)
		for _, n := range nodes[1:] {
			if groupState(t, n.store.DB(), id) != ref {
				t.Fatalf("group %d differs between nodes", id)
			}
		}
	}
	for _, n := range nodes {
		if c, _ := readCount(t, n.groups[1], ReadLocal, "one"); c != 20 {
			t.Fatalf("group 1 count %d, want 20", c)
		}
		if c, _ := readCount(t, n.groups[2], ReadLocal, "one"); c != 0 {
			t.Fatalf("group 2 sees group 1's key (%d)", c)
		}
		if c, _ := readCount(t, n.groups[2], ReadLocal, "two"); c != 10 {
			t.Fatalf("group 2 count %d, want 10", c)
		}
	}
	// Closing one group leaves the other running on the same mux.
	for _, n := range nodes {
		if err := n.store.CloseGroup(2); err != nil {
			t.Fatal(err)
		}
	}
	clusterPropose(t, groupsOf(1), "one", "")
	// And it reopens from its state on the same mux.
	for _, n := range nodes {
		g, err := n.store.OpenGroup(GroupConfig{ID: 2, Peers: peers, Machine: &counterMachine{}})
		if err != nil {
			t.Fatal(err)
		}
		n.groups[2] = g
	}
	clusterPropose(t, groupsOf(2), "two", "")
	if c := clusterRead(t, groupsOf(2), "two"); c != 11 {
		t.Fatalf("group 2 after reopening: %d, want 11", c)
	}
}
