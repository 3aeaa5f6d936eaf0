package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
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
)

// binPath is the linkraft binary under test, built by TestMain.
var binPath string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	if p := os.Getenv("LINKRAFT_BIN"); p != "" {
		binPath = p
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "linkraft-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binPath = filepath.Join(dir, "linkraft")
	build := exec.Command("go", "build", "-o", binPath, "github.com/linkraft/linkraft/cmd/linkraft")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build linkraft:", err)
		return 1
	}
	return m.Run()
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// topology is a cluster file written for one test.
type topology struct {
	dir     string
	path    string
	nodes   []nodeSpec
	routers []routerSpec
}

type nodeSpec struct{ id, raftAddr, rpcAddr string }
type routerSpec struct{ id, listen string }

func (r routerSpec) url() string { return "http://" + r.listen }

// writeTopology writes a cluster file with nNodes nodes, nShards shards each
// replicated on every node, and nRouters routers, all on free ports.
func writeTopology(t *testing.T, nNodes, nShards, nRouters int) *topology {
	t.Helper()
	topo := &topology{dir: t.TempDir()}
	var b strings.Builder
	b.WriteString("cluster:\n  partitions: 256\n  code_length: 7\n  redirect_status: 301\n  click_flush_interval: 200ms\n")
	b.WriteString("  code_secret_env: LINKRAFT_TEST_CODE_SECRET\n  rpc_secret_env: LINKRAFT_TEST_RPC_SECRET\n")
	b.WriteString("nodes:\n")
	var ids []string
	for i := 1; i <= nNodes; i++ {
		n := nodeSpec{id: fmt.Sprintf("n%d", i), raftAddr: freeAddr(t), rpcAddr: freeAddr(t)}
		topo.nodes = append(topo.nodes, n)
		ids = append(ids, n.id)
		fmt.Fprintf(&b, "  - id: %s\n    raft_addr: %s\n    rpc_addr: %s\n    data_dir: data/%s\n", n.id, n.raftAddr, n.rpcAddr, n.id)
	}
	b.WriteString("shards:\n")
	for i := 1; i <= nShards; i++ {
		fmt.Fprintf(&b, "  - id: %d\n    replicas: [%s]\n", i, strings.Join(ids, ", "))
	}
	b.WriteString("routers:\n")
	for i := 1; i <= nRouters; i++ {
		r := routerSpec{id: fmt.Sprintf("r%d", i), listen: freeAddr(t)}
		topo.routers = append(topo.routers, r)
		fmt.Fprintf(&b, "  - id: %s\n    listen: %s\n    base_url: http://%s\n", r.id, r.listen, r.listen)
	}
	topo.path = filepath.Join(topo.dir, "cluster.yaml")
	if err := os.WriteFile(topo.path, []byte(b.String()), 0o644); err != nil {
		t.Fatalf("write cluster file: %v", err)
	}
	return topo
}

// proc is one linkraft process started by a test.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs `linkraft <args>` with the test's secrets in the environment. The
// process is killed at test cleanup, and its output is logged if the test
// failed.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(binPath, args...)
	p.cmd.Env = append(os.Environ(), "LINKRAFT_TEST_CODE_SECRET=e2e-code-secret", "LINKRAFT_TEST_RPC_SECRET=e2e-rpc-secret")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill(t)
		if t.Failed() {
			t.Logf("---- output of %s ----\n%s", name, tail(p.log.String(), 8000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// kill sends SIGKILL and waits for the process to be reaped.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not exit after SIGKILL", p.name)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited with code %d after SIGTERM", p.name, code)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("%s did not stop within 20s of SIGTERM", p.name)
		p.kill(t)
	}
}

func startNode(t *testing.T, topo *topology, id string) *proc {
	return start(t, id, "node", "--config", topo.path, "--id", id)
}

func startRouter(t *testing.T, topo *topology, id string) *proc {
	return start(t, id, "router", "--config", topo.path, "--id", id)
}

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// client does not follow redirects: the tests look at the redirect itself.
var client = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	eventually(t, 30*time.Second, base+"/readyz", func() error {
		resp, err := client.Get(base + "/readyz")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		return nil
	})
}

// created is the answer of a successful shorten.
type created struct {
	Code      string `json:"code"`
	ShortURL  string `json:"short_url"`
	URL       string `json:"url"`
	CreatedAt string `json:"created_at"`
}

// shorten posts one create and returns the status and the decoded body.
func shorten(base string, body string) (int, created, []byte, error) {
	resp, err := client.Post(base+"/api/v1/links", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, created{}, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, created{}, nil, err
	}
	var c created
	if resp.StatusCode == http.StatusCreated {
		if err := json.Unmarshal(raw, &c); err != nil {
			return resp.StatusCode, c, raw, fmt.Errorf("decode %s: %w", raw, err)
		}
	}
	return resp.StatusCode, c, raw, nil
}

// redirectTarget GETs base/code and returns the status and Location.
func redirectTarget(base, code string) (int, string, error) {
	resp, err := client.Get(base + "/" + code)
	if err != nil {
		return 0, "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location"), nil
}

// shardStatus is the internal status of one shard replica.
type shardStatus struct {
	Shard        uint64 `json:"shard"`
	NodeID       string `json:"node_id"`
	State        string `json:"state"`
	LeaderID     string `json:"leader_id"`
	AppliedIndex uint64 `json:"applied_index"`
	LastIndex    uint64 `json:"last_index"`
}

// status asks a node's internal RPC for one shard's replica status.
func status(rpcAddr string, shard int) (shardStatus, error) {
	req, err := http.NewRequest(http.MethodPost, "http://"+rpcAddr+"/rpc/v1/status", strings.NewReader("{}"))
	if err != nil {
		return shardStatus{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Linkraft-Shard", fmt.Sprint(shard))
	req.Header.Set("X-Linkraft-Secret", "e2e-rpc-secret")
	resp, err := client.Do(req)
	if err != nil {
		return shardStatus{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return shardStatus{}, fmt.Errorf("status %d: %s", resp.StatusCode, raw)
	}
	var s shardStatus
	if err := json.Unmarshal(raw, &s); err != nil {
		return shardStatus{}, fmt.Errorf("decode %s: %w", raw, err)
	}
	return s, nil
}
