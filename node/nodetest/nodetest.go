// Package nodetest runs a live linkraft storage cluster inside a test
// process: real nodes (package node) with real Raft groups over TCP, real
// Pebble directories in t.TempDir() and the real internal RPC on
// 127.0.0.1, all on free ports. Routers and end-to-end tests use it to get
// a 3-node cluster without starting processes.
//
//	c := nodetest.Start(t, nodetest.Options{})     // 3 nodes, 3 shards
//	leader := c.WaitLeader(1)                      // node ID
//	addr := c.RPCAddr(leader)                      // call the internal RPC
//	c.StopNode(leader); c.StartNode(leader)        // restart on the same dir and ports
//
// Everything stops in t.Cleanup. Methods that wait fail the test
// (t.Fatalf) and must be called from the test's goroutine; the accessors
// are safe from any goroutine.
package nodetest

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/node"
)

// Options shape a test cluster. The zero value is 3 nodes, 3 shards
// replicated on every node, 1 router entry, 64 partitions, 7-character
// codes, no RPC secret.
type Options struct {
	// Nodes is the number of storage nodes, n1..nN (default 3).
	Nodes int
	// Shards is the number of shards, 1..S (default 3). Each is
	// replicated on min(3, Nodes) nodes, placed round-robin.
	Shards int
	// Routers is the number of router entries r1..rN written to the config
	// (default 1), each with a free listen address, for router tests.
	// nodetest does not start routers.
	Routers int
	// Partitions and CodeLength are the cluster's code format (defaults
	// 64 and 7).
	Partitions int
	CodeLength int
	// CodeSecret and RPCSecret are the cluster's secrets (default empty:
	// the development code key, no RPC secret).
	CodeSecret string
	RPCSecret  string
	// Raft adjusts every group's raft configuration; default RaftConfig.
	Raft func(*raft.Config)
	// LogLevel is the level of the nodes' logs sent to t.Log (default
	// Warn; slog.LevelDebug shows Raft's own messages).
	LogLevel slog.Level
	// WaitTimeout bounds each wait (default 30s).
	WaitTimeout time.Duration
	// NoStart builds the cluster without starting any node; start them
	// with StartNode.
	NoStart bool
	// NodeOptions, if set, adjusts the options of node id each time it
	// starts (after Logger and Raft are set), e.g. a faulty file system
	// (FS) and a Fatal hook for one node.
	NodeOptions func(id string, o *node.Options)
}

func (o *Options) fill() {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Shards == 0 {
		o.Shards = 3
	}
	if o.Routers == 0 {
		o.Routers = 1
	}
	if o.Partitions == 0 {
		o.Partitions = 64
	}
	if o.CodeLength == 0 {
		o.CodeLength = 7
	}
	if o.Raft == nil {
		o.Raft = RaftConfig
	}
	if o.LogLevel == 0 {
		o.LogLevel = slog.LevelWarn
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 30 * time.Second
	}
}

// RaftConfig sets the raft timeouts of test clusters: elections within
// about a second (heartbeat and election timeouts of 500ms, a leader lease
// of 250ms), yet no spurious election when the race detector and parallel
// packages load a 2-core machine. A graceful StopNode hands leadership off
// at once anyway.
func RaftConfig(c *raft.Config) {
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
}

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("nodetest: listen: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// NewConfig returns a valid cluster config for opts: every address a free
// port on 127.0.0.1, every data dir under t.TempDir().
func NewConfig(t testing.TB, opts Options) *config.Config {
	t.Helper()
	opts.fill()
	dir := t.TempDir()
	// Hold every port until all are chosen, so that no two addresses of
	// the config get the same one.
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("nodetest: listen: %v", err)
		}
		held = append(held, ln)
		return ln.Addr().String()
	}
	cfg := &config.Config{Cluster: config.Cluster{
		Partitions: opts.Partitions,
		CodeLength: opts.CodeLength,
		CodeSecret: opts.CodeSecret,
		RPCSecret:  opts.RPCSecret,
	}}
	for i := 1; i <= opts.Nodes; i++ {
		id := fmt.Sprintf("n%d", i)
		cfg.Nodes = append(cfg.Nodes, config.Node{
			ID:       id,
			RaftAddr: free(),
			RPCAddr:  free(),
			DataDir:  filepath.Join(dir, id),
		})
	}
	replicas := min(3, opts.Nodes)
	for s := 0; s < opts.Shards; s++ {
		sh := config.Shard{ID: uint64(s + 1)}
		for r := 0; r < replicas; r++ {
			sh.Replicas = append(sh.Replicas, cfg.Nodes[(s+r)%opts.Nodes].ID)
		}
		cfg.Shards = append(cfg.Shards, sh)
	}
	for i := 1; i <= opts.Routers; i++ {
		addr := free()
		cfg.Routers = append(cfg.Routers, config.Router{ID: fmt.Sprintf("r%d", i), Listen: addr, BaseURL: "http://" + addr})
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("nodetest: config: %v", err)
	}
	return cfg
}

// Cluster is a set of storage nodes of one config, each running or
// stopped.
type Cluster struct {
	t    testing.TB
	opts Options
	cfg  *config.Config
	logs *logWriter

	mu     sync.Mutex
	nodes  map[string]*node.Node // running nodes
	closed bool
}

// Start builds a cluster for opts, starts every node (unless
// opts.NoStart) and registers its shutdown with t.Cleanup. It does not
// wait for leaders (see WaitLeader).
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	return StartConfig(t, NewConfig(t, opts), opts)
}

// StartConfig is Start for a config of the caller's (e.g. NewConfig's,
// adjusted). opts' topology fields are ignored.
func StartConfig(t testing.TB, cfg *config.Config, opts Options) *Cluster {
	t.Helper()
	opts.fill()
	c := &Cluster{t: t, opts: opts, cfg: cfg, nodes: make(map[string]*node.Node), logs: &logWriter{t: t}}
	// Registered first, so it runs last: nodes may log while stopping.
	t.Cleanup(c.logs.stop)
	t.Cleanup(c.Close)
	if !opts.NoStart {
		for _, n := range cfg.Nodes {
			c.StartNode(n.ID)
		}
	}
	return c
}

// Config returns the cluster's config. Do not modify it.
func (c *Cluster) Config() *config.Config { return c.cfg }

// NodeIDs returns the IDs of every node, running or not, in config order.
func (c *Cluster) NodeIDs() []string {
	ids := make([]string, len(c.cfg.Nodes))
	for i, n := range c.cfg.Nodes {
		ids[i] = n.ID
	}
	return ids
}

// Node returns the running node id, or nil if it is stopped.
func (c *Cluster) Node(id string) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// Running returns the IDs of the running nodes, sorted.
func (c *Cluster) Running() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.nodes))
	for id := range c.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// RPCAddr returns the internal RPC address of node id (from the config:
// it is the same whether the node runs or not).
func (c *Cluster) RPCAddr(id string) string {
	n, ok := c.cfg.Node(id)
	if !ok {
		c.t.Fatalf("nodetest: no node %q", id)
	}
	return n.RPCAddr
}

// StartNode starts node id on its data dir and addresses. A node that ran
// before resumes from its data. The node's listen ports may take a moment
// to be free again after StopNode; StartNode retries for WaitTimeout.
func (c *Cluster) StartNode(id string) *node.Node {
	c.t.Helper()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.t.Fatalf("nodetest: StartNode(%s) on a closed cluster", id)
	}
	if c.nodes[id] != nil {
		c.mu.Unlock()
		c.t.Fatalf("nodetest: node %s is already running", id)
	}
	c.mu.Unlock()
	logger := slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: c.opts.LogLevel})).With("node", id)
	deadline := time.Now().Add(c.opts.WaitTimeout)
	for {
		nopts := node.Options{Logger: logger, Raft: c.opts.Raft}
		if c.opts.NodeOptions != nil {
			c.opts.NodeOptions(id, &nopts)
		}
		n, err := node.New(c.cfg, id, nopts)
		if err == nil {
			c.mu.Lock()
			c.nodes[id] = n
			c.mu.Unlock()
			return n
		}
		if time.Now().After(deadline) || !errors.Is(err, syscall.EADDRINUSE) {
			c.t.Fatalf("nodetest: start node %s: %v", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StopNode stops node id gracefully (node.Close).
func (c *Cluster) StopNode(id string) {
	c.t.Helper()
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if n == nil {
		c.t.Fatalf("nodetest: node %s is not running", id)
	}
	if err := n.Close(); err != nil {
		c.t.Errorf("nodetest: stop node %s: %v", id, err)
	}
}

// CloseNode stops node id like StopNode but returns node.Close's error
// instead of failing the test: for a node whose storage failed, whose
// Close reports that failure. It may be called from any goroutine.
func (c *Cluster) CloseNode(id string) error {
	c.mu.Lock()
	n := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if n == nil {
		return fmt.Errorf("nodetest: node %s is not running", id)
	}
	return n.Close()
}

// RestartNode stops node id and starts it again on the same data.
func (c *Cluster) RestartNode(id string) *node.Node {
	c.t.Helper()
	c.StopNode(id)
	return c.StartNode(id)
}

// Close stops every running node, in parallel. It is idempotent and runs
// in t.Cleanup.
func (c *Cluster) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	nodes := c.nodes
	c.nodes = map[string]*node.Node{}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for id, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.Close(); err != nil {
				c.t.Errorf("nodetest: stop node %s: %v", id, err)
			}
		}()
	}
	wg.Wait()
}

// Leader returns the ID of the running node that leads shard, or "" if
// none does (or, during a hand-over, more than one believes it does).
func (c *Cluster) Leader(shard uint64) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	leader := ""
	for id, n := range c.nodes {
		if g := n.Group(shard); g != nil && g.IsLeader() {
			if leader != "" {
				return ""
			}
			leader = id
		}
	}
	return leader
}

// WaitLeader waits until exactly one running node leads shard and every
// running replica serves and knows it, and returns its ID. A replica that
// is joining its group (a node started without its data, or long after
// the others) serves once it caught up.
func (c *Cluster) WaitLeader(shard uint64) string {
	c.t.Helper()
	var leader string
	c.Eventually(fmt.Sprintf("a leader of shard %d", shard), func() error {
		leader = c.Leader(shard)
		if leader == "" {
			return fmt.Errorf("no single leader")
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for id, n := range c.nodes {
			if !slices.Contains(n.Shards(), shard) {
				continue
			}
			if !n.Serving(shard) {
				return fmt.Errorf("node %s does not serve its replica yet (joining the group)", id)
			}
			if lid, _ := n.Group(shard).Leader(); lid != leader {
				return fmt.Errorf("node %s thinks the leader is %q, not %s", id, lid, leader)
			}
		}
		return nil
	})
	return leader
}

// WaitLeaders waits for a leader of every shard and returns them by shard.
func (c *Cluster) WaitLeaders() map[uint64]string {
	c.t.Helper()
	out := make(map[uint64]string, len(c.cfg.Shards))
	for _, s := range c.cfg.Shards {
		out[s.ID] = c.WaitLeader(s.ID)
	}
	return out
}

// WaitApplied waits until every running replica of shard has applied at
// least index.
func (c *Cluster) WaitApplied(shard, index uint64) {
	c.t.Helper()
	c.Eventually(fmt.Sprintf("shard %d applied to index %d everywhere", shard, index), func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		for id, n := range c.nodes {
			if g := n.Group(shard); g != nil && g.AppliedIndex() < index {
				return fmt.Errorf("node %s applied %d", id, g.AppliedIndex())
			}
		}
		return nil
	})
}

// Eventually polls cond every 20ms until it returns nil, and fails the test
// with cond's last error after WaitTimeout.
func (c *Cluster) Eventually(what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(c.opts.WaitTimeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("nodetest: timed out after %s waiting for %s: %v", c.opts.WaitTimeout, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logWriter sends log lines to t.Log until stopped, so that a line logged
// after the test ended cannot panic the test binary.
type logWriter struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

var _ io.Writer = (*logWriter)(nil)

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *logWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
