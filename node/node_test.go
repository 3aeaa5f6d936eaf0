package node_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/node"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/ring"
	"github.com/linkraft/linkraft/shardrpc"
	"github.com/valyala/fasthttp"
)

// partitionOf returns the i-th partition of shard.
func partitionOf(t *testing.T, r *ring.Ring, shard uint64, i int) uint32 {
	t.Helper()
	ps := r.PartitionsOf(shard)
	if len(ps) == 0 {
		t.Fatalf("shard %d owns no partition", shard)
	}
	return ps[i%len(ps)]
}

// aliasOf returns an alias (not of generated shape) placed in shard.
func aliasOf(t *testing.T, r *ring.Ring, shard uint64, prefix string) (string, uint32) {
	t.Helper()
	for i := 0; i < 100000; i++ {
		a := fmt.Sprintf("%s-%d", prefix, i)
		if p := r.PartitionOfCode(a); r.ShardOf(p) == shard {
			return a, p
		}
	}
	t.Fatalf("no alias for shard %d", shard)
	return "", 0
}

func mustRing(t *testing.T, cfg *config.Config) *ring.Ring {
	t.Helper()
	r, err := cfg.Ring()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// clusterClient waits until every shard of c has a leader and returns the
// cluster's ring and an RPC client of it (closed when the test ends) that
// forgets idle connections soon, as the tests restart nodes.
func clusterClient(t *testing.T, c *nodetest.Cluster) (*ring.Ring, *shardrpc.Client) {
	t.Helper()
	r := mustRing(t, c.Config())
	c.WaitLeaders()
	cl := shardrpc.NewClient(c.Config(), shardrpc.ClientOptions{IdleConnTimeout: 100 * time.Millisecond})
	t.Cleanup(cl.Close)
	return r, cl
}

// follower returns a running replica of shard other than the leader.
func follower(t *testing.T, c *nodetest.Cluster, shard uint64, leader string) string {
	t.Helper()
	for _, id := range c.Running() {
		if id != leader && c.Node(id).Group(shard) != nil {
			return id
		}
	}
	t.Fatalf("shard %d has no running follower", shard)
	return ""
}

func TestCreateAndResolve(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r := mustRing(t, c.Config())
	cl := rpc{t: t}
	leaders := c.WaitLeaders()

	for shard, leader := range leaders {
		laddr := c.RPCAddr(leader)
		fid := follower(t, c, shard, leader)
		faddr := c.RPCAddr(fid)

		// Generated codes land in the requested partition.
		var links []shardrpc.Link
		for i := 0; i < 10; i++ {
			p := partitionOf(t, r, shard, i)
			a := cl.call(laddr, shardrpc.PathCreate, shard, shardrpc.CreateRequest{
				Partition: p, URL: fmt.Sprintf("https://example.com/%d/%d", shard, i), RequestID: fmt.Sprintf("req-%d-%d", shard, i),
			})
			if a.status != fasthttp.StatusOK {
				t.Fatalf("create at the leader: %s", a)
			}
			l := a.link(t)
			if !l.Created || l.Alias || r.PartitionOfCode(l.Code) != p || l.CreatedAtMs <= 0 {
				t.Fatalf("created link %+v (partition %d)", l, p)
			}
			links = append(links, l)
		}

		// A retried request ID returns the first answer.
		a := cl.call(laddr, shardrpc.PathCreate, shard, shardrpc.CreateRequest{
			Partition: partitionOf(t, r, shard, 0), URL: fmt.Sprintf("https://example.com/%d/0", shard), RequestID: fmt.Sprintf("req-%d-0", shard),
		})
		if a.status != fasthttp.StatusOK || a.link(t).Code != links[0].Code {
			t.Fatalf("retried create: %s, want code %s", a, links[0].Code)
		}

		// A follower refuses creates and names the leader.
		a = cl.call(faddr, shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: partitionOf(t, r, shard, 0), URL: "https://x.example/"})
		if e := a.errorBody(t); a.status != fasthttp.StatusMisdirectedRequest || e.Code != shardrpc.ErrCodeNotLeader ||
			e.LeaderID != leader || e.LeaderRPC != laddr {
			t.Fatalf("create at follower %s: %s, want not_leader naming %s at %s", fid, a, leader, laddr)
		}

		for _, l := range links {
			// Linearizable at the leader.
			a := cl.call(laddr, shardrpc.PathResolve, shard, shardrpc.ResolveRequest{Code: l.Code, Linearizable: true})
			if a.status != fasthttp.StatusOK || a.link(t).URL != l.URL {
				t.Fatalf("linearizable resolve of %s: %s", l.Code, a)
			}
			// Linearizable at a follower: not the leader.
			a = cl.call(faddr, shardrpc.PathResolve, shard, shardrpc.ResolveRequest{Code: l.Code, Linearizable: true})
			if e := a.errorBody(t); a.status != fasthttp.StatusMisdirectedRequest || e.Code != shardrpc.ErrCodeNotLeader || e.LeaderRPC != laddr {
				t.Fatalf("linearizable resolve at a follower: %s", a)
			}
			// Local at the follower: eventually there.
			c.Eventually("the follower to apply "+l.Code, func() error {
				a := cl.call(faddr, shardrpc.PathResolve, shard, shardrpc.ResolveRequest{Code: l.Code})
				if a.status != fasthttp.StatusOK {
					return fmt.Errorf("local resolve: %s", a)
				}
				if got := a.link(t); got.URL != l.URL || got.CreatedAtMs != l.CreatedAtMs {
					return fmt.Errorf("local resolve: %+v, want %+v", got, l)
				}
				return nil
			})
		}

		// A missing code: not_found only from a linearizable read.
		missing := r.Codec().Encode(func() uint64 { lo, hi := r.Codec().Range(partitionOf(t, r, shard, 0)); return lo + (hi-lo)/2 }())
		a = cl.call(laddr, shardrpc.PathResolve, shard, shardrpc.ResolveRequest{Code: missing, Linearizable: true})
		if a.status != fasthttp.StatusNotFound || a.errorBody(t).Code != shardrpc.ErrCodeNotFound {
			t.Fatalf("linearizable resolve of a missing code: %s", a)
		}
		for _, addr := range []string{laddr, faddr} {
			a = cl.call(addr, shardrpc.PathResolve, shard, shardrpc.ResolveRequest{Code: missing})
			if a.status != fasthttp.StatusNotFound || a.errorBody(t).Code != shardrpc.ErrCodeMaybeStale {
				t.Fatalf("local resolve of a missing code at %s: %s", addr, a)
			}
		}
	}
}

func TestAliasesAndReuse(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r := mustRing(t, c.Config())
	cl := rpc{t: t}
	const shard = 2
	leader := c.WaitLeader(shard)
	addr := c.RPCAddr(leader)

	alias, p := aliasOf(t, r, shard, "launch")
	first := shardrpc.CreateRequest{Partition: p, URL: "https://one.example/", Alias: alias, RequestID: "alias-1"}
	a := cl.call(addr, shardrpc.PathCreate, shard, first)
	if l := a.link(t); a.status != fasthttp.StatusOK || l.Code != alias || !l.Alias || !l.Created {
		t.Fatalf("alias create: %s", a)
	}
	g := c.Node(leader).Group(shard)
	last := g.Stats().LastIndex
	a = cl.call(addr, shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: p, URL: "https://two.example/", Alias: alias})
	if a.status != fasthttp.StatusConflict || a.errorBody(t).Code != shardrpc.ErrCodeAliasTaken {
		t.Fatalf("second alias create: %s, want 409 alias_taken", a)
	}
	if now := g.Stats().LastIndex; now != last {
		t.Fatalf("a conflicting alias create grew the log from %d to %d", last, now)
	}
	// A retry of the first create (same request ID and URL) gets its
	// answer again; another request for the same URL is refused.
	a = cl.call(addr, shardrpc.PathCreate, shard, first)
	if l := a.link(t); a.status != fasthttp.StatusOK || l.Code != alias || !l.Created {
		t.Fatalf("retried alias create: %s", a)
	}
	a = cl.call(addr, shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: p, URL: first.URL, Alias: alias, RequestID: "alias-2"})
	if a.status != fasthttp.StatusConflict || a.errorBody(t).Code != shardrpc.ErrCodeAliasTaken {
		t.Fatalf("same alias and URL, another request: %s, want 409 alias_taken", a)
	}
	a = cl.call(addr, shardrpc.PathResolve, shard, shardrpc.ResolveRequest{Code: alias, Linearizable: true})
	if l := a.link(t); a.status != fasthttp.StatusOK || l.URL != "https://one.example/" {
		t.Fatalf("resolve alias: %s", a)
	}

	// Reuse returns the first link of the URL, Created false.
	up := partitionOf(t, r, shard, 3)
	orig := cl.call(addr, shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: up, URL: "https://reuse.example/", Reuse: true}).link(t)
	again := cl.call(addr, shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: up, URL: "https://reuse.example/", Reuse: true})
	if l := again.link(t); again.status != fasthttp.StatusOK || l.Code != orig.Code || l.Created {
		t.Fatalf("reuse: %s, want code %s with created false", again, orig.Code)
	}
}

func TestBadRequests(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r := mustRing(t, c.Config())
	cl := rpc{t: t}
	const shard = 1
	c.WaitLeader(shard)
	mine := partitionOf(t, r, shard, 0)
	other := partitionOf(t, r, 2, 0)
	alias, ap := aliasOf(t, r, shard, "ok")

	cases := []struct {
		name   string
		method string
		path   string
		shard  uint64
		body   any
		status int
		code   shardrpc.Code
	}{
		{"GET", fasthttp.MethodGet, shardrpc.PathStatus, shard, nil, 405, shardrpc.ErrCodeBadRequest},
		{"unknown path", fasthttp.MethodPost, "/rpc/v1/nope", shard, nil, 404, shardrpc.ErrCodeBadRequest},
		{"no shard header", fasthttp.MethodPost, shardrpc.PathStatus, 0, nil, 400, shardrpc.ErrCodeBadRequest},
		{"unknown shard", fasthttp.MethodPost, shardrpc.PathStatus, 99, nil, 404, shardrpc.ErrCodeUnknownShard},
		{"bad JSON", fasthttp.MethodPost, shardrpc.PathCreate, shard, []byte("{"), 400, shardrpc.ErrCodeBadRequest},
		{"wrong shard", fasthttp.MethodPost, shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: other, URL: "https://x/"}, 421, shardrpc.ErrCodeWrongShard},
		{"partition out of range", fasthttp.MethodPost, shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: 1 << 20, URL: "https://x/"}, 400, shardrpc.ErrCodeBadRequest},
		{"empty URL", fasthttp.MethodPost, shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: mine}, 400, shardrpc.ErrCodeBadRequest},
		{"long URL", fasthttp.MethodPost, shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: mine, URL: "https://x/" + strings.Repeat("a", 9000)}, 400, shardrpc.ErrCodeBadRequest},
		{"bad alias", fasthttp.MethodPost, shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: mine, URL: "https://x/", Alias: "a/b"}, 400, shardrpc.ErrCodeBadRequest},
		{"alias in another partition", fasthttp.MethodPost, shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: ap + 1, URL: "https://x/", Alias: alias}, 0, ""},
		{"long request ID", fasthttp.MethodPost, shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: mine, URL: "https://x/", RequestID: strings.Repeat("r", 200)}, 400, shardrpc.ErrCodeBadRequest},
		{"long title", fasthttp.MethodPost, shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: mine, URL: "https://x/", Title: strings.Repeat("t", 257)}, 400, shardrpc.ErrCodeBadRequest},
		{"bad tag", fasthttp.MethodPost, shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: mine, URL: "https://x/", Tags: []string{"a b"}}, 400, shardrpc.ErrCodeBadRequest},
		{"too many tags", fasthttp.MethodPost, shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: mine, URL: "https://x/", Tags: strings.Split("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", ",")}, 400, shardrpc.ErrCodeBadRequest},
		{"redirect status", fasthttp.MethodPost, shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: mine, URL: "https://x/", RedirectStatus: 303}, 400, shardrpc.ErrCodeBadRequest},
		{"bad owner", fasthttp.MethodPost, shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: mine, URL: "https://x/", Owner: "a b"}, 400, shardrpc.ErrCodeBadRequest},
		{"empty code", fasthttp.MethodPost, shardrpc.PathResolve, shard, shardrpc.ResolveRequest{}, 400, shardrpc.ErrCodeBadRequest},
		{"code of another shard", fasthttp.MethodPost, shardrpc.PathResolve, shard, shardrpc.ResolveRequest{Code: r.Codec().Encode(func() uint64 { lo, _ := r.Codec().Range(other); return lo }())}, 421, shardrpc.ErrCodeWrongShard},
	}
	for _, tc := range cases {
		// At whoever leads the shard now: under load the leadership may
		// move during the test, and a not_leader answer is no verdict on
		// the request.
		a, err := cl.doAtLeader(c, shard, tc.method, tc.path, tc.shard, tc.body)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if tc.status == 0 {
			// The partition after the alias's may belong to another
			// shard (421) or to this one (400): either way a refusal.
			if a.status != 400 && a.status != 421 {
				t.Errorf("%s: %s, want a refusal", tc.name, a)
			}
			continue
		}
		if a.status != tc.status || a.errorBody(t).Code != tc.code {
			t.Errorf("%s: %s, want %d %s", tc.name, a, tc.status, tc.code)
		}
	}
	// Nothing was stored: the leader's applied state holds no link.
	a, err := cl.doAtLeader(c, shard, fasthttp.MethodPost, shardrpc.PathResolve, shard, shardrpc.ResolveRequest{Code: alias, Linearizable: true})
	if err != nil {
		t.Fatal(err)
	}
	if a.status != fasthttp.StatusNotFound {
		t.Fatalf("alias after refused creates: %s", a)
	}
}

func TestStatus(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	cl := rpc{t: t}
	leader := c.WaitLeader(3)
	for _, id := range c.Running() {
		a := cl.call(c.RPCAddr(id), shardrpc.PathStatus, 3, []byte("{}"))
		var st shardrpc.Status
		if err := json.Unmarshal(a.body, &st); err != nil || a.status != 200 {
			t.Fatalf("status at %s: %s, %v", id, a, err)
		}
		wantState := "Follower"
		if id == leader {
			wantState = "Leader"
		}
		if st.Shard != 3 || st.NodeID != id || st.State != wantState || st.LeaderID != leader ||
			st.LeaderRPC != c.RPCAddr(leader) || st.Term == 0 || st.LastIndex == 0 {
			t.Fatalf("status at %s: %+v", id, st)
		}
	}
}

func TestSecret(t *testing.T) {
	const secret = "s3cret-rpc"
	c := nodetest.Start(t, nodetest.Options{Nodes: 1, Shards: 1, RPCSecret: secret})
	leader := c.WaitLeader(1)
	addr := c.RPCAddr(leader)
	for _, s := range []string{"", "wrong", secret + "x", secret[:len(secret)-1]} {
		a := rpc{t: t, secret: s}.call(addr, shardrpc.PathStatus, 1, nil)
		if a.status != fasthttp.StatusUnauthorized || a.errorBody(t).Code != shardrpc.ErrCodeUnauthorized {
			t.Fatalf("secret %q: %s, want 401 unauthorized", s, a)
		}
	}
	// The secret is checked before anything else: no hint about shards.
	a := rpc{t: t}.call(addr, shardrpc.PathStatus, 99, nil)
	if a.status != fasthttp.StatusUnauthorized {
		t.Fatalf("unknown shard without the secret: %s", a)
	}
	if a := (rpc{t: t, secret: secret}).call(addr, shardrpc.PathStatus, 1, nil); a.status != 200 {
		t.Fatalf("with the secret: %s", a)
	}
}

// TestRestartKeepsEverything restarts every node, one after the other and
// then all at once, and requires every link to be there and no group to
// have been bootstrapped again.
func TestRestartKeepsEverything(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r := mustRing(t, c.Config())
	cl := rpc{t: t}
	c.WaitLeaders()

	type created struct {
		shard     uint64
		partition uint32
		link      shardrpc.Link
	}
	var links []created
	add := func(n int) {
		for _, s := range c.Config().Shards {
			for i := 0; i < n; i++ {
				p := partitionOf(t, r, s.ID, len(links))
				a := cl.createAtLeader(c, s.ID, shardrpc.CreateRequest{
					Partition: p, URL: fmt.Sprintf("https://restart.example/%d", len(links)),
					RequestID: fmt.Sprintf("restart-%d", len(links)),
				})
				if a.status != 200 {
					t.Fatalf("create: %s", a)
				}
				links = append(links, created{s.ID, p, a.link(t)})
			}
		}
	}
	// After restarts the replicas' memos of the request table and the
	// reuse index start empty and are rebuilt from the store: a retry
	// still gets its first answer, and a reuse create of a stored URL the
	// existing link (neither creates anything).
	checkRetries := func(when string) {
		t.Helper()
		for i, l := range links {
			req := shardrpc.CreateRequest{Partition: l.partition, URL: l.link.URL, RequestID: fmt.Sprintf("restart-%d", i)}
			if a := cl.createAtLeader(c, l.shard, req); a.status != 200 || a.link(t).Code != l.link.Code || !a.link(t).Created {
				t.Fatalf("%s: retry of create %d: %s, want %s again", when, i, a, l.link.Code)
			}
			req.RequestID, req.Reuse = fmt.Sprintf("restart-reuse-%d-%s", i, when), true
			if a := cl.createAtLeader(c, l.shard, req); a.status != 200 || a.link(t).Code != l.link.Code || a.link(t).Created {
				t.Fatalf("%s: reuse create of %s: %s, want the existing %s", when, l.link.URL, a, l.link.Code)
			}
		}
	}
	checkAll := func(when string) {
		t.Helper()
		checkRetries(when)
		for _, l := range links {
			leader := c.WaitLeader(l.shard)
			a := cl.call(c.RPCAddr(leader), shardrpc.PathResolve, l.shard, shardrpc.ResolveRequest{Code: l.link.Code, Linearizable: true})
			if a.status == fasthttp.StatusMisdirectedRequest {
				// Leadership moved between WaitLeader and the call.
				a = cl.call(c.RPCAddr(c.WaitLeader(l.shard)), shardrpc.PathResolve, l.shard, shardrpc.ResolveRequest{Code: l.link.Code, Linearizable: true})
			}
			if a.status != 200 || a.link(t).URL != l.link.URL {
				t.Fatalf("%s: resolve %s: %s", when, l.link.Code, a)
			}
		}
	}
	add(5)
	bootstraps := configEntries(t, c)

	for _, id := range c.NodeIDs() {
		c.RestartNode(id)
		add(2)
	}
	checkAll("after rolling restarts")

	for _, id := range c.NodeIDs() {
		c.StopNode(id)
	}
	for _, id := range c.NodeIDs() {
		c.StartNode(id)
	}
	checkAll("after a full restart")
	add(1)

	// Every replica applied everything: local reads everywhere find it all.
	for _, l := range links {
		for _, id := range c.Running() {
			c.Eventually("replica "+id+" to hold "+l.link.Code, func() error {
				a := cl.call(c.RPCAddr(id), shardrpc.PathResolve, l.shard, shardrpc.ResolveRequest{Code: l.link.Code})
				if a.status != 200 {
					return fmt.Errorf("%s", a)
				}
				return nil
			})
		}
	}
	if after := configEntries(t, c); after != bootstraps {
		t.Fatalf("configuration entries went from %d to %d: a group was bootstrapped again", bootstraps, after)
	}
}

// configEntries counts the raft configuration entries in every replica's
// log: one per replica per group (the bootstrap) as long as membership does
// not change.
func configEntries(t *testing.T, c *nodetest.Cluster) int {
	t.Helper()
	n := 0
	for _, id := range c.Running() {
		nd := c.Node(id)
		for _, shard := range nd.Shards() {
			ls := raftstore.NewLogStore(nd.Store().DB(), shard)
			first, err := ls.FirstIndex()
			if err != nil {
				t.Fatal(err)
			}
			last, err := ls.LastIndex()
			if err != nil {
				t.Fatal(err)
			}
			for i := first; i <= last && i > 0; i++ {
				var e raft.Log
				if err := ls.GetLog(i, &e); err != nil {
					t.Fatalf("node %s shard %d log %d: %v", id, shard, i, err)
				}
				if e.Type == raft.LogConfiguration {
					n++
				}
			}
		}
	}
	return n
}

// TestLeaderStop stops the leader of a shard: another replica takes over
// within seconds, creates succeed there, and the earlier links stay.
func TestLeaderStop(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r := mustRing(t, c.Config())
	cl := rpc{t: t}
	const shard = 1
	leader := c.WaitLeader(shard)
	before := cl.createAtLeader(c, shard, shardrpc.CreateRequest{Partition: partitionOf(t, r, shard, 0), URL: "https://before.example/"}).link(t)

	c.StopNode(leader)
	start := time.Now()
	next := c.WaitLeader(shard)
	if next == leader {
		t.Fatalf("the stopped node %s still leads", leader)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a new leader took %s", d)
	}
	a := cl.createAtLeader(c, shard, shardrpc.CreateRequest{Partition: partitionOf(t, r, shard, 0), URL: "https://after.example/", RequestID: "after"})
	if a.status != 200 || a.link(t).Code == before.Code {
		t.Fatalf("create after the leader stopped: %s", a)
	}
	a = cl.call(c.RPCAddr(c.WaitLeader(shard)), shardrpc.PathResolve, shard, shardrpc.ResolveRequest{Code: before.Code, Linearizable: true})
	if a.status != 200 || a.link(t).URL != before.URL {
		t.Fatalf("resolve after the leader stopped: %s", a)
	}
	// The stopped node answers nothing; a follower that remains names the
	// new leader.
	if _, err := cl.do(c.RPCAddr(leader), fasthttp.MethodPost, shardrpc.PathStatus, shard, nil); err == nil {
		t.Fatalf("the stopped node still answers")
	}
	c.StartNode(leader)
	c.Eventually("the restarted node to learn the leader", func() error {
		a := cl.call(c.RPCAddr(leader), shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: partitionOf(t, r, shard, 0), URL: "https://x/"})
		if e := a.errorBody(t); a.status != 421 || e.LeaderRPC == "" || e.LeaderID == leader {
			return fmt.Errorf("%s", a)
		}
		return nil
	})
}

func TestNewRefusesUnknownNode(t *testing.T) {
	cfg := nodetest.NewConfig(t, nodetest.Options{Nodes: 1, Shards: 1})
	if _, err := node.New(cfg, "n9", node.Options{}); !errors.Is(err, node.ErrUnknownNode) {
		t.Fatalf("New with an unknown node ID: %v", err)
	}
}

func TestNewFailsCleanlyOnABusyPort(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{Nodes: 1, Shards: 1})
	cfg := c.Config()
	// A second node on the same addresses and data dir must fail, and
	// release what it opened (goleak checks the goroutines).
	if _, err := node.New(cfg, "n1", node.Options{}); err == nil {
		t.Fatalf("a second node on the same ports started")
	}
}

// TestConcurrentCreatesGetDistinctCodes sends creates from many goroutines
// to every shard's leader at once (raft batches them into few entries) and
// requires every acknowledged code to be distinct and to resolve.
func TestConcurrentCreatesGetDistinctCodes(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r := mustRing(t, c.Config())
	c.WaitLeaders()
	const workers, perWorker = 16, 20
	type result struct {
		shard uint64
		link  shardrpc.Link
		err   error
	}
	results := make(chan result, workers*perWorker)
	parts := map[uint64][]uint32{}
	for shard := uint64(1); shard <= 3; shard++ {
		parts[shard] = []uint32{partitionOf(t, r, shard, 0), partitionOf(t, r, shard, 1)}
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := rpc{t: t}
			for i := 0; i < perWorker; i++ {
				shard := uint64(1 + (w+i)%3)
				// Few partitions, so that many creates share an allocator.
				req := shardrpc.CreateRequest{Partition: parts[shard][i%2], URL: fmt.Sprintf("https://c.example/%d/%d", w, i), RequestID: fmt.Sprintf("c-%d-%d", w, i)}
				a, err := cl.atLeader(c, shard, shardrpc.PathCreate, req)
				if err == nil && a.status != 200 {
					err = fmt.Errorf("create: %s", a)
				}
				var l shardrpc.Link
				if err == nil {
					err = json.Unmarshal(a.body, &l)
				}
				results <- result{shard, l, err}
			}
		}()
	}
	wg.Wait()
	close(results)
	seen := map[string]bool{}
	cl := rpc{t: t}
	for res := range results {
		if res.err != nil {
			t.Fatal(res.err)
		}
		if seen[res.link.Code] {
			t.Fatalf("code %s acknowledged twice", res.link.Code)
		}
		seen[res.link.Code] = true
		a, err := cl.atLeader(c, res.shard, shardrpc.PathResolve, shardrpc.ResolveRequest{Code: res.link.Code, Linearizable: true})
		if err != nil || a.status != 200 || a.link(t).URL != res.link.URL {
			t.Fatalf("resolve %s: %s, %v", res.link.Code, a, err)
		}
	}
	if len(seen) != workers*perWorker {
		t.Fatalf("%d codes, want %d", len(seen), workers*perWorker)
	}
}

// TestCloseUnderLoad closes the leader while creates are in flight: every
// call gets an answer of the contract or a connection error, Close returns
// in bounded time, and nothing leaks (goleak).
func TestCloseUnderLoad(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r := mustRing(t, c.Config())
	const shard = 1
	leader := c.WaitLeader(shard)
	addr := c.RPCAddr(leader)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	parts := r.PartitionsOf(shard)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := rpc{t: t}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				a, err := cl.do(addr, fasthttp.MethodPost, shardrpc.PathCreate, shard, shardrpc.CreateRequest{
					Partition: parts[i%len(parts)], URL: fmt.Sprintf("https://load.example/%d/%d", w, i),
				})
				mu.Lock()
				if err != nil {
					statuses[0]++
				} else {
					statuses[a.status]++
				}
				mu.Unlock()
			}
		}()
	}
	c.Eventually("some creates to succeed", func() error {
		mu.Lock()
		defer mu.Unlock()
		if statuses[200] < 20 {
			return fmt.Errorf("%d successes", statuses[200])
		}
		return nil
	})
	start := time.Now()
	c.StopNode(leader)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Close took %s", d)
	}
	close(stop)
	wg.Wait()
	for st := range statuses {
		switch st {
		case 0, 200, 421, 503:
		default:
			t.Errorf("status %d during shutdown (%d times)", st, statuses[st])
		}
	}
	t.Logf("answers: %v", statuses)
	if next := c.WaitLeader(shard); next == leader {
		t.Fatalf("the stopped node still leads")
	}
}

// TestQuorumLoss stops two of three nodes: the last replica refuses writes
// and linearizable reads without naming a leader, yet still serves the
// links it holds from local reads (redirects survive a lost quorum).
func TestQuorumLoss(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{Shards: 1})
	r := mustRing(t, c.Config())
	cl := rpc{t: t}
	leader := c.WaitLeader(1)
	l := cl.createAtLeader(c, 1, shardrpc.CreateRequest{Partition: partitionOf(t, r, 1, 0), URL: "https://kept.example/"}).link(t)
	c.WaitApplied(1, c.Node(leader).Group(1).AppliedIndex())

	survivor := follower(t, c, 1, leader)
	for _, id := range c.Running() {
		if id != survivor {
			c.StopNode(id)
		}
	}
	addr := c.RPCAddr(survivor)
	c.Eventually("the survivor to refuse writes", func() error {
		a := cl.call(addr, shardrpc.PathCreate, 1, shardrpc.CreateRequest{Partition: partitionOf(t, r, 1, 0), URL: "https://lost.example/"})
		switch {
		case a.status == 421 && a.errorBody(t).Code == shardrpc.ErrCodeNotLeader && a.errorBody(t).LeaderRPC == "":
			return nil
		case a.status == 503:
			return fmt.Errorf("%s", a) // a proposal raced the step-down; ask again
		default:
			return fmt.Errorf("unexpected %s", a)
		}
	})
	a := cl.call(addr, shardrpc.PathResolve, 1, shardrpc.ResolveRequest{Code: l.Code, Linearizable: true})
	if a.status != 421 || a.errorBody(t).Code != shardrpc.ErrCodeNotLeader {
		t.Fatalf("linearizable resolve without quorum: %s", a)
	}
	a = cl.call(addr, shardrpc.PathResolve, 1, shardrpc.ResolveRequest{Code: l.Code})
	if a.status != 200 || a.link(t).URL != l.URL {
		t.Fatalf("local resolve without quorum: %s", a)
	}
	var st shardrpc.Status
	a = cl.call(addr, shardrpc.PathStatus, 1, nil)
	if err := json.Unmarshal(a.body, &st); err != nil || st.LeaderID != "" || st.State == "Leader" {
		t.Fatalf("status without quorum: %s", a)
	}
}
