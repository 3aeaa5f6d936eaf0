package robust

import (
	"context"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/linkraft/linkraft/proctest"
)

func TestMain(m *testing.M) {
	os.Exit(proctest.Main(m))
}

// procCluster is a cluster of real linkraft processes (package proctest):
// 3 nodes and a router, with a faultproxy on every connection between
// them, so a scenario can cut any link, kill -9, SIGSTOP and restart
// nodes, and (with Options.DiskFaults) fail or stall a node's disk.
type procCluster struct {
	*proctest.Cluster
	ids []string // the node IDs
}

func startProcCluster(t *testing.T) *procCluster {
	t.Helper()
	return startProcClusterOpts(t, proctest.Options{})
}

// startProcClusterOpts starts a proctest cluster with opts and a proxy on
// every connection.
func startProcClusterOpts(t *testing.T, opts proctest.Options) *procCluster {
	t.Helper()
	opts.Proxies = true
	c := proctest.Start(t, opts)
	return &procCluster{Cluster: c, ids: c.NodeIDs()}
}

func (c *procCluster) routerURL() string { return c.URL("r1") }

// heal undoes every fault, resumes every paused node and restarts every
// node that is down.
func (c *procCluster) heal() { c.Heal() }

// waitReady waits until the router reaches a leader of every shard.
func (c *procCluster) waitReady() { c.WaitReady("r1") }

// TestLeaderKillLoop kills (SIGKILL) the process leading a random shard,
// restarts it on its data after a moment, and again, while the workload
// runs against real processes.
func TestLeaderKillLoop(t *testing.T) {
	seed := seedFor(t)
	c := startProcCluster(t)
	scenario(t, seed, c, run{duration: scenarioTime}, func(ctx context.Context, rng *rand.Rand) {
		for ctx.Err() == nil {
			shard := uint64(1 + rng.IntN(3))
			leader := c.Leader(shard)
			if leader == "" {
				if !pause(ctx, 100*time.Millisecond) {
					return
				}
				continue
			}
			t.Logf("kill -9 %s, leader of shard %d", leader, shard)
			c.Kill(leader)
			pause(ctx, time.Duration(200+rng.IntN(800))*time.Millisecond)
			c.Restart(leader) // also after ctx ends: never leave a node down
			if !pause(ctx, time.Duration(800+rng.IntN(1200))*time.Millisecond) {
				return
			}
		}
	})
}

// TestMinorityPartition cuts one node at a time off the other two at the
// Raft level (the leader of a random shard, half of the time), for longer
// than an election: the majority elects a new leader while the isolated
// node may still believe it leads. Half of the time the router can still
// reach the isolated node, so it must not serve stale answers from it.
func TestMinorityPartition(t *testing.T) {
	seed := seedFor(t)
	c := startProcCluster(t)
	scenario(t, seed, c, run{duration: scenarioTime}, func(ctx context.Context, rng *rand.Rand) {
		for ctx.Err() == nil {
			id := c.ids[rng.IntN(len(c.ids))]
			if rng.IntN(2) == 0 {
				if l := c.Leader(uint64(1 + rng.IntN(3))); l != "" {
					id = l
				}
			}
			fromRouter := rng.IntN(2) == 0
			t.Logf("partition %s from the other nodes (and from the router: %v)", id, fromRouter)
			c.Isolate(id, fromRouter)
			pause(ctx, time.Duration(1000+rng.IntN(1500))*time.Millisecond)
			t.Logf("leaders during the partition: %v", c.Leaders())
			c.heal()
			if !pause(ctx, time.Duration(500+rng.IntN(1000))*time.Millisecond) {
				return
			}
		}
	})
}
