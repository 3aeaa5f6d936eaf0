package proctest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/diskfault"
	"github.com/linkraft/linkraft/faultproxy"
	"github.com/linkraft/linkraft/internal/testutil"
	"github.com/linkraft/linkraft/shardrpc"
)

// The secrets every test cluster runs with, passed to its processes in
// these environment variables (the cluster file names them).
const (
	CodeSecretEnv = "LINKRAFT_TEST_CODE_SECRET"
	RPCSecretEnv  = "LINKRAFT_TEST_RPC_SECRET"
	codeSecret    = "proctest-code-secret"
	rpcSecret     = "proctest-rpc-secret"
)

// Options shape a test cluster. The zero value is 3 nodes, 3 shards
// replicated on every node, 1 router, no proxies.
type Options struct {
	// Nodes, Shards and Routers are the cluster's size (default 3, 3, 1).
	// Nodes are n1, n2, ..., routers r1, r2, ...; every shard has a
	// replica on every node.
	Nodes, Shards, Routers int
	// Proxies puts a faultproxy on every connection between processes
	// (see the package doc).
	Proxies bool
	// DiskFaults runs the nodes from the faultinject build, each with a
	// disk fault control file (SetDisk).
	DiskFaults bool
	// ClickFlushInterval is the cluster's click_flush_interval (0: the
	// config default).
	ClickFlushInterval time.Duration
	// APIKeys are the cluster file's api_keys (none: the API is open).
	APIKeys []config.APIKey
}

func (o *Options) fill() {
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if o.Shards <= 0 {
		o.Shards = 3
	}
	if o.Routers <= 0 {
		o.Routers = 1
	}
}

// Cluster is a linkraft cluster of real processes. Its methods are for the
// test's goroutine; Kill, Restart, Pause and Resume may also be called from
// a fault schedule running beside it.
type Cluster struct {
	t        testing.TB
	opts     Options
	bin      string // routers, and nodes without DiskFaults
	nodeBin  string
	dir      string
	cfg      *config.Config // the test's view: real addresses, secrets filled in
	nodes    []string
	routers  []string
	files    map[string]string // process ID -> its cluster file
	rpcProxy map[string]*faultproxy.Proxy
	raftProx map[[2]string]*faultproxy.Proxy
	client   *shardrpc.Client // reaches the nodes directly

	mu     sync.Mutex
	procs  map[string]*Process
	logs   map[string]*testutil.SyncBuffer
	paused map[string]bool
}

// New writes the cluster files of a new cluster into a temporary directory
// and, with Options.Proxies, starts the proxies; it starts no process (see
// StartNode, StartRouter, or Start for all of them). It skips the test in
// -short mode: real processes take seconds.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real linkraft processes; skipped with -short")
	}
	opts.fill()
	c := &Cluster{
		t: t, opts: opts, bin: Binary(t), dir: t.TempDir(),
		files: make(map[string]string), rpcProxy: make(map[string]*faultproxy.Proxy),
		raftProx: make(map[[2]string]*faultproxy.Proxy),
		procs:    make(map[string]*Process), logs: make(map[string]*testutil.SyncBuffer), paused: make(map[string]bool),
	}
	c.nodeBin = c.bin
	if opts.DiskFaults {
		c.nodeBin = FaultBinary(t)
	}
	addrs, release := freeAddrs(t, 2*opts.Nodes+opts.Routers)
	defer release() // after the proxies listen, before the processes start
	raftAddr, rpcAddr := make(map[string]string), make(map[string]string)
	for i := range opts.Nodes {
		id := fmt.Sprintf("n%d", i+1)
		c.nodes = append(c.nodes, id)
		raftAddr[id], rpcAddr[id] = addrs[2*i], addrs[2*i+1]
	}
	listen := make(map[string]string)
	for i := range opts.Routers {
		id := fmt.Sprintf("r%d", i+1)
		c.routers = append(c.routers, id)
		listen[id] = addrs[2*opts.Nodes+i]
	}
	if opts.Proxies {
		for _, j := range c.nodes {
			c.rpcProxy[j] = c.newProxy(rpcAddr[j])
			for _, i := range c.nodes {
				if i != j {
					c.raftProx[[2]string{i, j}] = c.newProxy(raftAddr[j])
				}
			}
		}
	}
	release() // every proxy listens: the processes may take their ports now

	// file writes the cluster file as process self sees it ("" for the
	// real addresses).
	file := func(self, name string) string {
		var b strings.Builder
		b.WriteString("cluster:\n  partitions: 256\n  code_length: 7\n  redirect_status: 301\n")
		if opts.ClickFlushInterval > 0 {
			fmt.Fprintf(&b, "  click_flush_interval: %s\n", opts.ClickFlushInterval)
		}
		fmt.Fprintf(&b, "  code_secret_env: %s\n  rpc_secret_env: %s\n", CodeSecretEnv, RPCSecretEnv)
		b.WriteString("nodes:\n")
		for _, j := range c.nodes {
			raft, rpc := raftAddr[j], rpcAddr[j]
			if p, ok := c.raftProx[[2]string{self, j}]; ok {
				raft = p.Addr()
			}
			if p, ok := c.rpcProxy[j]; ok && slices.Contains(c.routers, self) {
				rpc = p.Addr()
			}
			fmt.Fprintf(&b, "  - id: %s\n    raft_addr: %s\n    rpc_addr: %s\n    data_dir: data/%s\n", j, raft, rpc, j)
		}
		b.WriteString("shards:\n")
		for s := 1; s <= opts.Shards; s++ {
			fmt.Fprintf(&b, "  - id: %d\n    replicas: [%s]\n", s, strings.Join(c.nodes, ", "))
		}
		b.WriteString("routers:\n")
		for _, r := range c.routers {
			fmt.Fprintf(&b, "  - id: %s\n    listen: %s\n    base_url: http://%s\n", r, listen[r], listen[r])
		}
		if len(opts.APIKeys) > 0 {
			b.WriteString("api_keys:\n")
			for _, k := range opts.APIKeys {
				fmt.Fprintf(&b, "  - {id: %q, hash: %q, admin: %t}\n", k.ID, k.Hash, k.Admin)
			}
		}
		path := filepath.Join(c.dir, name)
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatalf("proctest: write cluster file: %v", err)
		}
		return path
	}
	direct := file("", "cluster.yaml")
	for _, id := range append(slices.Clone(c.nodes), c.routers...) {
		c.files[id] = direct
		if opts.Proxies {
			c.files[id] = file(id, id+".yaml")
		}
		c.logs[id] = &testutil.SyncBuffer{}
	}
	cfg, err := config.Load(direct)
	if err != nil {
		t.Fatalf("proctest: load the cluster file: %v", err)
	}
	cfg.Cluster.CodeSecret, cfg.Cluster.RPCSecret = codeSecret, rpcSecret
	c.cfg = cfg
	c.client = shardrpc.NewClient(cfg, shardrpc.ClientOptions{Timeout: time.Second, AttemptTimeout: 300 * time.Millisecond})
	t.Cleanup(c.client.Close)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, id := range append(slices.Clone(c.nodes), c.routers...) {
			if out := c.logs[id].String(); out != "" {
				t.Logf("---- output of %s ----\n%s", id, tail(out, 8000))
			}
		}
	})
	return c
}

// Start is New, then every node and router started, every router ready and
// every node answering for every shard.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c := New(t, opts)
	for _, id := range c.nodes {
		c.StartNode(id)
	}
	for _, id := range c.routers {
		c.StartRouter(id)
	}
	for _, id := range c.routers {
		c.WaitReady(id)
	}
	c.WaitNodesUp()
	return c
}

func (c *Cluster) newProxy(target string) *faultproxy.Proxy {
	p, err := faultproxy.New("127.0.0.1:0", target)
	if err != nil {
		c.t.Fatalf("proctest: proxy to %s: %v", target, err)
	}
	c.t.Cleanup(func() {
		if err := p.Close(); err != nil {
			c.t.Errorf("close proxy to %s: %v", target, err)
		}
	})
	return p
}

// freeAddrs returns n distinct 127.0.0.1 addresses whose ports are free,
// and holds them until release is called. Closed one by one, the kernel
// may hand the same port out twice, or to a listener opened meanwhile
// (a proxy's): two parts of the cluster would then fight for it. Open the
// test's own listeners first, then release, then start the processes.
//
// The ports are chosen below the kernel's ephemeral range (listenPorts),
// where Linux never puts the local end of an outgoing connection nor a
// listener on port 0: between release and a process's bind (for a router
// started late, seconds), the many connections of the tests and
// benchmarks sharing the machine could otherwise take the port, and the
// process would exit with "address already in use".
func freeAddrs(t testing.TB, n int) (addrs []string, release func()) {
	t.Helper()
	var held []net.Listener
	release = func() {
		for _, ln := range held {
			_ = ln.Close()
		}
		held = nil
	}
	lo, hi := listenPorts()
	for range n {
		var ln net.Listener
		var err error
		for try := 0; ; try++ {
			addr := "127.0.0.1:0"
			if hi > lo && try < 1000 {
				addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo)))
			}
			if ln, err = net.Listen("tcp", addr); err == nil || addr == "127.0.0.1:0" {
				break
			}
		}
		if err != nil {
			release()
			t.Fatalf("proctest: listen: %v", err)
		}
		held = append(held, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, release
}

// listenPorts is the range [lo, hi) freeAddrs picks ports from: from
// 10000 up to the start of the kernel's ephemeral port range
// (/proc/sys/net/ipv4/ip_local_port_range), or lo == hi when that range
// is unknown or leaves fewer than 1000 ports below it (then port 0).
func listenPorts() (lo, hi int) {
	const floor = 10000
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	start, err := strconv.Atoi(f[0])
	if err != nil || start-floor < 1000 {
		return 0, 0
	}
	return floor, start
}

// Dir is the cluster's directory: the cluster files, and data/<id> for
// each node's data.
func (c *Cluster) Dir() string { return c.dir }

// DataDir is node id's data directory.
func (c *Cluster) DataDir(id string) string { return filepath.Join(c.dir, "data", id) }

// Config is the cluster as the test sees it: the real addresses, and the
// secrets filled in.
func (c *Cluster) Config() *config.Config { return c.cfg }

// ConfigPath is the cluster file with the real addresses.
func (c *Cluster) ConfigPath() string { return filepath.Join(c.dir, "cluster.yaml") }

// Env is the environment the cluster's processes run with (the secrets),
// for a test that runs another linkraft command against the cluster.
func (c *Cluster) Env() []string {
	return append(os.Environ(), CodeSecretEnv+"="+codeSecret, RPCSecretEnv+"="+rpcSecret)
}

// NodeIDs are the IDs of the nodes; RouterIDs those of the routers.
func (c *Cluster) NodeIDs() []string { return slices.Clone(c.nodes) }

// RouterIDs are the IDs of the routers.
func (c *Cluster) RouterIDs() []string { return slices.Clone(c.routers) }

// Shards are the IDs of the shards.
func (c *Cluster) Shards() []uint64 {
	var ids []uint64
	for _, s := range c.cfg.Shards {
		ids = append(ids, s.ID)
	}
	return ids
}

// URL is router id's base URL, e.g. "http://127.0.0.1:41234".
func (c *Cluster) URL(id string) string {
	r, ok := c.cfg.Router(id)
	if !ok {
		c.t.Fatalf("proctest: no router %q", id)
	}
	return "http://" + r.Listen
}

// RPCAddr is node id's internal RPC address (not its proxy's).
func (c *Cluster) RPCAddr(id string) string {
	n, ok := c.cfg.Node(id)
	if !ok {
		c.t.Fatalf("proctest: no node %q", id)
	}
	return n.RPCAddr
}

// Client is a shard RPC client that reaches the nodes directly.
func (c *Cluster) Client() *shardrpc.Client { return c.client }

// RPCProxy is the proxy in front of node id's internal RPC (nil without
// Options.Proxies).
func (c *Cluster) RPCProxy(id string) *faultproxy.Proxy { return c.rpcProxy[id] }

// RaftProxy is the proxy through which node from dials node to's Raft port
// (nil without Options.Proxies).
func (c *Cluster) RaftProxy(from, to string) *faultproxy.Proxy {
	return c.raftProx[[2]string{from, to}]
}

// Process is the current (or last) run of node or router id, nil if it
// was never started.
func (c *Cluster) Process(id string) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[id]
}

// Output is everything node or router id has written so far, over all its
// runs.
func (c *Cluster) Output(id string) string {
	if b := c.logs[id]; b != nil {
		return b.String()
	}
	return ""
}

// StartNode starts node id (on its data, if it has any).
func (c *Cluster) StartNode(id string) *Process {
	c.t.Helper()
	var env []string
	if c.opts.DiskFaults {
		env = append(env, diskfault.ControlEnv+"="+c.DiskControl(id))
	}
	return c.start(id, c.nodeBin, env, "node", "--config", c.files[id], "--id", id)
}

// StartRouter starts router id.
func (c *Cluster) StartRouter(id string) *Process {
	c.t.Helper()
	return c.start(id, c.bin, nil, "router", "--config", c.files[id], "--id", id)
}

// start runs bin args... as process id; it is killed at cleanup.
func (c *Cluster) start(id, bin string, env []string, args ...string) *Process {
	c.t.Helper()
	out := c.logs[id]
	if out == nil {
		c.t.Fatalf("proctest: no node or router %q", id)
	}
	c.mu.Lock()
	if old := c.procs[id]; old != nil && !old.Exited() {
		c.mu.Unlock()
		c.t.Fatalf("proctest: %s is running already", id)
	}
	c.mu.Unlock()
	p := &Process{name: id, args: args, env: env, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(c.Env(), env...)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	fmt.Fprintf(out, "---- proctest: start %s %s ----\n", filepath.Base(bin), strings.Join(args, " "))
	if err := p.cmd.Start(); err != nil {
		c.t.Fatalf("proctest: start %s: %v", id, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	c.t.Cleanup(func() {
		if err := p.kill(); err != nil {
			c.t.Error(err)
		}
	})
	c.mu.Lock()
	c.procs[id] = p
	c.mu.Unlock()
	return p
}

// Kill sends SIGKILL to node or router id and waits until it is reaped.
func (c *Cluster) Kill(id string) {
	c.t.Helper()
	p := c.Process(id)
	if p == nil {
		return
	}
	c.mu.Lock()
	delete(c.paused, id) // a killed process is paused no more
	c.mu.Unlock()
	if err := p.kill(); err != nil {
		c.t.Error(err)
	}
}

// Restart kills node or router id if it runs and starts it again with the
// same arguments (a node on its data).
func (c *Cluster) Restart(id string) *Process {
	c.t.Helper()
	c.Kill(id)
	if slices.Contains(c.nodes, id) {
		return c.StartNode(id)
	}
	return c.StartRouter(id)
}

// Stop stops node or router id gracefully (SIGTERM), waits up to 30 s
// until it has exited and returns its exit error (nil for a clean stop).
func (c *Cluster) Stop(id string) error {
	p := c.Process(id)
	if p == nil {
		return fmt.Errorf("proctest: %s was never started", id)
	}
	return p.stop(30 * time.Second)
}

// Pause stops node or router id with SIGSTOP: it neither runs nor dies,
// and its sockets stay open. Resume (or Heal) continues it.
func (c *Cluster) Pause(id string) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.procs[id].Signal(syscall.SIGSTOP); err != nil {
		c.t.Fatalf("proctest: %v", err)
	}
	c.paused[id] = true
}

// Resume continues a paused process (SIGCONT).
func (c *Cluster) Resume(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resumeLocked(id)
}

func (c *Cluster) resumeLocked(id string) {
	if !c.paused[id] {
		return
	}
	delete(c.paused, id)
	if err := c.procs[id].Signal(syscall.SIGCONT); err != nil {
		c.t.Errorf("proctest: %v", err)
	}
}

// Isolate cuts node id off the other nodes' Raft traffic, both ways, and
// with fromRouters also off the routers. It needs Options.Proxies.
func (c *Cluster) Isolate(id string, fromRouters bool) {
	c.t.Helper()
	if !c.opts.Proxies {
		c.t.Fatal("proctest: Isolate needs Options.Proxies")
	}
	for k, p := range c.raftProx {
		if k[0] == id || k[1] == id {
			p.Blackhole()
		}
	}
	if fromRouters {
		c.rpcProxy[id].Blackhole()
	}
}

// Heal undoes every fault: it resumes every paused process, heals every
// proxy, makes every disk healthy (with Options.DiskFaults) and restarts
// every node that is down.
func (c *Cluster) Heal() {
	c.t.Helper()
	c.mu.Lock()
	for id := range c.paused {
		c.resumeLocked(id)
	}
	c.mu.Unlock()
	for _, p := range c.rpcProxy {
		p.Heal()
	}
	for _, p := range c.raftProx {
		p.Heal()
	}
	for _, id := range c.nodes {
		if c.opts.DiskFaults {
			if err := diskfault.SetControl(c.DiskControl(id), diskfault.Healthy); err != nil {
				c.t.Errorf("proctest: heal the disk of %s: %v", id, err)
			}
		}
		if p := c.Process(id); p != nil && p.Exited() {
			c.StartNode(id)
		}
	}
}

// DiskControl is the control file of node id's disk (Options.DiskFaults).
func (c *Cluster) DiskControl(id string) string {
	return filepath.Join(c.dir, "disk-"+id)
}

// SetDisk switches node id's disk to mode m (Options.DiskFaults) and waits
// until the node has applied it, or has exited (a failing disk may end
// it first).
func (c *Cluster) SetDisk(id string, m diskfault.Mode) {
	c.t.Helper()
	if !c.opts.DiskFaults {
		c.t.Fatal("proctest: SetDisk needs Options.DiskFaults")
	}
	path := c.DiskControl(id)
	if err := diskfault.SetControl(path, m); err != nil {
		c.t.Fatalf("proctest: %v", err)
	}
	p := c.Process(id)
	Eventually(c.t, 30*time.Second, fmt.Sprintf("%s's disk %s", id, m), func() error {
		got, ok, err := diskfault.AppliedMode(path)
		switch {
		case err != nil:
			return err
		case ok && got == m:
			return nil
		case p == nil || p.Exited():
			return nil
		}
		return fmt.Errorf("disk %v", got)
	})
}
