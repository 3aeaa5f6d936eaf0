package robust

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

// scenarioTime is how long each scenario's workload runs.
const scenarioTime = 6 * time.Second

// TestBaseline runs the workload without faults: the history must be clean
// and most operations definite.
func TestBaseline(t *testing.T) {
	seed := seedFor(t)
	c := startCluster(t)
	scenario(t, seed, c, run{duration: 3 * time.Second}, func(ctx context.Context, rng *rand.Rand) { <-ctx.Done() })
}

// TestLeaderStopLoop stops the leader of a random shard, lets the others
// elect a new one, restarts it on its data, and again, while the workload
// runs.
func TestLeaderStopLoop(t *testing.T) {
	seed := seedFor(t)
	c := startCluster(t)
	shards := c.shards()
	scenario(t, seed, c, run{duration: scenarioTime}, func(ctx context.Context, rng *rand.Rand) {
		for ctx.Err() == nil {
			shard := shards[rng.IntN(len(shards))]
			leader := c.nodes.Leader(shard)
			if leader == "" {
				if !pause(ctx, 100*time.Millisecond) {
					return
				}
				continue
			}
			t.Logf("stop %s, leader of shard %d", leader, shard)
			c.stopNode(leader)
			pause(ctx, time.Duration(200+rng.IntN(600))*time.Millisecond)
			c.nodes.StartNode(leader) // also after ctx ends: never leave a node down
			if !pause(ctx, time.Duration(500+rng.IntN(1000))*time.Millisecond) {
				return
			}
		}
	})
}

// TestLostResponses drops the answers of one node at a time: its creates
// are applied but the router, and so the client, never hears of them, so
// they end with an unknown outcome that the history must explain.
func TestLostResponses(t *testing.T) {
	seed := seedFor(t)
	c := startCluster(t)
	ids := c.nodes.NodeIDs()
	// Clients give up before the router's first attempt times out (500ms).
	scenario(t, seed, c, run{duration: scenarioTime, requestTimeout: 300 * time.Millisecond}, func(ctx context.Context, rng *rand.Rand) {
		for ctx.Err() == nil {
			id := ids[rng.IntN(len(ids))]
			t.Logf("lose the responses of %s", id)
			c.proxies[id].BlackholeDown()
			pause(ctx, time.Duration(300+rng.IntN(700))*time.Millisecond)
			c.proxies[id].Heal()
			if !pause(ctx, time.Duration(200+rng.IntN(500))*time.Millisecond) {
				return
			}
		}
	})
}
