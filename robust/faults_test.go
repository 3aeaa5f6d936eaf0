package robust

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/linkraft/linkraft/history"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
)

// TestRouterCutOff cuts the router off from one node at a time, both
// ways, while the nodes still reach each other: either every connection is
// reset at once (Drop, a crashed peer or a rejecting firewall) or every
// byte vanishes (Blackhole, calls time out). Shards that node leads are
// unreachable from the router meanwhile; the others must go on, and no
// answer may be wrong.
func TestRouterCutOff(t *testing.T) {
	seed := seedFor(t)
	c := startCluster(t)
	ids := c.nodes.NodeIDs()
	scenario(t, seed, c, run{duration: scenarioTime}, func(ctx context.Context, rng *rand.Rand) {
		for ctx.Err() == nil {
			id := ids[rng.IntN(len(ids))]
			p := c.proxies[id]
			if rng.IntN(2) == 0 {
				t.Logf("cut the router off %s: drop (reset) both ways", id)
				p.Drop()
			} else {
				t.Logf("cut the router off %s: blackhole both ways", id)
				p.Blackhole()
			}
			pause(ctx, time.Duration(1000+rng.IntN(1500))*time.Millisecond)
			p.Heal()
			if !pause(ctx, time.Duration(500+rng.IntN(1000))*time.Millisecond) {
				return
			}
		}
	})
}

// TestRollingRestart restarts every node in turn, gracefully (SIGTERM),
// waiting for each to catch up before the next goes, as an operator's
// upgrade does, under load. Every stop must exit cleanly.
func TestRollingRestart(t *testing.T) {
	seed := seedFor(t)
	c := startProcCluster(t)
	scenario(t, seed, c, run{duration: scenarioTime}, func(ctx context.Context, rng *rand.Rand) {
		first := rng.IntN(len(c.ids))
		for roll := 0; roll == 0 || ctx.Err() == nil; roll++ {
			for k := range c.ids {
				id := c.ids[(first+k)%len(c.ids)]
				t.Logf("roll %d: SIGTERM %s", roll, id)
				if err := c.Stop(id); err != nil {
					t.Errorf("graceful stop of %s: %v", id, err)
				}
				pause(context.Background(), time.Duration(100+rng.IntN(400))*time.Millisecond)
				c.Restart(id)
				took := c.WaitCaughtUp(id, time.Minute)
				t.Logf("roll %d: %s restarted and caught up in %s", roll, id, took.Round(time.Millisecond))
				pause(context.Background(), time.Duration(200+rng.IntN(500))*time.Millisecond)
			}
		}
	})
}

// TestPausedLeader freezes (SIGSTOP) the process leading a random shard for
// a few seconds: it neither answers nor dies, and its connections stay
// open. The other nodes must elect a new leader, and reads and writes go on
// through it; after SIGCONT the old leader, which may still believe it
// leads, must step down and catch up.
func TestPausedLeader(t *testing.T) {
	seed := seedFor(t)
	c := startProcCluster(t)
	rec := history.NewRecorder()
	type window struct{ from, to int64 }
	var windows []window
	ops := scenario(t, seed, c, run{duration: 8 * time.Second, rec: rec}, func(ctx context.Context, rng *rand.Rand) {
		for ctx.Err() == nil {
			shard := uint64(1 + rng.IntN(3))
			leader := c.Leader(shard)
			if leader == "" {
				if !pause(ctx, 100*time.Millisecond) {
					return
				}
				continue
			}
			hold := time.Duration(2500+rng.IntN(1500)) * time.Millisecond
			t.Logf("SIGSTOP %s, leader of shard %d, for %s", leader, shard, hold)
			start := time.Now()
			from := rec.Now()
			c.Pause(leader)
			next := c.WaitNewLeader(shard, leader, 20*time.Second)
			elected := time.Since(start)
			t.Logf("shard %d: %s leads %s after the pause", shard, next, elected.Round(time.Millisecond))
			// The router learns of the new leader when an attempt at the
			// frozen one times out (shardrpc.DefaultAttemptTimeout, as
			// long as the clients' patience); requests that arrive before
			// that wait for it too. The node stays frozen long enough
			// after the election for the router to serve through the new
			// leader (docs/ROBUSTNESS.md, Findings).
			if minHold := elected + shardrpc.DefaultAttemptTimeout + 500*time.Millisecond; hold < minHold {
				t.Logf("frozen for %s instead of %s: the election took %s", minHold.Round(time.Millisecond), hold, elected.Round(time.Millisecond))
				hold = minHold
			}
			pause(context.Background(), time.Until(start.Add(hold)))
			windows = append(windows, window{from, rec.Now()})
			c.Resume(leader)
			took := c.WaitCaughtUp(leader, time.Minute)
			t.Logf("SIGCONT %s: caught up in %s", leader, took.Round(time.Millisecond))
			if !pause(ctx, time.Duration(500+rng.IntN(1000))*time.Millisecond) {
				return
			}
		}
	})
	// Writes and reads went on while a leader was frozen.
	var created, found int
	for _, op := range ops {
		for _, w := range windows {
			if op.Invoke >= w.from && op.Return <= w.to {
				switch op.Out.Result {
				case history.ResultOK:
					created++
				case history.ResultFound:
					found++
				}
			}
		}
	}
	t.Logf("while a leader was paused (%d windows): %d creates acknowledged, %d resolves found", len(windows), created, found)
	if len(windows) > 0 && (created == 0 || found == 0) {
		t.Fatalf("while a leader was paused: %d creates acknowledged, %d resolves found; want some of both", created, found)
	}
}

// TestLostDisk kills (SIGKILL) a node, deletes its data directory, as if
// its disk had been replaced, and starts it again at once, under load,
// while the survivors may still be electing a leader or catching up with
// each other: it must rejoin every shard as a non-voter, be filled by its
// peers (log replay here: linkraft node keeps the whole log of a 6 s run)
// and be promoted to voter again. At the end every acknowledged link must
// resolve from that node's own replica, and its applied index must reach
// the leader's.
func TestLostDisk(t *testing.T) {
	seed := seedFor(t)
	c := startProcCluster(t)
	var victim string
	ops := scenario(t, seed, c, run{duration: scenarioTime}, func(ctx context.Context, rng *rand.Rand) {
		pause(ctx, time.Duration(1000+rng.IntN(1500))*time.Millisecond)
		victim = c.ids[rng.IntN(len(c.ids))]
		if l := c.Leader(uint64(1 + rng.IntN(3))); l != "" && rng.IntN(2) == 0 {
			victim = l
		}
		t.Logf("kill -9 %s and delete its data", victim)
		c.Kill(victim)
		data := c.DataDir(victim)
		if err := os.RemoveAll(data); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still there: %v", data, err)
		}
		// At once: the emptied node rejoins as a non-voter, so its
		// forgotten log and votes cannot elect the survivor that lacks an
		// entry (TestLostDiskAmnesia, docs/ROBUSTNESS.md Findings).
		c.Restart(victim)
		took := c.WaitCaughtUp(victim, time.Minute)
		t.Logf("%s restarted empty at once and caught up in %s", victim, took.Round(time.Millisecond))
		took = c.WaitVoter(victim, time.Minute)
		t.Logf("%s is a voter of every shard again (%s later); leaders %v", victim, took.Round(time.Millisecond), c.Leaders())
	})
	if victim == "" {
		t.Fatal("no node lost its disk")
	}
	// The rejoined replica holds every acknowledged link itself, and is
	// still a voter of every shard.
	c.WaitCaughtUp(victim, time.Minute)
	c.WaitVoter(victim, time.Minute)
	n, _ := c.Config().Node(victim)
	rg, err := c.Config().Ring()
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	checked := 0
	for _, op := range ops {
		if op.Out.Result != history.ResultOK {
			continue
		}
		got, err := localResolve(client, n.RPCAddr, c.Config().Cluster.RPCSecret, rg.ShardOfCode(op.Out.Code), op.Out.Code)
		if err != nil {
			t.Errorf("resolve %s on %s: %v", op.Out.Code, victim, err)
			continue
		}
		if got != op.In.URL {
			t.Errorf("resolve %s on %s: %q, want %q", op.Out.Code, victim, got, op.In.URL)
		}
		checked++
	}
	t.Logf("%d acknowledged links resolved from %s's own replica", checked, victim)
}

// localResolve asks the node at rpcAddr for code from its own replica (a
// non-linearizable read, which a follower answers itself); secret is the
// cluster's RPC secret ("" for none).
func localResolve(client *http.Client, rpcAddr, secret string, shard uint64, code string) (string, error) {
	body, err := json.Marshal(shardrpc.ResolveRequest{Code: code})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+rpcAddr+shardrpc.PathResolve, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(shardrpc.HeaderShard, strconv.FormatUint(shard, 10))
	if secret != "" {
		req.Header.Set(shardrpc.HeaderSecret, secret)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	var link shardrpc.Link
	if resp.StatusCode != http.StatusOK {
		var eb bytes.Buffer
		_, _ = eb.ReadFrom(resp.Body)
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, eb.String())
	}
	if err := json.NewDecoder(resp.Body).Decode(&link); err != nil {
		return "", fmt.Errorf("decode: %w", err)
	}
	return link.URL, nil
}

// trailingLogs is how many log entries TestLostDiskSnapshot's raft groups
// keep behind a snapshot.
const trailingLogs = 32

// TestLostDiskSnapshot is TestLostDisk in process, with raft snapshots
// taken every few dozen entries and only a short log kept behind them.
// Once every replica has compacted its log past the start, a node is
// stopped, its data deleted, and it is started again at once, under load:
// it can only be filled by a snapshot install, so its replica of every
// shard must restore one, be promoted to voter again, and then hold every
// acknowledged link.
func TestLostDiskSnapshot(t *testing.T) {
	seed := seedFor(t)
	c := startClusterOpts(t, nodetest.Options{Raft: func(rc *raft.Config) {
		nodetest.RaftConfig(rc)
		rc.SnapshotThreshold = 64
		rc.SnapshotInterval = 200 * time.Millisecond
		rc.TrailingLogs = trailingLogs
	}})
	var victim string
	ops := scenario(t, seed, c, run{duration: scenarioTime}, func(ctx context.Context, rng *rand.Rand) {
		pause(ctx, time.Duration(1000+rng.IntN(1500))*time.Millisecond)
		// Every replica of every shard has compacted its log beyond index
		// 2, the first entry after the bootstrap configuration: whichever
		// survivor leads when the victim returns, it can fill an empty
		// replica only with a snapshot.
		for _, s := range c.shards() {
			c.nodes.Eventually(fmt.Sprintf("a snapshot of shard %d past its trailing log on every replica", s), func() error {
				for _, id := range c.nodes.Running() {
					g := c.nodes.Node(id).Group(s)
					if g == nil {
						return fmt.Errorf("%s has no open replica", id)
					}
					st := g.Raft().Stats()
					snap, err := strconv.ParseUint(st["last_snapshot_index"], 10, 64)
					if err != nil {
						return fmt.Errorf("%s: last_snapshot_index %q: %w", id, st["last_snapshot_index"], err)
					}
					if snap <= trailingLogs+2 {
						return fmt.Errorf("%s: last snapshot at index %d", id, snap)
					}
				}
				return nil
			})
		}
		victim = c.nodes.NodeIDs()[rng.IntN(3)]
		if l := c.nodes.Leader(uint64(1 + rng.IntN(3))); l != "" && rng.IntN(2) == 0 {
			victim = l
		}
		t.Logf("stop %s, delete its data and start it again at once", victim)
		c.stopNode(victim)
		n, _ := c.nodes.Config().Node(victim)
		if err := os.RemoveAll(n.DataDir); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.nodes.StartNode(victim)
		c.nodes.Eventually(victim+" restored a snapshot of every shard", func() error {
			for _, s := range c.shards() {
				g := c.nodes.Node(victim).Group(s)
				if g == nil {
					return fmt.Errorf("shard %d: not open yet", s)
				}
				if st := g.Stats(); st.SnapshotRestores == 0 {
					return fmt.Errorf("shard %d: no snapshot restored yet (applied %d)", s, st.AppliedIndex)
				}
			}
			return nil
		})
		t.Logf("%s rejoined empty and restored a snapshot of every shard in %s", victim, time.Since(start).Round(time.Millisecond))
		waitVoterEverywhere(c, victim)
		t.Logf("%s is a voter of every shard again %s after its restart", victim, time.Since(start).Round(time.Millisecond))
	})
	if victim == "" {
		t.Fatal("no node lost its disk")
	}
	for _, s := range c.shards() {
		leader := c.nodes.WaitLeader(s)
		c.nodes.WaitApplied(s, c.nodes.Node(leader).Group(s).AppliedIndex())
	}
	waitVoterEverywhere(c, victim)
	rg, err := c.nodes.Config().Ring()
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	checked := 0
	for _, op := range ops {
		if op.Out.Result != history.ResultOK {
			continue
		}
		got, err := localResolve(client, c.nodes.RPCAddr(victim), c.nodes.Config().Cluster.RPCSecret, rg.ShardOfCode(op.Out.Code), op.Out.Code)
		if err != nil {
			t.Errorf("resolve %s on %s: %v", op.Out.Code, victim, err)
			continue
		}
		if got != op.In.URL {
			t.Errorf("resolve %s on %s: %q, want %q", op.Out.Code, victim, got, op.In.URL)
		}
		checked++
	}
	t.Logf("%d acknowledged links resolved from %s's own replica", checked, victim)
}

// waitVoterEverywhere waits until every running replica of every shard
// holds a configuration in which node id is a voter.
func waitVoterEverywhere(c *cluster, id string) {
	c.t.Helper()
	for _, s := range c.shards() {
		c.nodes.Eventually(fmt.Sprintf("%s a voter of shard %d on every replica", id, s), func() error {
			for _, rid := range c.nodes.Running() {
				g := c.nodes.Node(rid).Group(s)
				if g == nil {
					return fmt.Errorf("%s has no open replica", rid)
				}
				conf, _, err := g.Configuration()
				if err != nil {
					return fmt.Errorf("%s: %w", rid, err)
				}
				voter := false
				for _, srv := range conf.Servers {
					if string(srv.ID) == id {
						voter = srv.Suffrage == raft.Voter
					}
				}
				if !voter {
					return fmt.Errorf("%s's configuration: %+v", rid, conf.Servers)
				}
			}
			return nil
		})
	}
}

// TestLostDiskAmnesia is the regression test of a finding of TestLostDisk
// (docs/ROBUSTNESS.md, Findings): a node that lost its data and restarted
// at once voted with no memory of its log, so it could elect the one
// survivor that lacks an entry the old leader had committed with the
// other survivor, and that acknowledged create was lost.
//
//  1. the Raft links between the leader L of shard 1 and a follower B are
//     cut, so creates on shard 1 commit on L and A only;
//  2. L is killed and its data deleted; A is cut off the others;
//  3. L restarts empty: it must not vote, so B, which lacks the entries,
//     must not win an election while A is cut off (it did before the fix);
//  4. everything heals: A leads, L rejoins through a membership change, and
//     every acknowledged create resolves from every replica.
func TestLostDiskAmnesia(t *testing.T) {
	c := startProcCluster(t)
	const shard = 1
	var leader string
	deadline := time.Now().Add(30 * time.Second)
	for leader = c.Leader(shard); leader == ""; leader = c.Leader(shard) {
		if time.Now().After(deadline) {
			t.Fatal("no leader of shard 1")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var a, b string
	for _, id := range c.ids {
		switch {
		case id == leader:
		case a == "":
			a = id
		default:
			b = id
		}
	}
	t.Logf("shard 1: leader %s, follower %s keeps the entries, follower %s is cut off the leader", leader, a, b)
	cut := func(x, y string) {
		c.RaftProxy(x, y).Blackhole()
		c.RaftProxy(y, x).Blackhole()
	}
	heal := func(x, y string) {
		c.RaftProxy(x, y).Heal()
		c.RaftProxy(y, x).Heal()
	}
	cut(leader, b)

	rg, err := c.Config().Ring()
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	links := make(map[string]string) // code -> URL, acknowledged on shard 1
	for i := 0; len(links) < 5; i++ {
		if i > 200 {
			t.Fatalf("only %d of 200 creates landed on shard 1", len(links))
		}
		url := fmt.Sprintf("https://example.com/amnesia/%d", i)
		body, _ := json.Marshal(createBody{URL: url})
		resp, err := client.Post(c.URL("r1")+"/api/v1/links", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var a createAnswer
		err = json.NewDecoder(resp.Body).Decode(&a)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || err != nil {
			t.Fatalf("create %s: status %d, %v", url, resp.StatusCode, err)
		}
		if rg.ShardOfCode(a.Code) == shard {
			links[a.Code] = url
		}
	}
	t.Logf("%d creates acknowledged on shard 1 while %s was cut off %s", len(links), b, leader)

	c.Kill(leader)
	if err := os.RemoveAll(c.DataDir(leader)); err != nil {
		t.Fatal(err)
	}
	cut(a, leader)
	cut(a, b)
	heal(leader, b)
	c.Restart(leader)
	// Several election timeouts: B campaigns, and only the emptied L could
	// give it the second vote it needs.
	watch := time.Now().Add(8 * time.Second)
	for time.Now().Before(watch) {
		st, err := c.NodeStatus(b, shard)
		if err == nil && st.State == "Leader" {
			t.Fatalf("%s leads shard 1 in term %d: the emptied %s voted for it", b, st.Term, leader)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%s did not win shard 1 while %s was cut off and %s rejoined empty", b, a, leader)
	start := time.Now()
	c.heal()
	c.WaitLogsInSync("", time.Minute)
	t.Logf("%s rejoined and the replicas are in sync %s after the heal", leader, time.Since(start).Round(time.Millisecond))
	for code, url := range links {
		for _, id := range c.ids {
			n, _ := c.Config().Node(id)
			got, err := localResolve(client, n.RPCAddr, c.Config().Cluster.RPCSecret, shard, code)
			if err != nil || got != url {
				t.Errorf("acknowledged create of %s (%s) lost on %s: %q, %v", code, url, id, got, err)
			}
		}
	}
}
