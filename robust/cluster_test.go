package robust

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/faultproxy"
	"github.com/linkraft/linkraft/history"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/router"
	"github.com/linkraft/linkraft/shardrpc"
)

// seedFor returns the scenario's seed: $LINKRAFT_SEED when set (to replay a
// failure), else a fresh one. It is logged, and printed again on failure.
func seedFor(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LINKRAFT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("LINKRAFT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	name := scenarioName(t)
	t.Logf("seed %d (replay with LINKRAFT_SEED=%d go test -run '^%s$' ./robust)", seed, seed, name)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("FAILED with seed %d: replay with LINKRAFT_SEED=%d go test -run '^%s$' ./robust", seed, seed, name)
		}
	})
	return seed
}

// scenarioName is the name of the scenario test t runs: t.Name(), or for
// a round of TestSoak the name of the scenario's own test.
func scenarioName(t *testing.T) string {
	name := t.Name()
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.IndexByte(name, '#'); i >= 0 {
		name = name[:i]
	}
	return name
}

// reportDir is where a failed scenario leaves its history and the
// checker's report: $LINKRAFT_REPORT_DIR/<scenario>-<seed> when set (make
// soak sets it), else $TMPDIR/linkraft-robust-<scenario>-<seed>.
func reportDir(t *testing.T, seed uint64) string {
	if base := os.Getenv("LINKRAFT_REPORT_DIR"); base != "" {
		return filepath.Join(base, fmt.Sprintf("%s-%d", scenarioName(t), seed))
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("linkraft-robust-%s-%d", scenarioName(t), seed))
}

// cluster is a 3-node, 3-shard in-process cluster with one router whose
// internal RPC to every node goes through a faultproxy.
type cluster struct {
	t       *testing.T
	nodes   *nodetest.Cluster
	proxies map[string]*faultproxy.Proxy // node ID -> proxy in front of its RPC
	router  string                       // base URL
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	return startClusterOpts(t, nodetest.Options{})
}

// startClusterOpts is startCluster with nodetest options (the topology
// fields are ignored: 3 nodes, 3 shards on every node).
func startClusterOpts(t *testing.T, opts nodetest.Options) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("robustness scenarios run for seconds; skipped with -short")
	}
	cfg := nodetest.NewConfig(t, nodetest.Options{})
	nodes := nodetest.StartConfig(t, cfg, opts)
	c := &cluster{t: t, nodes: nodes, proxies: make(map[string]*faultproxy.Proxy)}

	// The router's view of the cluster: the same, with every node's RPC
	// address replaced by its proxy's.
	rcfg := *cfg
	rcfg.Nodes = append([]config.Node(nil), cfg.Nodes...)
	for i, n := range rcfg.Nodes {
		p, err := faultproxy.New("127.0.0.1:0", n.RPCAddr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := p.Close(); err != nil {
				t.Errorf("close proxy of %s: %v", n.ID, err)
			}
		})
		c.proxies[n.ID] = p
		rcfg.Nodes[i].RPCAddr = p.Addr()
	}

	client := shardrpc.NewClient(&rcfg, shardrpc.ClientOptions{
		Timeout:        2 * time.Second,
		AttemptTimeout: 500 * time.Millisecond,
		DialTimeout:    300 * time.Millisecond,
	})
	t.Cleanup(client.Close)
	r, err := router.New(&rcfg, rcfg.Routers[0].ID, client, router.Options{
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		RPCTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- r.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("router shutdown: %v", err)
		}
		if err := <-served; err != nil && !errors.Is(err, router.ErrServerClosed) {
			t.Errorf("router serve: %v", err)
		}
	})
	c.router = "http://" + ln.Addr().String()
	nodes.WaitLeaders()
	return c
}

// target is a cluster a scenario runs against.
type target interface {
	// routerURL is the base URL of the router the workload uses.
	routerURL() string
	// heal undoes every fault and restarts every stopped node.
	heal()
	// waitReady waits until every shard has a leader the router reaches.
	waitReady()
}

func (c *cluster) routerURL() string { return c.router }

// heal undoes every proxy fault.
func (c *cluster) heal() {
	for _, p := range c.proxies {
		p.Heal()
	}
}

func (c *cluster) waitReady() { c.nodes.WaitLeaders() }

// shards returns the cluster's shard IDs.
func (c *cluster) shards() []uint64 {
	var ids []uint64
	for _, s := range c.nodes.Config().Shards {
		ids = append(ids, s.ID)
	}
	return ids
}

// run shapes a scenario.
type run struct {
	// duration of the workload: it runs at least this long, and until
	// the fault schedule has returned.
	duration time.Duration
	// requestTimeout is the clients' patience (default 2 s). Shorter than
	// the router's own retries, it turns slow creates into unknown
	// outcomes that may still take effect.
	requestTimeout time.Duration
	// rec, if set, is the recorder to use, so that the fault schedule can
	// read its clock (rec.Now) to tell when faults were on.
	rec *history.Recorder
}

// scenario runs a recorded workload while faults runs in the test's
// goroutine, then heals, verifies and checks the history, which it
// returns. faults gets a context that ends after r.duration; the workload
// goes on until faults has returned too.
func scenario(t *testing.T, seed uint64, c target, r run, faults func(ctx context.Context, rng *rand.Rand)) []history.Op {
	t.Helper()
	if r.requestTimeout <= 0 {
		r.requestTimeout = 2 * time.Second
	}
	rec := r.rec
	if rec == nil {
		rec = history.NewRecorder()
	}
	dir := reportDir(t, seed)
	checked := false
	t.Cleanup(func() {
		// A failure the checker did not report (a failed wait, a node
		// that would not stop) still leaves the history behind.
		if !t.Failed() || checked {
			return
		}
		if err := os.MkdirAll(dir, 0o755); err == nil {
			if err := rec.Save(filepath.Join(dir, "history.jsonl")); err == nil {
				t.Logf("history saved in %s", dir)
			}
		}
	})
	w := &Workload{Routers: []string{c.routerURL()}, Clients: 6, Seed: seed, Recorder: rec, RequestTimeout: r.requestTimeout}
	defer w.Close()

	fctx, fcancel := context.WithTimeout(context.Background(), r.duration)
	defer fcancel()
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(wctx)
	}()
	faults(fctx, rand.New(rand.NewPCG(seed, 0xfa017)))
	<-fctx.Done()
	wcancel()
	<-done

	c.heal()
	c.waitReady()
	vctx, vcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer vcancel()
	if err := w.Verify(vctx); err != nil {
		t.Error(err)
	}

	ops := rec.Ops()
	rep, err := history.Check(ops, history.Options{ReportDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	stats := summarize(ops)
	t.Logf("%d operations on %d codes: %s; linearizability %s", rep.Ops, rep.Codes, stats, rep.Linearizable)
	if err := rep.Err(); err != nil {
		checked = true
		t.Fatalf("%v (report in %s)", err, dir)
	}
	if stats.acked == 0 {
		t.Fatal("no create was acknowledged: the scenario tested nothing")
	}
	return ops
}

type opStats struct{ acked, unknown, unknownApplied, found, notFound, taken int }

func (s opStats) String() string {
	return fmt.Sprintf("%d creates acknowledged, %d unknown outcomes (%d creates among them seen to take effect), %d resolves found, %d 404, %d alias taken",
		s.acked, s.unknown, s.unknownApplied, s.found, s.notFound, s.taken)
}

func summarize(ops []history.Op) opStats {
	var s opStats
	seen := make(map[string]bool) // URLs some resolve found
	for _, op := range ops {
		if op.Out.Result == history.ResultFound {
			seen[op.Out.URL] = true
		}
	}
	for _, op := range ops {
		if op.In.Kind != history.KindResolve && op.Out.Result == history.ResultUnknown && seen[op.In.URL] {
			s.unknownApplied++
		}
		switch op.Out.Result {
		case history.ResultOK:
			s.acked++
		case history.ResultUnknown:
			s.unknown++
		case history.ResultFound:
			s.found++
		case history.ResultNotFound:
			s.notFound++
		case history.ResultAliasTaken:
			s.taken++
		}
	}
	return s
}

// pause waits for d or until ctx is done; it paces the fault schedule.
func pause(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// stopNode stops node id gracefully like nodetest's StopNode, but fails
// the test after a minute instead of hanging: a node's Close waits for its
// raft groups, and a group that never stops (as with the raft pipeline
// deadlock in docs/ROBUSTNESS.md, Findings) must fail the scenario, not
// hang the suite.
func (c *cluster) stopNode(id string) {
	c.t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.nodes.CloseNode(id) }()
	select {
	case err := <-done:
		if err != nil {
			c.t.Errorf("stop node %s: %v", id, err)
		}
	case <-time.After(time.Minute):
		c.t.Fatalf("node %s did not stop within a minute: a raft group's shutdown hangs (compare the raft pipeline finding in docs/ROBUSTNESS.md)", id)
	}
}
