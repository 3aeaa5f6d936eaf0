package robust

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/linkraft/linkraft/diskfault"
	"github.com/linkraft/linkraft/history"
	"github.com/linkraft/linkraft/proctest"
)

// diskVictim picks the node whose disk a disk scenario breaks: the leader
// of a random shard, or a random node while no leader is known.
func diskVictim(c *procCluster, rng *rand.Rand) (victim string, shard uint64) {
	shard = uint64(1 + rng.IntN(3))
	if victim = c.Leader(shard); victim == "" {
		victim = c.ids[rng.IntN(len(c.ids))]
	}
	return victim, shard
}

// TestDiskFailure makes the disk of a shard leader fail every write, in a
// real node process (the faultinject build: its Pebble DB runs on a
// diskfault.FS that the test switches through a control file). Pebble
// declares the failed WAL write fatal and the node fail-stops: the process
// exits with a failure status, acknowledging nothing after the failure.
// The other two nodes go on (a leader of every shard among them), then the
// node restarts on a healthy disk, recovers what it had synced, and
// catches up; the history must show no acknowledged create lost.
func TestDiskFailure(t *testing.T) {
	seed := seedFor(t)
	c := startProcClusterOpts(t, proctest.Options{DiskFaults: true})
	scenario(t, seed, c, run{duration: scenarioTime}, func(ctx context.Context, rng *rand.Rand) {
		pause(ctx, time.Duration(500+rng.IntN(1000))*time.Millisecond)
		victim, shard := diskVictim(c, rng)
		p := c.Process(victim)
		t.Logf("the disk of %s (leader of shard %d: %v) fails every write", victim, shard, c.Leader(shard) == victim)
		failed := time.Now()
		c.SetDisk(victim, diskfault.Failing)
		select {
		case <-p.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("%s still runs 30s after its disk began to fail every write", victim)
		}
		code := p.ExitCode()
		t.Logf("%s fail-stopped %s after its disk failed: exit status %d", victim, time.Since(failed).Round(time.Millisecond), code)
		if code == 0 {
			t.Errorf("%s exited with status 0 after a disk failure; want a failure status", victim)
		}
		// The store logs the failed write itself, whichever way Pebble
		// then stops the process (its fatal commit error, or a panic in
		// its WAL rotation that does not print the error: see
		// docs/ROBUSTNESS.md, Findings).
		if out := c.Output(victim); !strings.Contains(out, "disk write failed") || !strings.Contains(out, "diskfault: injected I/O error") {
			t.Errorf("%s exited without logging the failed disk write and the injected I/O error:\n%s", victim, out[max(0, len(out)-4000):])
		}
		// The other two go on: every shard has a leader among them.
		for _, s := range c.Shards() {
			c.WaitNewLeader(s, victim, 30*time.Second)
		}
		t.Logf("without %s, leaders %v", victim, c.Leaders())
		pause(ctx, time.Duration(1000+rng.IntN(1000))*time.Millisecond)

		t.Logf("restart %s on a healthy disk", victim)
		c.SetDisk(victim, diskfault.Healthy)
		c.Restart(victim)
		took := c.WaitCaughtUp(victim, time.Minute)
		t.Logf("%s caught up in %s", victim, took.Round(time.Millisecond))
	})
}

// TestDiskStall makes every write of a shard leader's disk block, keeps it
// blocked until the leadership of every shard that node led has moved to
// another node (a generous bound: the node's disk-stall detector needs
// DefaultDiskStallThreshold, then the followers an election timeout) and a
// few seconds more, then lets the writes go on. Nothing fails, so the node
// must not die; the shards it led must acknowledge creates while its disk
// is still stalled; writes waiting on its disk either complete after the
// stall or come back with an unknown outcome, never as a lost
// acknowledgement (the history checks it); and the node catches up
// afterwards.
func TestDiskStall(t *testing.T) {
	seed := seedFor(t)
	c := startProcClusterOpts(t, proctest.Options{DiskFaults: true})
	rg, err := c.Config().Ring()
	if err != nil {
		t.Fatal(err)
	}
	rec := history.NewRecorder()
	var (
		from, to int64           // the stall after the leadership moved, on rec's clock
		stalled  map[uint64]bool // shards the victim led when its disk stalled
	)
	ops := scenario(t, seed, c, run{duration: scenarioTime, rec: rec}, func(ctx context.Context, rng *rand.Rand) {
		pause(ctx, time.Duration(500+rng.IntN(1000))*time.Millisecond)
		victim, shard := diskVictim(c, rng)
		p := c.Process(victim)
		before := c.Leaders()
		stalled = make(map[uint64]bool)
		for s, l := range before {
			stalled[s] = l == victim
		}
		t.Logf("the disk of %s (leader of shard %d: %v) stalls every write; leaders %v", victim, shard, before[shard] == victim, before)
		start := time.Now()
		c.SetDisk(victim, diskfault.Stalled)
		for s, led := range stalled {
			if led {
				c.WaitNewLeader(s, victim, 30*time.Second)
			}
		}
		t.Logf("%s after the stall began, every shard %s led has another leader: %v", time.Since(start).Round(time.Millisecond), victim, c.Leaders())
		// The disk stays stalled a while: the shards must commit meanwhile.
		from = rec.Now()
		pause(context.Background(), time.Duration(2500+rng.IntN(1500))*time.Millisecond)
		to = rec.Now()
		t.Logf("leaders at the end of the stall (%s): %v", time.Since(start).Round(time.Millisecond), c.Leaders())
		if p.Exited() {
			t.Fatalf("%s exited during a disk stall: %v", victim, p.Err())
		}
		c.SetDisk(victim, diskfault.Healthy)
		took := c.WaitCaughtUp(victim, time.Minute)
		t.Logf("stall over: %s caught up in %s; leaders %v", victim, took.Round(time.Millisecond), c.Leaders())
	})
	// Creates acknowledged while the disk was still stalled, after the
	// leadership had moved: on the shards the stalled node led, and on the
	// others.
	var elsewhere, onStalled int
	for _, op := range ops {
		if op.Invoke >= from && op.Return <= to && op.Acked() {
			if stalled[rg.ShardOfCode(op.Out.Code)] {
				onStalled++
			} else {
				elsewhere++
			}
		}
	}
	t.Logf("during the stall: %d creates acknowledged on shards led elsewhere, %d on the shards the stalled node led", elsewhere, onStalled)
	led := 0
	for _, l := range stalled {
		if l {
			led++
		}
	}
	if led > 0 && onStalled == 0 {
		t.Errorf("no create was acknowledged on the %d shard(s) the stalled node led, after their leadership moved and before the disk returned", led)
	}
}
