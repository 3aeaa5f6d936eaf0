// Package rafttest runs real raftstore clusters inside a test: N storage
// nodes, each with its own Pebble directory and its own raftmux.Mux on
// 127.0.0.1, hosting replicas of G Raft groups, with a fault network
// (raftmux/faultnet) between the nodes. It is modelled on hashicorp/raft's
// testing.go.
//
//	c := rafttest.New(t, rafttest.Options{Nodes: 3, Groups: 4})
//	l := c.WaitLeader(1)
//	res, err := c.Propose(ctx, 1, rafttest.Put(id, key, value), id)
//	c.StopNode(l)         // clean stop; state stays in its directory
//	c.Isolate(1)          // or Cut, CutOneWay, Blackhole, Delay, Partition
//	c.Heal()
//	c.RestartNode(l)      // same directory, same address
//	c.WaitReplication(1)
//	c.EnsureSame(1)       // replicas byte-for-byte equal
//
// Raft runs with short timeouts (TestRaftConfig). Logs go to t.Log. Every
// wait has a deadline and fails the test with the state of every replica.
// Everything the cluster starts is stopped in t.Cleanup, so goleak passes.
//
// The package also provides KV, a deterministic key/value and counter state
// machine that records every operation ID it applies and flags any operation
// applied twice (Duplicates).
package rafttest
