package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shardrpc"
)

// TestLostDiskRejoinsAsNonVoter is the in-process regression test of the
// lost-disk amnesia finding (docs/ROBUSTNESS.md): the leader L of a shard
// commits links with follower A while follower B is down; L loses its data
// and restarts at once next to the lagging B, with A down. L must not vote
// (before the fix it bootstrapped again and made B leader, and A then
// dropped the links B never had). Once A is back, L rejoins as a non-voter,
// serves once caught up, is promoted, and every replica holds every link,
// byte for byte.
func TestLostDiskRejoinsAsNonVoter(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{Shards: 1})
	const shard = 1
	r := mustRing(t, c.Config())
	cl := rpc{t: t}
	l := c.WaitLeader(shard)
	var a, b string
	for _, id := range c.NodeIDs() {
		switch {
		case id == l:
		case a == "":
			a = id
		default:
			b = id
		}
	}
	t.Logf("leader %s, follower %s keeps the links, follower %s lags", l, a, b)

	// B may hold the leader's entries or, on a loaded machine that stops
	// it early, only the bootstrap entry. Either way L must not bootstrap:
	// with B answering "bootstrap only" and A silent, L cannot tell that A
	// does not hold committed entries (TestDecideJoin).
	c.StopNode(b)
	links := make(map[string]string)
	for i := range 20 {
		req := shardrpc.CreateRequest{Partition: partitionOf(t, r, shard, i), URL: fmt.Sprintf("https://lost-disk.example/%d", i), RequestID: fmt.Sprintf("ld-%d", i)}
		ans := cl.createAtLeader(c, shard, req)
		if ans.status != fasthttp.StatusOK {
			t.Fatalf("create %d: %s", i, ans)
		}
		links[ans.link(t).Code] = req.URL
	}

	c.StopNode(l)
	nl, _ := c.Config().Node(l)
	if err := os.RemoveAll(nl.DataDir); err != nil {
		t.Fatal(err)
	}
	c.StopNode(a)
	c.StartNode(b)
	c.StartNode(l)
	// Many election timeouts (500 ms in tests): B campaigns, and only L
	// could give it the vote it lacks.
	watch := time.Now().Add(4 * time.Second)
	for time.Now().Before(watch) {
		if x := c.Leader(shard); x != "" {
			t.Fatalf("%s leads shard %d without the links: the emptied %s voted", x, shard, l)
		}
		if c.Node(l).Serving(shard) {
			t.Fatalf("the emptied %s serves shard %d before it rejoined", l, shard)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ans := cl.call(c.RPCAddr(l), shardrpc.PathResolve, shard, shardrpc.ResolveRequest{Code: firstKey(links)})
	if ans.status != fasthttp.StatusServiceUnavailable || ans.errorBody(t).Code != shardrpc.ErrCodeUnavailable {
		t.Fatalf("a resolve at the joining %s: %s, want 503 unavailable", l, ans)
	}

	c.StartNode(a)
	c.WaitLeader(shard)
	waitVoters(t, c, shard, 3)
	for code, url := range links {
		for _, id := range c.Running() {
			ans := cl.call(c.RPCAddr(id), shardrpc.PathResolve, shard, shardrpc.ResolveRequest{Code: code})
			if ans.status != fasthttp.StatusOK || ans.link(t).URL != url {
				t.Errorf("acknowledged link %s (%s) on %s: %s", code, url, id, ans)
			}
		}
	}
	waitSameState(t, c, shard)
}

// TestLateNodeJoinsFreshCluster starts two nodes of a fresh cluster with
// the third down: they must not bootstrap (neither can tell it is new
// rather than a replica that forgot its log, node package doc, "Joining a
// group"), so no group runs and no Raft state is written. Once the third
// starts, the group runs. Then the third loses its data directory (a
// replaced disk, as good as a node that joins late) while the others go
// on: it finds a group that ran, so it joins as a non-voter, catches up
// and is promoted.
func TestLateNodeJoinsFreshCluster(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{Shards: 1, NoStart: true})
	const shard = 1
	r := mustRing(t, c.Config())
	cl := rpc{t: t}
	c.StartNode("n1")
	c.StartNode("n2")
	// Several joiner rounds (backoff 25 ms doubling to 2 s): the window
	// is a bound on a condition checked throughout, not a sleep.
	watch := time.Now().Add(3 * time.Second)
	for time.Now().Before(watch) {
		for _, id := range []string{"n1", "n2"} {
			if c.Node(id).Group(shard) != nil || c.Node(id).Serving(shard) {
				t.Fatalf("%s runs shard %d with n3 never started: it bootstrapped on two of three replicas", id, shard)
			}
			p, err := c.Node(id).Store().Probe(shard)
			if err != nil {
				t.Fatal(err)
			}
			if p.HasState || p.LastIndex != 0 {
				t.Fatalf("%s wrote Raft state for shard %d with n3 never started: %+v", id, shard, p)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, id := range []string{"n1", "n2"} {
		if st := groupState(t, cl, c.RPCAddr(id), shard, "n3"); st.State != shardrpc.GroupEmpty || st.Open {
			t.Fatalf("group state at %s with n3 never started: %+v", id, st)
		}
	}

	c.StartNode("n3")
	c.WaitLeader(shard)
	waitVoters(t, c, shard, 3)
	links := make(map[string]string)
	create := func(i int) {
		t.Helper()
		req := shardrpc.CreateRequest{Partition: partitionOf(t, r, shard, i), URL: fmt.Sprintf("https://late.example/%d", i), RequestID: fmt.Sprintf("late-%d", i)}
		ans := cl.createAtLeader(c, shard, req)
		if ans.status != fasthttp.StatusOK {
			t.Fatalf("create %d: %s", i, ans)
		}
		links[ans.link(t).Code] = req.URL
	}
	for i := range 5 {
		create(i)
	}

	c.StopNode("n3")
	n3, _ := c.Config().Node("n3")
	if err := os.RemoveAll(n3.DataDir); err != nil {
		t.Fatal(err)
	}
	c.WaitLeader(shard)
	for i := 5; i < 10; i++ {
		create(i)
	}
	for _, id := range []string{"n1", "n2"} {
		st := groupState(t, cl, c.RPCAddr(id), shard, "n3")
		if st.State != shardrpc.GroupRunning || !st.Open {
			t.Fatalf("group state at %s: %+v", id, st)
		}
	}
	if st := groupState(t, cl, c.RPCAddr("n1"), shard, "n1"); st.LeaderID == "" || st.LeaderRPC == "" {
		t.Fatalf("group state names no leader: %+v", st)
	}

	c.StartNode("n3")
	c.WaitLeader(shard)
	waitVoters(t, c, shard, 3)
	for code, url := range links {
		ans := cl.call(c.RPCAddr("n3"), shardrpc.PathResolve, shard, shardrpc.ResolveRequest{Code: code})
		if ans.status != fasthttp.StatusOK || ans.link(t).URL != url {
			t.Errorf("link %s (%s) on n3: %s", code, url, ans)
		}
	}
	waitSameState(t, c, shard)

	// A restart on its data does no membership change again.
	before := configEntries(t, c)
	c.RestartNode("n3")
	c.WaitLeader(shard)
	if after := configEntries(t, c); after != before {
		t.Fatalf("configuration entries %d -> %d across a restart on its data", before, after)
	}
}

// TestMembershipBadRequests sends the membership RPCs every kind of bad
// input: each gets a 4xx with an error body and the group's configuration
// does not change.
func TestMembershipBadRequests(t *testing.T) {
	const secret = "member-secret"
	// Shard 1 on n1, n2, n3; shard 2 on n2, n3, n4.
	c := nodetest.Start(t, nodetest.Options{Nodes: 4, Shards: 2, RPCSecret: secret})
	const shard = 1
	leader := c.WaitLeader(shard)
	c.WaitLeader(2)
	cl := rpc{t: t, secret: secret}
	var fol string
	for _, id := range []string{"n1", "n2", "n3"} {
		if id != leader {
			fol = id
			break
		}
	}
	_, before, err := c.Node(leader).Group(shard).Configuration()
	if err != nil {
		t.Fatal(err)
	}
	laddr := c.RPCAddr(leader)
	cases := []struct {
		name   string
		secret string
		addr   string
		path   string
		shard  uint64
		body   any
		status int
		code   shardrpc.Code
	}{
		{"join without the secret", "", laddr, shardrpc.PathGroupJoin, shard, shardrpc.JoinRequest{NodeID: fol}, 401, shardrpc.ErrCodeUnauthorized},
		{"state without the secret", "", laddr, shardrpc.PathGroupState, shard, shardrpc.GroupStateRequest{NodeID: fol}, 401, shardrpc.ErrCodeUnauthorized},
		{"promote with a wrong secret", "wrong", laddr, shardrpc.PathGroupPromote, shard, shardrpc.PromoteRequest{NodeID: fol, Target: 1, AppliedIndex: 1}, 401, shardrpc.ErrCodeUnauthorized},
		{"join, malformed body", secret, laddr, shardrpc.PathGroupJoin, shard, []byte(`{"node_id":`), 400, shardrpc.ErrCodeBadRequest},
		{"join, no node", secret, laddr, shardrpc.PathGroupJoin, shard, shardrpc.JoinRequest{}, 400, shardrpc.ErrCodeBadRequest},
		{"join, unknown node", secret, laddr, shardrpc.PathGroupJoin, shard, shardrpc.JoinRequest{NodeID: "n9"}, 400, shardrpc.ErrCodeBadRequest},
		{"join, node not a replica of the shard", secret, laddr, shardrpc.PathGroupJoin, shard, shardrpc.JoinRequest{NodeID: "n4"}, 400, shardrpc.ErrCodeBadRequest},
		{"join, the leader itself", secret, laddr, shardrpc.PathGroupJoin, shard, shardrpc.JoinRequest{NodeID: leader}, 400, shardrpc.ErrCodeBadRequest},
		{"join, no shard", secret, laddr, shardrpc.PathGroupJoin, 0, shardrpc.JoinRequest{NodeID: fol}, 400, shardrpc.ErrCodeBadRequest},
		{"join, shard not hosted", secret, c.RPCAddr("n1"), shardrpc.PathGroupJoin, 2, shardrpc.JoinRequest{NodeID: "n4"}, 404, shardrpc.ErrCodeUnknownShard},
		{"join at a follower", secret, c.RPCAddr(fol), shardrpc.PathGroupJoin, shard, shardrpc.JoinRequest{NodeID: leader}, 421, shardrpc.ErrCodeNotLeader},
		{"promote, node not a replica", secret, laddr, shardrpc.PathGroupPromote, shard, shardrpc.PromoteRequest{NodeID: "n4", Target: 1, AppliedIndex: 1}, 400, shardrpc.ErrCodeBadRequest},
		{"promote, malformed body", secret, laddr, shardrpc.PathGroupPromote, shard, []byte(`[1]`), 400, shardrpc.ErrCodeBadRequest},
		{"state, node not a replica", secret, laddr, shardrpc.PathGroupState, shard, shardrpc.GroupStateRequest{NodeID: "n4"}, 400, shardrpc.ErrCodeBadRequest},
		{"state, no node", secret, laddr, shardrpc.PathGroupState, shard, []byte(`{}`), 400, shardrpc.ErrCodeBadRequest},
		{"state, shard not hosted", secret, c.RPCAddr("n4"), shardrpc.PathGroupState, shard, shardrpc.GroupStateRequest{NodeID: "n1"}, 404, shardrpc.ErrCodeUnknownShard},
	}
	for _, tc := range cases {
		ans := rpc{t: t, secret: tc.secret}.call(tc.addr, tc.path, tc.shard, tc.body)
		if ans.status != tc.status || ans.errorBody(t).Code != tc.code {
			t.Errorf("%s: %s, want %d %s", tc.name, ans, tc.status, tc.code)
		}
		if tc.code == shardrpc.ErrCodeNotLeader && ans.errorBody(t).LeaderID != leader {
			t.Errorf("%s: %s names no leader %s", tc.name, ans, leader)
		}
	}
	// A promote of a voter and a join of a non-voter change nothing.
	ans := cl.call(laddr, shardrpc.PathGroupPromote, shard, shardrpc.PromoteRequest{NodeID: fol})
	var pr shardrpc.PromoteResult
	if err := json.Unmarshal(ans.body, &pr); err != nil || ans.status != 200 || !pr.Voter {
		t.Fatalf("promote of a voter: %s", ans)
	}
	conf, after, err := c.Node(leader).Group(shard).Configuration()
	if err != nil {
		t.Fatal(err)
	}
	if after != before || countSuffrage(conf, raft.Voter) != 3 || len(conf.Servers) != 3 {
		t.Fatalf("configuration changed by bad requests: index %d -> %d, %+v", before, after, conf.Servers)
	}
}

// TestJoinAndPromoteAtLeader drives the join protocol by hand against a
// running group: a join demotes a voter (and is idempotent), a promote
// before the node reached its target is answered with a target, and a
// promote at the target makes it a voter again.
func TestJoinAndPromoteAtLeader(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{Shards: 1})
	const shard = 1
	leader := c.WaitLeader(shard)
	cl := rpc{t: t}
	fol := follower(t, c, shard, leader)
	laddr := c.RPCAddr(leader)
	var jr shardrpc.JoinResult
	for range 2 {
		ans := cl.call(laddr, shardrpc.PathGroupJoin, shard, shardrpc.JoinRequest{NodeID: fol})
		if err := json.Unmarshal(ans.body, &jr); err != nil || ans.status != 200 || jr.CommitIndex == 0 {
			t.Fatalf("join: %s", ans)
		}
		conf, _, err := c.Node(leader).Group(shard).Configuration()
		if err != nil {
			t.Fatal(err)
		}
		if countSuffrage(conf, raft.Voter) != 2 || countSuffrage(conf, raft.Nonvoter) != 1 {
			t.Fatalf("after a join of %s: %+v", fol, conf.Servers)
		}
	}
	// The other follower cannot be demoted too: two voters of three
	// replicas are the least a group keeps.
	other := ""
	for _, id := range c.NodeIDs() {
		if id != leader && id != fol {
			other = id
		}
	}
	ans := cl.call(laddr, shardrpc.PathGroupJoin, shard, shardrpc.JoinRequest{NodeID: other})
	if ans.status != fasthttp.StatusServiceUnavailable {
		t.Fatalf("join of a second voter: %s, want 503", ans)
	}
	var pr shardrpc.PromoteResult
	ans = cl.call(laddr, shardrpc.PathGroupPromote, shard, shardrpc.PromoteRequest{NodeID: fol, AppliedIndex: jr.CommitIndex - 1, Target: jr.CommitIndex})
	if err := json.Unmarshal(ans.body, &pr); err != nil || ans.status != 200 || pr.Voter || pr.Target < jr.CommitIndex {
		t.Fatalf("promote before the target: %s", ans)
	}
	ans = cl.call(laddr, shardrpc.PathGroupPromote, shard, shardrpc.PromoteRequest{NodeID: fol, AppliedIndex: jr.CommitIndex, Target: jr.CommitIndex})
	if err := json.Unmarshal(ans.body, &pr); err != nil || ans.status != 200 || !pr.Voter {
		t.Fatalf("promote at the target: %s", ans)
	}
	waitVoters(t, c, shard, 3)
}

func firstKey(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys[0]
}

func groupState(t *testing.T, cl rpc, addr string, shard uint64, asker string) shardrpc.GroupState {
	t.Helper()
	ans := cl.call(addr, shardrpc.PathGroupState, shard, shardrpc.GroupStateRequest{NodeID: asker})
	var st shardrpc.GroupState
	if err := json.Unmarshal(ans.body, &st); err != nil || ans.status != 200 {
		t.Fatalf("group state at %s: %s", addr, ans)
	}
	return st
}

func countSuffrage(conf raft.Configuration, s raft.ServerSuffrage) int {
	n := 0
	for _, srv := range conf.Servers {
		if srv.Suffrage == s {
			n++
		}
	}
	return n
}

// waitVoters waits until every running replica of shard holds, as its
// latest configuration, want voters and no non-voter: the change is then
// in every replica's log.
func waitVoters(t *testing.T, c *nodetest.Cluster, shard uint64, want int) {
	t.Helper()
	c.Eventually(fmt.Sprintf("%d voters in shard %d on every replica", want, shard), func() error {
		for _, id := range c.Running() {
			g := c.Node(id).Group(shard)
			if g == nil {
				return fmt.Errorf("%s has no running replica", id)
			}
			conf, _, err := g.Configuration()
			if err != nil {
				return err
			}
			if countSuffrage(conf, raft.Voter) != want || len(conf.Servers) != want {
				return fmt.Errorf("%s: configuration %+v", id, conf.Servers)
			}
		}
		return nil
	})
}

// waitSameState waits until every running replica of shard has applied the
// same index and holds the same application keys and values.
func waitSameState(t *testing.T, c *nodetest.Cluster, shard uint64) {
	t.Helper()
	c.Eventually(fmt.Sprintf("the replicas of shard %d byte for byte alike", shard), func() error {
		var ref []byte
		var refID string
		var refIdx uint64
		for _, id := range c.Running() {
			g := c.Node(id).Group(shard)
			if g == nil {
				return fmt.Errorf("%s has no running replica", id)
			}
			idx := g.AppliedIndex()
			var buf bytes.Buffer
			err := g.Read(context.Background(), raftstore.ReadLocal, func(r raftstore.Reader) error {
				return r.Scan(nil, nil, func(k, v []byte) bool {
					fmt.Fprintf(&buf, "%x=%x\n", k, v)
					return true
				})
			})
			if err != nil {
				return err
			}
			if g.AppliedIndex() != idx {
				return fmt.Errorf("%s still applying", id)
			}
			if ref == nil {
				ref, refID, refIdx = buf.Bytes(), id, idx
				continue
			}
			if idx != refIdx || !bytes.Equal(buf.Bytes(), ref) {
				return fmt.Errorf("%s (applied %d, %d bytes) differs from %s (applied %d, %d bytes)", id, idx, buf.Len(), refID, refIdx, len(ref))
			}
		}
		return nil
	})
}
