package proctest

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkraft/linkraft/config"
)

func TestMain(m *testing.M) {
	os.Exit(Main(m))
}

// TestNewWritesEachProcessView checks the cluster files of a cluster with
// proxies: every process gets its own view, in which the routers reach
// the nodes' RPC only through the RPC proxies and node i dials node j's
// Raft port through proxy (i, j), while its own addresses are real.
func TestNewWritesEachProcessView(t *testing.T) {
	c := New(t, Options{Nodes: 3, Shards: 2, Routers: 2, Proxies: true, ClickFlushInterval: 300 * time.Millisecond})
	direct := c.Config()
	if got := len(direct.Nodes); got != 3 {
		t.Fatalf("%d nodes, want 3", got)
	}
	if got := c.Shards(); len(got) != 2 {
		t.Fatalf("shards %v, want 2", got)
	}
	if direct.Cluster.RPCSecret == "" || direct.Cluster.CodeSecret == "" {
		t.Fatal("the test's view has no secrets")
	}
	if got := direct.Cluster.ClickFlushInterval; got != 300*time.Millisecond {
		t.Errorf("click_flush_interval %s, want 300ms", got)
	}
	load := func(id string) *config.Config {
		t.Helper()
		cfg, err := config.Load(c.files[id])
		if err != nil {
			t.Fatalf("%s's cluster file: %v", id, err)
		}
		return cfg
	}
	for _, r := range c.RouterIDs() {
		view := load(r)
		for _, n := range view.Nodes {
			if want := c.RPCProxy(n.ID).Addr(); n.RPCAddr != want {
				t.Errorf("router %s reaches %s at %s, want its proxy %s", r, n.ID, n.RPCAddr, want)
			}
		}
	}
	for _, self := range c.NodeIDs() {
		view := load(self)
		for _, n := range view.Nodes {
			actual, _ := direct.Node(n.ID)
			want := actual.RaftAddr
			if n.ID != self {
				want = c.RaftProxy(self, n.ID).Addr()
				if got := c.RaftProxy(self, n.ID).Target(); got != actual.RaftAddr {
					t.Errorf("proxy (%s, %s) forwards to %s, want %s", self, n.ID, got, actual.RaftAddr)
				}
			}
			if n.RaftAddr != want {
				t.Errorf("node %s dials %s's Raft at %s, want %s", self, n.ID, n.RaftAddr, want)
			}
			if n.RPCAddr != actual.RPCAddr || n.DataDir != actual.DataDir {
				t.Errorf("node %s sees %s's RPC %s data %s, want the real %s %s", self, n.ID, n.RPCAddr, n.DataDir, actual.RPCAddr, actual.DataDir)
			}
		}
	}
	// Every address in the cluster is distinct: no process fights another
	// for a port (docs/ROBUSTNESS.md, Findings).
	seen := make(map[string]string)
	add := func(addr, what string) {
		if prev, dup := seen[addr]; dup {
			t.Errorf("%s and %s share %s", prev, what, addr)
		}
		seen[addr] = what
	}
	for _, n := range direct.Nodes {
		add(n.RaftAddr, n.ID+" raft")
		add(n.RPCAddr, n.ID+" rpc")
		add(c.RPCProxy(n.ID).Addr(), n.ID+" rpc proxy")
	}
	for _, r := range direct.Routers {
		add(r.Listen, r.ID)
		if !strings.HasPrefix(c.URL(r.ID), "http://127.0.0.1:") {
			t.Errorf("URL(%s) = %s", r.ID, c.URL(r.ID))
		}
	}
	if c.Process("n1") != nil {
		t.Error("New started a process")
	}
}

// TestStartKillRestart runs a small cluster of real processes: it starts,
// a killed node is restarted on its data and catches up, a graceful stop
// exits cleanly, and a paused node resumes.
func TestStartKillRestart(t *testing.T) {
	c := Start(t, Options{Shards: 1})
	leader := c.WaitLeader(1)
	first := c.Process(leader)
	c.Kill(leader)
	if !first.Exited() || first.ExitCode() != -1 {
		t.Fatalf("after Kill: exited %v, exit code %d (want -1, a signal)", first.Exited(), first.ExitCode())
	}
	next := c.WaitNewLeader(1, leader, 30*time.Second)
	t.Logf("%s killed, %s leads", leader, next)
	if c.Restart(leader) == first {
		t.Fatal("Restart returned the old process")
	}
	c.WaitCaughtUp(leader, time.Minute)
	c.Pause(next)
	c.Resume(next)
	c.WaitCaughtUp(next, time.Minute)
	if err := c.Stop(leader); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if out := c.Output(leader); strings.Count(out, "---- proctest: start ") != 2 {
		t.Errorf("the output of %s does not hold both runs:\n%s", leader, tail(out, 2000))
	}
	c.Heal() // restarts the stopped node
	if p := c.Process(leader); p.Exited() {
		t.Fatal("Heal did not restart the stopped node")
	}
	c.WaitCaughtUp(leader, time.Minute)
}

// TestIsVoterLostDisk restarts a follower without its data while the
// leader cannot send it Raft traffic: it rejoins as a non-voter that
// cannot catch up, so IsVoter must say no; once healed it catches up, is
// promoted, and WaitVoter returns. Every node is a voter at the start.
func TestIsVoterLostDisk(t *testing.T) {
	c := Start(t, Options{Shards: 1, Proxies: true})
	leader := c.WaitLeader(1)
	for _, id := range c.NodeIDs() {
		if voter, err := c.IsVoter(id, 1); err != nil || !voter {
			t.Fatalf("IsVoter(%s) at the start = %v, %v; want a voter", id, voter, err)
		}
	}
	var follower string
	for _, id := range c.NodeIDs() {
		if id != leader {
			follower = id
			break
		}
	}
	c.Kill(follower)
	if err := os.RemoveAll(c.DataDir(follower)); err != nil {
		t.Fatal(err)
	}
	// The leader replicates through its own proxy to the follower's Raft
	// port; blackholed, the rejoining replica gets no entries.
	c.RaftProxy(leader, follower).Blackhole()
	c.Restart(follower)
	Eventually(t, time.Minute, follower+" to be a non-voter", func() error {
		voter, err := c.IsVoter(follower, 1)
		switch {
		case err != nil:
			return err
		case voter:
			return fmt.Errorf("%s is a voter", follower)
		}
		return nil
	})
	for range 10 { // it stays one while it cannot catch up
		if voter, err := c.IsVoter(follower, 1); err == nil && voter {
			t.Fatalf("%s, which cannot catch up, was promoted", follower)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.Heal()
	took := c.WaitVoter(follower, time.Minute)
	t.Logf("%s was a non-voter while cut off; a voter %s after the heal", follower, took.Round(time.Millisecond))
}

// TestFreeAddrsBelowEphemeralRange: the addresses are distinct, held until
// release (a second listen fails), free after it, and, where the kernel
// says where its ephemeral ports start, below them.
func TestFreeAddrsBelowEphemeralRange(t *testing.T) {
	addrs, release := freeAddrs(t, 20)
	lo, hi := listenPorts()
	seen := make(map[string]bool)
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("%s handed out twice: %v", a, addrs)
		}
		seen[a] = true
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(p)
		if hi > lo && (port < lo || port >= hi) {
			t.Errorf("port %d outside [%d, %d): the kernel may hand it to an outgoing connection", port, lo, hi)
		}
		if ln, err := net.Listen("tcp", a); err == nil {
			_ = ln.Close()
			t.Errorf("%s is not held before release", a)
		}
	}
	release()
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("%s not free after release: %v", a, err)
			continue
		}
		_ = ln.Close()
	}
	t.Logf("ports from [%d, %d): %v", lo, hi, addrs[:3])
}
