package rafttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/linkraft/linkraft/raftmux"
	"github.com/linkraft/linkraft/raftmux/faultnet"
	"github.com/linkraft/linkraft/raftstore"
)

// Options configure a test Cluster. The zero value is a 3-node cluster with
// one group running the KV machine.
type Options struct {
	// Nodes is the number of storage nodes (default 3). Every node hosts a
	// replica of every group.
	Nodes int
	// Groups is the number of Raft groups (default 1), with IDs 1..Groups.
	Groups int
	// Machine returns the state machine of one replica (node index, group
	// ID). It is called again for a replica when its node restarts.
	// Default: KV.
	Machine func(node int, group uint64) raftstore.StateMachine
	// Raft tunes each group's raft.Config after TestRaftConfig.
	Raft func(*raft.Config)
	// Store tunes each node's raftstore.Options after the cluster has
	// filled them in (NodeID, Dir, Network, Logger, Raft and the test
	// transport timeout). It must keep NodeID, Dir and Network.
	Store func(node int, opts *raftstore.Options)
	// WaitTimeout bounds every Wait* and EnsureSame call (default 30s).
	WaitTimeout time.Duration
	// LogLevel is the level of the logs sent to t.Log (default Info).
	LogLevel hclog.Level
}

// TestRaftConfig sets the raft timeouts the test clusters run with: fast
// elections (heartbeat and election timeouts of 300ms, a leader lease of
// 150ms) so failover tests take well under a second of raft time, yet slow
// enough to survive a loaded CI machine with the race detector.
func TestRaftConfig(c *raft.Config) {
	c.HeartbeatTimeout = 300 * time.Millisecond
	c.ElectionTimeout = 300 * time.Millisecond
	c.LeaderLeaseTimeout = 150 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
}

// testTransportTimeout is the I/O deadline of the test transports: a
// blackholed RPC fails after it.
const testTransportTimeout = 2 * time.Second

// Cluster is a set of storage nodes, each with its own Pebble directory (in
// t.TempDir()), its own raftmux.Mux on 127.0.0.1 wrapped by a fault network,
// and a replica of every group. Everything stops in t.Cleanup.
//
// Methods that wait or check fail the test (t.Fatalf) with a description of
// every replica; call them from the test's goroutine only. Propose, Leader,
// Running and the accessors are safe from any goroutine.
type Cluster struct {
	t      testing.TB
	opts   Options
	net    *faultnet.Network
	logger hclog.Logger
	peers  []raft.Server

	mu    sync.Mutex
	nodes []*node
}

// node is one storage node. Its fields other than id, dir and addr are
// guarded by Cluster.mu; mux and store are nil while the node is stopped.
type node struct {
	id     string
	dir    string
	addr   string
	mux    *raftmux.Mux
	store  *raftstore.Store
	groups map[uint64]*raftstore.Group
}

// New starts a cluster and registers its shutdown with t.Cleanup. The
// groups are bootstrapped with every node as a voter; New does not wait for
// leaders (see WaitLeader).
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Groups == 0 {
		opts.Groups = 1
	}
	if opts.Nodes < 0 || opts.Groups < 0 {
		t.Fatalf("rafttest: Options.Nodes %d and Options.Groups %d must be positive", opts.Nodes, opts.Groups)
	}
	if opts.Machine == nil {
		opts.Machine = func(int, uint64) raftstore.StateMachine { return KV{} }
	}
	if opts.WaitTimeout <= 0 {
		opts.WaitTimeout = 30 * time.Second
	}
	if opts.LogLevel == hclog.NoLevel {
		opts.LogLevel = hclog.Info
	}
	c := &Cluster{
		t:      t,
		opts:   opts,
		net:    faultnet.New(),
		logger: NewLogger(t, "rafttest", opts.LogLevel),
	}
	t.Cleanup(c.shutdown)

	muxes := make([]*raftmux.Mux, opts.Nodes)
	for i := range opts.Nodes {
		n := &node{id: fmt.Sprintf("n%d", i), dir: t.TempDir()}
		m, err := raftmux.Listen("127.0.0.1:0", raftmux.WithLogger(c.logger.Named(n.id).Named("mux")))
		if err != nil {
			t.Fatalf("rafttest: node %s: %v", n.id, err)
		}
		n.addr = m.Addr().String()
		muxes[i] = m
		c.mu.Lock()
		c.nodes = append(c.nodes, n)
		n.mux = m // owned by the cluster from here: shutdown closes it
		c.mu.Unlock()
		c.peers = append(c.peers, raft.Server{
			Suffrage: raft.Voter,
			ID:       raft.ServerID(n.id),
			Address:  raft.ServerAddress(n.addr),
		})
		c.net.SetAddr(n.id, n.addr)
	}
	for i := range opts.Nodes {
		if err := c.start(i, muxes[i]); err != nil {
			t.Fatalf("rafttest: %v", err)
		}
	}
	return c
}

// start opens node i's store and groups on mux.
func (c *Cluster) start(i int, mux *raftmux.Mux) error {
	n := c.nodes[i]
	logger := c.logger.Named(n.id)
	so := raftstore.Options{
		NodeID:  n.id,
		Dir:     n.dir,
		Network: c.net.WrapProvider(n.id, mux),
		Logger:  logger,
		Raft: func(conf *raft.Config) {
			TestRaftConfig(conf)
			if c.opts.Raft != nil {
				c.opts.Raft(conf)
			}
		},
		TransportTimeout: testTransportTimeout,
	}
	if c.opts.Store != nil {
		c.opts.Store(i, &so)
	}
	store, err := raftstore.Open(so)
	if err != nil {
		return fmt.Errorf("node %s: open store: %w", n.id, err)
	}
	groups := make(map[uint64]*raftstore.Group, c.opts.Groups)
	for g := uint64(1); g <= uint64(c.opts.Groups); g++ {
		grp, err := store.OpenGroup(raftstore.GroupConfig{
			ID:      g,
			Peers:   c.peers,
			Machine: c.opts.Machine(i, g),
		})
		if err != nil {
			_ = store.Close()
			return fmt.Errorf("node %s: open group %d: %w", n.id, g, err)
		}
		groups[g] = grp
	}
	c.mu.Lock()
	n.mux, n.store, n.groups = mux, store, groups
	c.mu.Unlock()
	return nil
}

// stop closes node i's store, then its mux (the store's transports run on
// the mux). It returns the errors; the node is stopped either way.
func (c *Cluster) stop(i int) error {
	c.mu.Lock()
	n := c.nodes[i]
	store, mux := n.store, n.mux
	n.store, n.mux, n.groups = nil, nil, nil
	c.mu.Unlock()
	var errs []error
	if store != nil {
		if err := store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("node %s: close store: %w", n.id, err))
		}
	}
	if mux != nil {
		if err := mux.Close(); err != nil {
			errs = append(errs, fmt.Errorf("node %s: close mux: %w", n.id, err))
		}
	}
	return errors.Join(errs...)
}

// shutdown stops every running node, in parallel.
func (c *Cluster) shutdown() {
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.stop(i); err != nil {
				c.t.Errorf("rafttest: shutdown: %v", err)
			}
		}()
	}
	wg.Wait()
}

// Len returns the number of nodes.
func (c *Cluster) Len() int { return len(c.nodes) }

// NodeID returns node i's raft server ID ("n<i>").
func (c *Cluster) NodeID(i int) string { return c.nodes[i].id }

// Addr returns node i's Raft address (its mux), which stays the same across
// restarts.
func (c *Cluster) Addr(i int) string { return c.nodes[i].addr }

// Dir returns node i's data directory.
func (c *Cluster) Dir(i int) string { return c.nodes[i].dir }

// Peers returns the groups' bootstrap membership.
func (c *Cluster) Peers() []raft.Server { return append([]raft.Server(nil), c.peers...) }

// Network returns the fault network between the nodes (node names are
// NodeID(i)).
func (c *Cluster) Network() *faultnet.Network { return c.net }

// Running reports whether node i is running.
func (c *Cluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].store != nil
}

// Store returns node i's store. It fails the test if the node is stopped.
func (c *Cluster) Store(i int) *raftstore.Store {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nodes[i].store == nil {
		c.t.Fatalf("rafttest: node %s is stopped", c.nodes[i].id)
	}
	return c.nodes[i].store
}

// Group returns node i's replica of group. It fails the test if the node is
// stopped or does not host the group.
func (c *Cluster) Group(i int, group uint64) *raftstore.Group {
	c.t.Helper()
	g, err := c.group(i, group)
	if err != nil {
		c.t.Fatalf("rafttest: %v", err)
	}
	return g
}

func (c *Cluster) group(i int, group uint64) (*raftstore.Group, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[i]
	if n.store == nil {
		return nil, fmt.Errorf("node %s is stopped: %w", n.id, raftstore.ErrClosed)
	}
	g := n.groups[group]
	if g == nil {
		return nil, fmt.Errorf("node %s: group %d: %w", n.id, group, raftstore.ErrUnknownGroup)
	}
	return g, nil
}

// live returns the running replicas of group by node index.
func (c *Cluster) live(group uint64) map[int]*raftstore.Group {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]*raftstore.Group)
	for i, n := range c.nodes {
		if g := n.groups[group]; g != nil {
			out[i] = g
		}
	}
	return out
}

// StopNode stops node i: its groups, its store (Pebble is closed cleanly)
// and its mux. Its directory and address are kept for RestartNode.
func (c *Cluster) StopNode(i int) {
	c.t.Helper()
	if !c.Running(i) {
		c.t.Fatalf("rafttest: StopNode(%d): node %s is already stopped", i, c.nodes[i].id)
	}
	if err := c.stop(i); err != nil {
		c.t.Fatalf("rafttest: StopNode(%d): %v", i, err)
	}
	c.logger.Info("stopped node", "node", c.nodes[i].id)
}

// RestartNode starts a stopped node again on the same directory and the
// same address (retrying the listen briefly while the port is still in
// use), with fresh state machines from Options.Machine.
func (c *Cluster) RestartNode(i int) {
	c.t.Helper()
	if c.Running(i) {
		c.t.Fatalf("rafttest: RestartNode(%d): node %s is running", i, c.nodes[i].id)
	}
	n := c.nodes[i]
	var mux *raftmux.Mux
	deadline := time.Now().Add(c.opts.WaitTimeout)
	for {
		m, err := raftmux.Listen(n.addr, raftmux.WithLogger(c.logger.Named(n.id).Named("mux")))
		if err == nil {
			mux = m
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			c.t.Fatalf("rafttest: RestartNode(%d): listen again on %s: %v", i, n.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.start(i, mux); err != nil {
		_ = mux.Close()
		c.t.Fatalf("rafttest: RestartNode(%d): %v", i, err)
	}
	c.logger.Info("restarted node", "node", n.id, "addr", n.addr)
}

// Cut takes down the links between nodes i and j in both directions.
func (c *Cluster) Cut(i, j int) { c.net.Cut(c.NodeID(i), c.NodeID(j)) }

// CutOneWay takes down the link from node i to node j only: i's messages
// to j are lost (and i cannot dial j), j's messages to i still arrive.
func (c *Cluster) CutOneWay(i, j int) { c.net.Drop(c.NodeID(i), c.NodeID(j)) }

// Blackhole makes the link from node i to node j swallow every byte (one
// way): RPCs over it time out instead of failing fast.
func (c *Cluster) Blackhole(i, j int) { c.net.Blackhole(c.NodeID(i), c.NodeID(j)) }

// Delay adds latency d to the links between nodes i and j, both ways (0
// removes it).
func (c *Cluster) Delay(i, j int, d time.Duration) {
	c.net.Delay(c.NodeID(i), c.NodeID(j), d)
	c.net.Delay(c.NodeID(j), c.NodeID(i), d)
}

// Isolate cuts node i off from every other node, both ways.
func (c *Cluster) Isolate(i int) { c.net.Isolate(c.NodeID(i)) }

// Partition cuts, both ways, every link between nodes on different sides.
func (c *Cluster) Partition(sides ...[]int) {
	names := make([][]string, len(sides))
	for k, side := range sides {
		for _, i := range side {
			names[k] = append(names[k], c.NodeID(i))
		}
	}
	c.net.Partition(names...)
}

// Heal makes every link healthy again.
func (c *Cluster) Heal() { c.net.Heal() }

// Leader returns the node index of group's leader, if there is one that a
// majority of the nodes (all nodes, running or not) recognise: among the
// running replicas that believe they lead, the one with the highest term,
// if at least a quorum of replicas name it as leader. A deposed leader cut
// off in a minority is therefore not returned.
func (c *Cluster) Leader(group uint64) (int, bool) {
	live := c.live(group)
	best, bestTerm := -1, uint64(0)
	for i, g := range live {
		if !g.IsLeader() {
			continue
		}
		if st := g.Stats(); best < 0 || st.Term > bestTerm {
			best, bestTerm = i, st.Term
		}
	}
	if best < 0 {
		return -1, false
	}
	votes := 0
	for _, g := range live {
		if id, _ := g.Leader(); id == c.nodes[best].id {
			votes++
		}
	}
	return best, votes*2 > len(c.nodes)
}

// WaitLeader waits for group to have a leader recognised by a quorum (see
// Leader) and returns its node index.
func (c *Cluster) WaitLeader(group uint64) int {
	c.t.Helper()
	leader := -1
	c.waitFor(group, fmt.Sprintf("a leader of group %d", group), func() (bool, string) {
		i, ok := c.Leader(group)
		if ok {
			leader = i
		}
		return ok, "no leader recognised by a quorum"
	})
	return leader
}

// WaitNewLeader waits for group to have a leader recognised by a quorum
// other than node old (a failover) and returns its node index.
func (c *Cluster) WaitNewLeader(group uint64, old int) int {
	c.t.Helper()
	leader := -1
	c.waitFor(group, fmt.Sprintf("a leader of group %d other than %s", group, c.nodes[old].id), func() (bool, string) {
		i, ok := c.Leader(group)
		switch {
		case !ok:
			return false, "no leader recognised by a quorum"
		case i == old:
			return false, fmt.Sprintf("%s still leads", c.nodes[old].id)
		}
		leader = i
		return true, ""
	})
	return leader
}

// WaitReplication waits until every running replica of group has applied
// everything the leader had committed when the call began.
func (c *Cluster) WaitReplication(group uint64) {
	c.t.Helper()
	l := c.WaitLeader(group)
	g, err := c.group(l, group)
	if err != nil {
		c.t.Fatalf("rafttest: WaitReplication(%d): %v", group, err)
	}
	c.WaitApplied(group, g.Raft().CommitIndex())
}

// WaitApplied waits until every running replica of group has applied the
// log up to index (raft's applied index: commands, configuration changes
// and no-ops alike).
func (c *Cluster) WaitApplied(group, index uint64) {
	c.t.Helper()
	c.waitFor(group, fmt.Sprintf("every replica of group %d to apply index %d", group, index), func() (bool, string) {
		live := c.live(group)
		if len(live) == 0 {
			return false, "no replica is running"
		}
		for i, g := range live {
			if a := g.Raft().AppliedIndex(); a < index {
				return false, fmt.Sprintf("%s has applied %d", c.nodes[i].id, a)
			}
		}
		return true, ""
	})
}

// EnsureSame waits until every running replica of group has the same
// applied index and byte-for-byte the same application keys and values
// (read with ReadLocal), and fails the test with the first difference if
// that does not happen within the wait timeout.
func (c *Cluster) EnsureSame(group uint64) {
	c.t.Helper()
	c.waitFor(group, fmt.Sprintf("the replicas of group %d to converge", group), func() (bool, string) {
		return c.same(group)
	})
}

type kvPair struct{ k, v []byte }

// dump reads a replica's application keys and its FSM applied index, from
// one stable point (the applied index did not move around the read).
func dump(g *raftstore.Group) ([]kvPair, uint64, error) {
	before := g.AppliedIndex()
	var kvs []kvPair
	err := g.Read(context.Background(), raftstore.ReadLocal, func(r raftstore.Reader) error {
		return r.Scan(nil, nil, func(k, v []byte) bool {
			kvs = append(kvs, kvPair{bytes.Clone(k), bytes.Clone(v)})
			return true
		})
	})
	if err != nil {
		return nil, 0, err
	}
	if after := g.AppliedIndex(); after != before {
		return nil, 0, fmt.Errorf("still applying (index %d -> %d)", before, after)
	}
	return kvs, before, nil
}

func (c *Cluster) same(group uint64) (bool, string) {
	live := c.live(group)
	if len(live) == 0 {
		return false, "no replica is running"
	}
	first := -1
	var ref []kvPair
	var refIdx uint64
	for i := range c.nodes { // in node order, for stable messages
		g, ok := live[i]
		if !ok {
			continue
		}
		kvs, idx, err := dump(g)
		if err != nil {
			return false, fmt.Sprintf("%s: %v", c.nodes[i].id, err)
		}
		if first < 0 {
			first, ref, refIdx = i, kvs, idx
			continue
		}
		a, b := c.nodes[first].id, c.nodes[i].id
		if idx != refIdx {
			return false, fmt.Sprintf("%s applied index %d, %s %d", a, refIdx, b, idx)
		}
		if d := diff(ref, kvs); d != "" {
			return false, fmt.Sprintf("%s (%d keys) and %s (%d keys) differ at applied index %d: %s", a, len(ref), b, len(kvs), idx, d)
		}
	}
	return true, ""
}

// diff describes the first difference between two sorted key/value lists,
// or returns "" if they are equal.
func diff(a, b []kvPair) string {
	for k := 0; k < len(a) || k < len(b); k++ {
		switch {
		case k >= len(a):
			return fmt.Sprintf("only the second has key %q", b[k].k)
		case k >= len(b):
			return fmt.Sprintf("only the first has key %q", a[k].k)
		}
		switch cmp := bytes.Compare(a[k].k, b[k].k); {
		case cmp < 0:
			return fmt.Sprintf("only the first has key %q", a[k].k)
		case cmp > 0:
			return fmt.Sprintf("only the second has key %q", b[k].k)
		}
		if !bytes.Equal(a[k].v, b[k].v) {
			return fmt.Sprintf("key %q: %q vs %q", a[k].k, a[k].v, b[k].v)
		}
	}
	return ""
}

// Get reads key on node i's replica of group as it is (ReadLocal).
func (c *Cluster) Get(i int, group uint64, key []byte) ([]byte, error) {
	g, err := c.group(i, group)
	if err != nil {
		return nil, err
	}
	var v []byte
	err = g.Read(context.Background(), raftstore.ReadLocal, func(r raftstore.Reader) error {
		var err error
		v, err = r.Get(key)
		return err
	})
	return v, err
}

// proposeAttempt bounds one attempt of Propose, so a proposal stuck at a
// deposed leader is retried at the new one.
const proposeAttempt = 5 * time.Second

// Propose proposes cmd to group's leader and returns the result. With an
// idempotency key it retries, with the same key, at whatever node leads
// next, on the errors that leave the outcome unknown or say "not here"
// (not the leader, leadership lost, node stopped, attempt timed out), until
// ctx ends: the key makes the retries safe. Without a key it makes one
// attempt at the current leader, since a retry could apply the command
// twice. It is safe to call from any goroutine.
func (c *Cluster) Propose(ctx context.Context, group uint64, cmd, idemKey []byte) ([]byte, error) {
	var last error
	for {
		if err := ctx.Err(); err != nil {
			if last != nil {
				return nil, fmt.Errorf("rafttest: propose to group %d: %w (last attempt: %w)", group, err, last)
			}
			return nil, fmt.Errorf("rafttest: propose to group %d: %w", group, err)
		}
		i, ok := c.Leader(group)
		if !ok {
			if len(idemKey) == 0 && last != nil {
				return nil, last
			}
			sleepCtx(ctx, 10*time.Millisecond)
			continue
		}
		g, err := c.group(i, group)
		if err != nil { // stopped since Leader looked
			last = err
			sleepCtx(ctx, 10*time.Millisecond)
			continue
		}
		actx, cancel := context.WithTimeout(ctx, proposeAttempt)
		res, err := g.Propose(actx, cmd, idemKey)
		cancel()
		if err == nil {
			return res, nil
		}
		last = err
		if len(idemKey) == 0 {
			return nil, err
		}
		if !errors.Is(err, raftstore.ErrNotLeader) && !errors.Is(err, raftstore.ErrClosed) &&
			!errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
	}
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// waitFor polls cond until it holds, failing the test after the wait
// timeout with cond's last explanation and the state of group's replicas.
func (c *Cluster) waitFor(group uint64, what string, cond func() (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(c.opts.WaitTimeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("rafttest: timed out after %v waiting for %s: %s\n%s", c.opts.WaitTimeout, what, why, c.Describe(group))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Describe returns one line per node with the state of its replica of
// group, for failure messages.
func (c *Cluster) Describe(group uint64) string {
	live := c.live(group)
	var b strings.Builder
	for i, n := range c.nodes {
		g, ok := live[i]
		if !ok {
			fmt.Fprintf(&b, "  %s %s: stopped\n", n.id, n.addr)
			continue
		}
		st := g.Stats()
		fmt.Fprintf(&b, "  %s %s: %s term=%d applied=%d raft-applied=%d commit=%d last=%d leader=%s\n",
			n.id, n.addr, st.State, st.Term, st.AppliedIndex, g.Raft().AppliedIndex(), st.CommitIndex, st.LastIndex, st.LeaderID)
	}
	return b.String()
}
