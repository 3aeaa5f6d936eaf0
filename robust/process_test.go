package robust

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/faultproxy"
	"github.com/linkraft/linkraft/shardrpc"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" { // built by linkraftBin: remove it
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// linkraftBin returns the linkraft binary: $LINKRAFT_BIN, or one built
// once per test run into a temporary directory.
func linkraftBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LINKRAFT_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "linkraft-robust-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "linkraft")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/linkraft/linkraft/cmd/linkraft").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freeAddrs returns n distinct 127.0.0.1 addresses whose ports are free,
// and holds them until release is called. Closed one by one, the kernel
// may hand the same port out twice, or to a listener opened meanwhile
// (a proxy's): two parts of the cluster would then fight for it. Open the
// test's own listeners first, then release, then start the processes.
func freeAddrs(t *testing.T, n int) (addrs []string, release func()) {
	t.Helper()
	var held []net.Listener
	release = func() {
		for _, ln := range held {
			_ = ln.Close()
		}
		held = nil
	}
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			release()
			t.Fatal(err)
		}
		held = append(held, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, release
}

// process is one linkraft process of a test.
type process struct {
	name string
	args []string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error // cmd.Wait's result, set before done is closed
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if len(s) > n {
		s = "...\n" + s[len(s)-n:]
	}
	return s
}

// procCluster is a cluster of real linkraft processes: 3 nodes and a
// router. Every connection between processes goes through a faultproxy:
// the router reaches node j through rpcProxies[j], and node i dials the
// Raft port of node j through raftProxies[{i, j}]. Each process reads its
// own copy of the cluster file, with the proxies' addresses for its peers.
type procCluster struct {
	t           *testing.T
	bin         string
	ids         []string
	nodes       map[string]*process
	router      *process
	rpcProxies  map[string]*faultproxy.Proxy
	raftProxies map[[2]string]*faultproxy.Proxy
	status      *shardrpc.Client // reaches the nodes directly
	cfg         *config.Config   // the test's view: real addresses
	dir         string           // the cluster files; data/<id> holds node id's data
	url         string
	out         *syncBuffer // every process's output

	pausedMu sync.Mutex
	paused   map[string]bool // nodes stopped with SIGSTOP
}

func startProcCluster(t *testing.T) *procCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("robustness scenarios run for seconds; skipped with -short")
	}
	c := &procCluster{
		t: t, bin: linkraftBin(t), nodes: make(map[string]*process),
		rpcProxies: make(map[string]*faultproxy.Proxy), raftProxies: make(map[[2]string]*faultproxy.Proxy),
		out: &syncBuffer{}, paused: make(map[string]bool),
	}
	dir := t.TempDir()
	c.dir = dir
	addrs, release := freeAddrs(t, 7)
	defer release() // after the proxies listen, before the processes start
	routerListen := addrs[6]
	raftAddr, rpcAddr := make(map[string]string), make(map[string]string)
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("n%d", i)
		c.ids = append(c.ids, id)
		raftAddr[id], rpcAddr[id] = addrs[2*i-2], addrs[2*i-1]
	}
	newProxy := func(target string) *faultproxy.Proxy {
		p, err := faultproxy.New("127.0.0.1:0", target)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := p.Close(); err != nil {
				t.Errorf("close proxy to %s: %v", target, err)
			}
		})
		return p
	}
	for _, j := range c.ids {
		c.rpcProxies[j] = newProxy(rpcAddr[j])
		for _, i := range c.ids {
			if i != j {
				c.raftProxies[[2]string{i, j}] = newProxy(raftAddr[j])
			}
		}
	}
	// write writes the cluster file as seen by process self.
	write := func(self string) string {
		var b strings.Builder
		b.WriteString("cluster:\n  partitions: 256\n  code_length: 7\n  redirect_status: 301\n")
		b.WriteString("nodes:\n")
		for _, j := range c.ids {
			raft, rpc := raftAddr[j], rpcAddr[j]
			if p, ok := c.raftProxies[[2]string{self, j}]; ok {
				raft = p.Addr()
			}
			if self == "r1" {
				rpc = c.rpcProxies[j].Addr()
			}
			fmt.Fprintf(&b, "  - id: %s\n    raft_addr: %s\n    rpc_addr: %s\n    data_dir: data/%s\n", j, raft, rpc, j)
		}
		b.WriteString("shards:\n")
		for s := 1; s <= 3; s++ {
			fmt.Fprintf(&b, "  - id: %d\n    replicas: [n1, n2, n3]\n", s)
		}
		fmt.Fprintf(&b, "routers:\n  - id: r1\n    listen: %s\n    base_url: http://%s\n", routerListen, routerListen)
		path := filepath.Join(dir, self+".yaml")
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	release()                 // every proxy listens: the processes may take their ports now
	direct := write("direct") // real addresses everywhere: the test's view
	cfg, err := config.Load(direct)
	if err != nil {
		t.Fatal(err)
	}
	c.cfg = cfg
	c.status = shardrpc.NewClient(cfg, shardrpc.ClientOptions{Timeout: time.Second, AttemptTimeout: 300 * time.Millisecond})
	t.Cleanup(c.status.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- process output ----\n%s", c.out.tail(20000))
		}
	})

	for _, id := range c.ids {
		c.nodes[id] = c.start(id, "node", "--config", write(id), "--id", id)
	}
	c.router = c.start("r1", "router", "--config", write("r1"), "--id", "r1")
	c.url = "http://" + routerListen
	c.waitReady()
	c.waitNodesUp()
	return c
}

// isolate cuts node id off from the other nodes' Raft traffic, both ways,
// and with fromRouter also from the router.
func (c *procCluster) isolate(id string, fromRouter bool) {
	for k, p := range c.raftProxies {
		if k[0] == id || k[1] == id {
			p.Blackhole()
		}
	}
	if fromRouter {
		c.rpcProxies[id].Blackhole()
	}
}

// start runs `linkraft args...`; the process is killed at cleanup.
func (c *procCluster) start(name string, args ...string) *process {
	c.t.Helper()
	p := &process{name: name, args: args, out: c.out, done: make(chan struct{})}
	p.cmd = exec.Command(c.bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = c.out, c.out
	if err := p.cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	c.t.Cleanup(func() { c.kill(p) })
	return p
}

// kill sends SIGKILL to p and waits until it is reaped.
func (c *procCluster) kill(p *process) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		c.t.Errorf("%s did not exit after SIGKILL", p.name)
	}
}

// restart starts a killed node again on its data.
func (c *procCluster) restart(id string) {
	c.t.Helper()
	old := c.nodes[id]
	c.kill(old)
	c.nodes[id] = c.start(id, old.args...)
}

// leader returns the node leading shard, "" if unknown now.
func (c *procCluster) leader(shard uint64) string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	st, err := c.status.Status(ctx, shard)
	if err != nil {
		return ""
	}
	return st.LeaderID
}

// leaders returns the leader of every shard as its replicas report it now.
func (c *procCluster) leaders() map[uint64]string {
	out := make(map[uint64]string)
	for s := uint64(1); s <= 3; s++ {
		out[s] = c.leader(s)
	}
	return out
}

func (c *procCluster) routerURL() string { return c.url }

// heal undoes every proxy fault, resumes every paused node and restarts
// every node that is down.
func (c *procCluster) heal() {
	c.pausedMu.Lock()
	for id := range c.paused {
		c.resume(id)
	}
	c.pausedMu.Unlock()
	for _, p := range c.rpcProxies {
		p.Heal()
	}
	for _, p := range c.raftProxies {
		p.Heal()
	}
	for id, p := range c.nodes {
		select {
		case <-p.done:
			c.restart(id)
		default:
		}
	}
}

// waitReady polls the router's /readyz until every shard has a leader.
func (c *procCluster) waitReady() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	for {
		resp, err := client.Get(c.url + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the cluster was not ready within 30s (last: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLeaderKillLoop kills (SIGKILL) the process leading a random shard,
// restarts it on its data after a moment, and again, while the workload
// runs against real processes.
func TestLeaderKillLoop(t *testing.T) {
	seed := seedFor(t)
	c := startProcCluster(t)
	scenario(t, seed, c, run{duration: scenarioTime}, func(ctx context.Context, rng *rand.Rand) {
		for ctx.Err() == nil {
			shard := uint64(1 + rng.IntN(3))
			leader := c.leader(shard)
			if leader == "" {
				if !pause(ctx, 100*time.Millisecond) {
					return
				}
				continue
			}
			t.Logf("kill -9 %s, leader of shard %d", leader, shard)
			c.kill(c.nodes[leader])
			pause(ctx, time.Duration(200+rng.IntN(800))*time.Millisecond)
			c.restart(leader) // also after ctx ends: never leave a node down
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
				if l := c.leader(uint64(1 + rng.IntN(3))); l != "" {
					id = l
				}
			}
			fromRouter := rng.IntN(2) == 0
			t.Logf("partition %s from the other nodes (and from the router: %v)", id, fromRouter)
			c.isolate(id, fromRouter)
			pause(ctx, time.Duration(1000+rng.IntN(1500))*time.Millisecond)
			t.Logf("leaders during the partition: %v", c.leaders())
			c.heal()
			if !pause(ctx, time.Duration(500+rng.IntN(1000))*time.Millisecond) {
				return
			}
		}
	})
}

// stop stops node id gracefully (SIGTERM), waits until it has exited and
// returns its exit error (nil for a clean stop).
func (c *procCluster) stop(id string) error {
	c.t.Helper()
	p := c.nodes[id]
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM %s: %w", id, err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s did not exit within 30s of SIGTERM", id)
	}
}

// pause stops node id's process with SIGSTOP: it neither runs nor dies,
// and its sockets stay open. heal resumes it.
func (c *procCluster) pause(id string) {
	c.t.Helper()
	c.pausedMu.Lock()
	defer c.pausedMu.Unlock()
	if err := c.nodes[id].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		c.t.Fatalf("SIGSTOP %s: %v", id, err)
	}
	c.paused[id] = true
}

// resumeNode continues a paused node (SIGCONT).
func (c *procCluster) resumeNode(id string) {
	c.pausedMu.Lock()
	defer c.pausedMu.Unlock()
	c.resume(id)
}

// resume sends SIGCONT to id; c.pausedMu is held.
func (c *procCluster) resume(id string) {
	if !c.paused[id] {
		return
	}
	delete(c.paused, id)
	if err := c.nodes[id].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		c.t.Errorf("SIGCONT %s: %v", id, err)
	}
}

// waitCaughtUp waits until node id's replica of every shard has applied
// at least what the shard's leader had applied when the wait began, and
// returns how long that took.
func (c *procCluster) waitCaughtUp(id string, timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for s := uint64(1); s <= 3; s++ {
		var target uint64
		var last error
		for {
			if target == 0 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				st, err := c.status.Status(ctx, s)
				cancel()
				if err == nil {
					target = st.AppliedIndex
				}
				last = err
			}
			if target > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				st, err := c.status.NodeStatus(ctx, id, s)
				cancel()
				if err == nil && st.AppliedIndex >= target {
					break
				}
				if err == nil {
					last = fmt.Errorf("applied %d of %d", st.AppliedIndex, target)
				} else {
					last = err
				}
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s did not catch up on shard %d within %s: %v", id, s, timeout, last)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// waitNodesUp waits until every node answers a status request for every
// shard itself: the router is ready with two nodes of three, and a
// scenario must not start with one missing.
func (c *procCluster) waitNodesUp() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, id := range c.ids {
		for s := uint64(1); s <= 3; s++ {
			for {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := c.status.NodeStatus(ctx, id, s)
				cancel()
				if err == nil {
					break
				}
				select {
				case <-c.nodes[id].done:
					c.t.Fatalf("node %s exited at start: %v", id, c.nodes[id].err)
				default:
				}
				if time.Now().After(deadline) {
					c.t.Fatalf("node %s did not answer for shard %d within 30s: %v", id, s, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
}
