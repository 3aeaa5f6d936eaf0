package raftstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
)

// testNode is one node of an in-package test cluster hosting group 1.
type testNode struct {
	t       *testing.T
	id      string
	dir     string
	addr    string
	fs      vfs.FS
	tune    func(*raft.Config)
	store   *Store
	machine *counterMachine
	group   *Group
}

const testGroup = 1

// newTestNodes prepares n nodes (listeners bound, so the peer list is
// known) without starting them.
func newTestNodes(t *testing.T, n int, tune func(*raft.Config)) ([]*testNode, []raft.Server) {
	nodes := make([]*testNode, n)
	peers := make([]raft.Server, n)
	for i := range nodes {
		l := newTCPLayer(t, "")
		addr := l.Addr().String()
		_ = l.Close() // start reopens it; the port stays ours in practice
		nodes[i] = &testNode{t: t, id: fmt.Sprintf("n%d", i+1), dir: t.TempDir(), addr: addr, tune: tune}
		peers[i] = raft.Server{ID: raft.ServerID(nodes[i].id), Address: raft.ServerAddress(addr)}
	}
	return nodes, peers
}

// start opens the node's store and its replica of group 1.
func (n *testNode) start(peers []raft.Server) {
	t := n.t
	t.Helper()
	layer := newTCPLayer(t, n.addr)
	s, err := Open(Options{
		NodeID:  n.id,
		Dir:     n.dir,
		Network: testNet{testGroup: layer},
		Logger:  testLogger(t).Named(n.id),
		FS:      n.fs,
		Raft: func(c *raft.Config) {
			fastRaft(c)
			if n.tune != nil {
				n.tune(c)
			}
		},
		TransportTimeout: 2 * time.Second,
	})
	if err != nil {
		_ = layer.Close()
		t.Fatalf("%s: open store: %v", n.id, err)
	}
	n.store = s
	t.Cleanup(func() { _ = s.Close() })
	n.machine = &counterMachine{}
	g, err := s.OpenGroup(GroupConfig{ID: testGroup, Peers: peers, Machine: n.machine})
	if err != nil {
		t.Fatalf("%s: open group: %v", n.id, err)
	}
	n.group = g
}

func (n *testNode) stop() {
	n.t.Helper()
	if err := n.store.Close(); err != nil {
		n.t.Fatalf("%s: close: %v", n.id, err)
	}
}

// waitLeader waits until exactly one running node leads and every running
// node knows it; it returns the leader.
func waitLeader(t *testing.T, nodes []*testNode) *testNode {
	t.Helper()
	var leader *testNode
	waitFor(t, 10*time.Second, "a leader known to all", func() bool {
		leader = nil
		for _, n := range nodes {
			if n.group.IsLeader() {
				if leader != nil {
					return false
				}
				leader = n
			}
		}
		if leader == nil {
			return false
		}
		for _, n := range nodes {
			if id, _ := n.group.Leader(); id != leader.id {
				return false
			}
		}
		return true
	})
	return leader
}

func propose(t *testing.T, g *Group, cmd, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var k []byte
	if key != "" {
		k = []byte(key)
	}
	res, err := g.Propose(ctx, []byte(cmd), k)
	if err != nil {
		t.Fatalf("propose %q: %v", cmd, err)
	}
	return string(res)
}

var autoKey atomic.Uint64

// tryPropose proposes cmd to whichever of groups leads, retrying through
// leader changes until deadline. A retried proposal keeps its idempotency
// key ("" gets a unique one), so it is applied at most once.
func tryPropose(groups []*Group, cmd, key string, deadline time.Time) (string, error) {
	if key == "" {
		key = fmt.Sprintf("auto-%d", autoKey.Add(1))
	}
	for {
		var last error = errors.New("no leader")
		for _, g := range groups {
			if !g.IsLeader() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			r, err := g.Propose(ctx, []byte(cmd), []byte(key))
			cancel()
			if err == nil {
				return string(r), nil
			}
			if !errors.Is(err, ErrNotLeader) && !errors.Is(err, context.DeadlineExceeded) {
				return "", err
			}
			last = err
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("proposal %q (key %s) did not commit: %w", cmd, key, last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func clusterPropose(t *testing.T, groups []*Group, cmd, key string) string {
	t.Helper()
	r, err := tryPropose(groups, cmd, key, time.Now().Add(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// clusterRead reads a counter linearizably from whichever group leads.
func clusterRead(t *testing.T, groups []*Group, key string) uint64 {
	t.Helper()
	var n uint64
	waitFor(t, 20*time.Second, "a linearizable read of "+key, func() bool {
		for _, g := range groups {
			if g.IsLeader() {
				c, err := readCount(t, g, ReadLinearizable, key)
				if err == nil {
					n = c
					return true
				}
			}
		}
		return false
	})
	return n
}

// transferFrom moves leadership away from g, retrying raft's transfer
// (it times out after an election timeout on a loaded machine).
func transferFrom(t *testing.T, g *Group) {
	t.Helper()
	waitFor(t, 20*time.Second, "a leadership transfer", func() bool {
		err := g.TransferLeadership()
		return err == nil || !g.IsLeader()
	})
}

func groupsOf(nodes []*testNode) []*Group {
	gs := make([]*Group, len(nodes))
	for i, n := range nodes {
		gs[i] = n.group
	}
	return gs
}

func readCount(t *testing.T, g *Group, mode ReadMode, key string) (uint64, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n uint64
	err := g.Read(ctx, mode, func(r Reader) error {
		n = readCounter(r, []byte("n/"+key))
		return nil
	})
	return n, err
}

func TestGroupSingleNode(t *testing.T) {
	nodes, peers := newTestNodes(t, 1, nil)
	n := nodes[0]
	n.start(peers)
	waitLeader(t, nodes)
	g := n.group

	if got := propose(t, g, "a", ""); got != "a=1@"+fmt.Sprint(g.AppliedIndex()) {
		t.Fatalf("first propose: %q", got)
	}
	first := propose(t, g, "a", "req-1")
	if again := propose(t, g, "a", "req-1"); again != first {
		t.Fatalf("retry with the same key: %q, first %q", again, first)
	}
	if calls := n.machine.calls.Load(); calls != 2 {
		t.Fatalf("StateMachine.Apply called %d times, want 2", calls)
	}
	// ProposeAt returns the index the machine applied the command at.
	res, idx, err := g.ProposeAt(context.Background(), []byte("a"), nil)
	if err != nil || string(res) != fmt.Sprintf("a=3@%d", idx) || idx == 0 || idx != g.AppliedIndex() {
		t.Fatalf("ProposeAt: %q at %d, %v (applied %d)", res, idx, err, g.AppliedIndex())
	}
	for _, mode := range []ReadMode{ReadLinearizable, ReadLocal} {
		if c, err := readCount(t, g, mode, "a"); err != nil || c != 3 {
			t.Fatalf("read mode %d: %d, %v; want 3", mode, c, err)
		}
	}
	st := g.Stats()
	if st.State != "Leader" || st.LeaderID != "n1" || st.AppliedIndex != g.AppliedIndex() || st.AppliedIndex < 4 || st.Term == 0 || st.ID != testGroup {
		t.Fatalf("stats: %+v", st)
	}
	if err := g.Read(context.Background(), ReadMode(9), func(Reader) error { return nil }); err == nil {
		t.Fatal("unknown read mode accepted")
	}
	sentinel := errors.New("from fn")
	if err := g.Read(context.Background(), ReadLocal, func(Reader) error { return sentinel }); !errors.Is(err, sentinel) {
		t.Fatalf("fn's error not returned: %v", err)
	}
	if got, err := n.store.Group(testGroup); err != nil || got != g {
		t.Fatalf("Group(1) = %v, %v", got, err)
	}
	if _, err := n.store.Group(99); !errors.Is(err, ErrUnknownGroup) {
		t.Fatalf("Group(99): %v", err)
	}
	if _, err := n.store.OpenGroup(GroupConfig{ID: testGroup, Peers: peers, Machine: n.machine}); err == nil {
		t.Fatal("opening an open group twice succeeded")
	}
	expired, cancel := context.WithTimeout(context.Background(), -time.Second)
	defer cancel()
	if _, err := g.Propose(expired, []byte("x"), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("expired ctx: %v", err)
	}

	n.stop()
	if err := n.store.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := g.Propose(context.Background(), []byte("x"), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("propose after close: %v", err)
	}
	if err := g.Read(context.Background(), ReadLocal, func(Reader) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if _, err := n.store.OpenGroup(GroupConfig{ID: 2, Machine: n.machine}); !errors.Is(err, ErrClosed) {
		t.Fatalf("OpenGroup after close: %v", err)
	}
}

// TestGroupRestartNoDoubleApply restarts a replica: raft replays its log
// (from the last snapshot on), and the persistent FSM must skip every entry
// it already holds: the StateMachine is not called again and the state is
// byte-for-byte the same.
func TestGroupRestartNoDoubleApply(t *testing.T) {
	nodes, peers := newTestNodes(t, 1, func(c *raft.Config) {
		c.SnapshotThreshold = 1 << 20 // snapshots only when asked
		c.TrailingLogs = 10
	})
	n := nodes[0]
	n.start(peers)
	waitLeader(t, nodes)
	results := map[string]string{}
	for i := 0; i < 60; i++ {
		key := ""
		if i%4 == 0 {
			key = fmt.Sprintf("k%d", i)
		}
		res := propose(t, n.group, fmt.Sprintf("c%d", i%5), key)
		if key != "" {
			results[key] = res
		}
		if i == 30 {
			if err := n.group.Snapshot(); err != nil {
				t.Fatal(err)
			}
		}
	}
	applied := n.group.AppliedIndex()
	before := groupState(t, n.store.DB(), testGroup)
	n.stop()

	n.start(peers)
	waitLeader(t, nodes)
	// A linearizable read waits for a barrier: raft has replayed (and the
	// FSM skipped) every entry before it. No-ops and barriers never reach
	// the FSM, so its applied index stays where it was.
	if _, err := readCount(t, n.group, ReadLinearizable, "c0"); err != nil {
		t.Fatal(err)
	}
	if got := n.group.AppliedIndex(); got != applied {
		t.Fatalf("applied index %d after replay, want %d", got, applied)
	}
	if ra := n.group.Raft().AppliedIndex(); ra <= applied {
		t.Fatalf("raft applied index %d: the log was not replayed past %d", ra, applied)
	}
	if calls := n.machine.calls.Load(); calls != 0 {
		t.Fatalf("replay called StateMachine.Apply %d times, want 0", calls)
	}
	if after := groupState(t, n.store.DB(), testGroup); after != before {
		t.Fatalf("state changed across the restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := dataGet(n.group, "dup"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an index was applied twice: %v", err)
	}
	for key, want := range results {
		if got := propose(t, n.group, "other", key); got != want {
			t.Fatalf("retry of %s after restart: %q, want %q", key, got, want)
		}
	}
	if calls := n.machine.calls.Load(); calls != 0 {
		t.Fatalf("retries called StateMachine.Apply %d times, want 0", calls)
	}
}

func dataGet(g *Group, key string) ([]byte, error) {
	var v []byte
	err := g.Read(context.Background(), ReadLocal, func(r Reader) error {
		var err error
		v, err = r.Get([]byte(key))
		return err
	})
	return v, err
}

// TestGroupCrashRecovery crashes a node (its DB loses every unsynced
// write): the acknowledged commands are in the synced raft log, and the
// FSM, which commits without sync, catches up by replay.
func TestGroupCrashRecovery(t *testing.T) {
	mem := vfs.NewCrashableMem()
	nodes, peers := newTestNodes(t, 1, nil)
	n := nodes[0]
	n.fs = mem
	n.start(peers)
	waitLeader(t, nodes)
	for i := 0; i < 40; i++ {
		propose(t, n.group, fmt.Sprintf("c%d", i%3), "")
	}
	want := map[string]uint64{}
	for _, k := range []string{"c0", "c1", "c2"} {
		c, err := readCount(t, n.group, ReadLocal, k)
		if err != nil {
			t.Fatal(err)
		}
		want[k] = c
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	n.stop()

	n.fs = crashed
	n.start(peers)
	waitLeader(t, nodes)
	waitFor(t, 10*time.Second, "replay", func() bool {
		c, err := readCount(t, n.group, ReadLocal, "c0")
		return err == nil && c == want["c0"]
	})
	for k, w := range want {
		if c, err := readCount(t, n.group, ReadLinearizable, k); err != nil || c != w {
			t.Fatalf("%s after crash: %d, %v; want %d", k, c, err, w)
		}
	}
	if _, err := dataGet(n.group, "dup"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an index was applied twice: %v", err)
	}
}

// TestClusterFollowerErrorsAndTransfer checks what a follower answers and a
// leadership transfer.
func TestClusterFollowerErrorsAndTransfer(t *testing.T) {
	nodes, peers := newTestNodes(t, 3, nil)
	for _, n := range nodes {
		n.start(peers)
	}
	groups := groupsOf(nodes)
	waitLeader(t, nodes)
	clusterPropose(t, groups, "a", "")
	var follower *testNode
	for _, n := range nodes {
		if !n.group.IsLeader() {
			follower = n
			break
		}
	}
	_, err := follower.group.Propose(context.Background(), []byte("a"), nil)
	var nle *NotLeaderError
	if !errors.As(err, &nle) || !errors.Is(err, ErrNotLeader) || nle.Group != testGroup {
		t.Fatalf("propose on a follower: %#v", err)
	}
	if nle.LeaderID != "" {
		var named *testNode
		for _, n := range nodes {
			if n.id == nle.LeaderID {
				named = n
			}
		}
		if named == nil || named == follower || nle.LeaderAddr != named.addr {
			t.Fatalf("follower names leader %q at %q", nle.LeaderID, nle.LeaderAddr)
		}
	}
	if _, err := readCount(t, follower.group, ReadLinearizable, "a"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("linearizable read on a follower: %v", err)
	}
	waitFor(t, 5*time.Second, "the follower to apply", func() bool {
		c, err := readCount(t, follower.group, ReadLocal, "a")
		return err == nil && c == 1
	})
	if err := follower.group.TransferLeadership(); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("transfer on a follower: %v", err)
	}

	leader := waitLeader(t, nodes)
	transferFrom(t, leader.group)
	// The new leader serves linearizable reads (after its barrier) and
	// writes.
	if c := clusterRead(t, groups, "a"); c != 1 {
		t.Fatalf("read on the new leader: %d, want 1", c)
	}
	clusterPropose(t, groups, "a", "")
	if c := clusterRead(t, groups, "a"); c != 2 {
		t.Fatalf("read after write on the new leader: %d, want 2", c)
	}
}

// TestClusterSnapshotInstall wipes a follower; the leader has compacted its
// log, so the follower can only catch up by a snapshot install, after which
// its group range is byte-for-byte the leader's.
func TestClusterSnapshotInstall(t *testing.T) {
	nodes, peers := newTestNodes(t, 3, func(c *raft.Config) {
		c.SnapshotThreshold = 1 << 20 // snapshots only when asked
		c.TrailingLogs = 5
	})
	for _, n := range nodes {
		n.start(peers)
	}
	waitLeader(t, nodes)
	for i := 0; i < 50; i++ {
		clusterPropose(t, groupsOf(nodes), fmt.Sprintf("c%d", i%7), fmt.Sprintf("k%d", i))
	}
	var victim *testNode
	var others []*testNode
	for _, n := range nodes {
		if !n.group.IsLeader() && victim == nil {
			victim = n
		} else {
			others = append(others, n)
		}
	}
	victim.stop()
	victim.dir = t.TempDir() // all its state is gone
	for i := 0; i < 50; i++ {
		clusterPropose(t, groupsOf(others), fmt.Sprintf("c%d", i%7), fmt.Sprintf("later%d", i))
	}
	// Snapshot and compact on both survivors, whichever leads.
	var want uint64
	for _, n := range others {
		if err := n.group.Snapshot(); err != nil {
			t.Fatalf("%s: %v", n.id, err)
		}
		first, err := n.group.logs.FirstIndex()
		if err != nil || first <= 2 {
			t.Fatalf("%s: log not compacted: first index %d, %v", n.id, first, err)
		}
		want = max(want, n.group.AppliedIndex())
	}

	victim.start(peers)
	waitFor(t, 20*time.Second, "the wiped follower to catch up", func() bool {
		return victim.group.AppliedIndex() >= want
	})
	if r := victim.group.Stats().SnapshotRestores; r < 1 {
		t.Fatalf("follower caught up without a snapshot install (restores=%d)", r)
	}
	// Everyone at the same applied index: the same bytes.
	waitFor(t, 10*time.Second, "identical ranges", func() bool {
		ref := groupState(t, nodes[0].store.DB(), testGroup)
		for _, n := range nodes[1:] {
			if groupState(t, n.store.DB(), testGroup) != ref {
				return false
			}
		}
		return true
	})
	if calls := victim.machine.calls.Load(); calls > 5 {
		t.Fatalf("the follower applied %d commands itself; the snapshot should have carried them", calls)
	}
	// The restored idempotency table answers a retry, also with the
	// restored node leading if it happens to.
	groups := groupsOf(nodes)
	c := clusterRead(t, groups, "c0")
	clusterPropose(t, groups, "c0", "k0")
	if c2 := clusterRead(t, groups, "c0"); c2 != c {
		t.Fatalf("a retried key was applied again: %d -> %d", c, c2)
	}
}

// TestGroupRecoversSnapshotNewerThanState covers a crash between raft
// persisting an installed snapshot and the FSM ingesting it: the FSM state
// is older than the newest snapshot and the log behind the snapshot is gone.
// OpenGroup must restore the snapshot before raft resumes from its index.
func TestGroupRecoversSnapshotNewerThanState(t *testing.T) {
	nodes, peers := newTestNodes(t, 1, func(c *raft.Config) {
		c.SnapshotThreshold = 1 << 20
		c.TrailingLogs = 2
	})
	n := nodes[0]
	n.start(peers)
	waitLeader(t, nodes)
	for i := 0; i < 30; i++ {
		propose(t, n.group, "a", "")
	}
	if err := n.group.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		propose(t, n.group, "a", "")
	}
	n.stop()

	// Roll the FSM state back to nothing, as if the snapshot had never been
	// ingested (the log before the snapshot is compacted away).
	s, err := Open(Options{NodeID: n.id, Dir: n.dir, Network: testNet{}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DB().DeleteRange(kindPrefix(testGroup, kindMeta), kindPrefix(testGroup, kindData+1), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	n.start(peers)
	if r := n.group.Stats().SnapshotRestores; r != 1 {
		t.Fatalf("OpenGroup restored %d snapshots, want 1", r)
	}
	waitLeader(t, nodes)
	if c, err := readCount(t, n.group, ReadLinearizable, "a"); err != nil || c != 35 {
		t.Fatalf("count after recovery: %d, %v; want 35", c, err)
	}
	if _, err := dataGet(n.group, "dup"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an index was applied twice: %v", err)
	}
}

// TestGroupConcurrentProposals proposes from many goroutines at once (raft
// batches them into shared log appends and FSM batches), each key twice.
func TestGroupConcurrentProposals(t *testing.T) {
	nodes, peers := newTestNodes(t, 3, nil)
	for _, n := range nodes {
		n.start(peers)
	}
	groups := groupsOf(nodes)
	waitLeader(t, nodes)
	const workers, each = 8, 25
	results := make([][]string, workers)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	deadline := time.Now().Add(30 * time.Second)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				key := fmt.Sprintf("w%d-%d", w, i)
				first, err := tryPropose(groups, "n", key, deadline)
				if err != nil {
					errs <- err
					return
				}
				again, err := tryPropose(groups, "n", key, deadline)
				if err != nil {
					errs <- err
					return
				}
				if again != first {
					errs <- fmt.Errorf("key %s: retry got %q, first %q", key, again, first)
					return
				}
				results[w] = append(results[w], first)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, rs := range results {
		for _, r := range rs {
			if seen[r] {
				t.Fatalf("two proposals got the same result %q", r)
			}
			seen[r] = true
		}
	}
	if c := clusterRead(t, groups, "n"); c != workers*each {
		t.Fatalf("count %d, want %d", c, workers*each)
	}
	want := uint64(0)
	for _, g := range groups {
		want = max(want, g.AppliedIndex())
	}
	for _, n := range nodes {
		waitFor(t, 5*time.Second, n.id+" to apply", func() bool { return n.group.AppliedIndex() >= want })
		// Every replica applied every command once; retries were answered
		// from the idempotency table.
		if calls := n.machine.calls.Load(); calls != workers*each {
			t.Fatalf("%s: StateMachine.Apply called %d times, want %d", n.id, calls, workers*each)
		}
	}
	ref := groupState(t, nodes[0].store.DB(), testGroup)
	for _, n := range nodes[1:] {
		if groupState(t, n.store.DB(), testGroup) != ref {
			t.Fatalf("%s's state differs from %s's", n.id, nodes[0].id)
		}
	}
}

// TestGroupReadDuringClose reads while the store closes: every read either
// completes or fails with ErrClosed, none touches a closed DB.
func TestGroupReadDuringClose(t *testing.T) {
	nodes, peers := newTestNodes(t, 1, nil)
	n := nodes[0]
	n.start(peers)
	waitLeader(t, nodes)
	propose(t, n.group, "a", "")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, err := readCount(t, n.group, ReadLocal, "a")
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	n.stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestProposeOutcomeUnknownRetry proposes on a leader that has lost its
// quorum: Propose gives up (ctx or leadership loss) without knowing the
// outcome; once the quorum is back, a retry with the same key applies the
// command at most once.
func TestProposeOutcomeUnknownRetry(t *testing.T) {
	nodes, peers := newTestNodes(t, 3, nil)
	for _, n := range nodes {
		n.start(peers)
	}
	leader := waitLeader(t, nodes)
	var followers []*testNode
	for _, n := range nodes {
		if n != leader {
			followers = append(followers, n)
		}
	}
	for _, f := range followers {
		f.stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	start := time.Now()
	_, err := leader.group.Propose(ctx, []byte("x"), []byte("once"))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrNotLeader) {
		t.Fatalf("propose without a quorum: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("propose without a quorum took %v", d)
	}
	for _, f := range followers {
		f.start(peers)
	}
	var res []byte
	waitFor(t, 20*time.Second, "the retry to succeed", func() bool {
		for _, n := range nodes {
			if !n.group.IsLeader() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			r, err := n.group.Propose(ctx, []byte("x"), []byte("once"))
			if err == nil {
				res = r
				return true
			}
		}
		return false
	})
	if c := clusterRead(t, groupsOf(nodes), "x"); c != 1 {
		t.Fatalf("count after retry: %d, want 1", c)
	}
	if string(res[:4]) != "x=1@" {
		t.Fatalf("retry result %q", res)
	}
}
