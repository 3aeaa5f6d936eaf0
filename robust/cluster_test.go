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
	t.Logf("seed %d (replay with LINKRAFT_SEED=%d go test -run '^%s$' ./robust)", seed, seed, t.Name())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("FAILED with seed %d: replay with LINKRAFT_SEED=%d go test -run '^%s$' ./robust", seed, seed, t.Name())
		}
	})
	return seed
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
	if testing.Short() {
		t.Skip("robustness scenarios run for seconds; skipped with -short")
	}
	cfg := nodetest.NewConfig(t, nodetest.Options{})
	nodes := nodetest.StartConfig(t, cfg, nodetest.Options{})
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
	// duration of the workload.
	duration time.Duration
	// requestTimeout is the clients' patience (default 2 s). Shorter than
	// the router's own retries, it turns slow creates into unknown
	// outcomes that may still take effect.
	requestTimeout time.Duration
}

// scenario runs a recorded workload while faults runs in the test's
// goroutine, then heals, verifies and checks the history.
func scenario(t *testing.T, seed uint64, c target, r run, faults func(ctx context.Context, rng *rand.Rand)) {
	t.Helper()
	if r.requestTimeout <= 0 {
		r.requestTimeout = 2 * time.Second
	}
	rec := history.NewRecorder()
	w := &Workload{Routers: []string{c.routerURL()}, Clients: 6, Seed: seed, Recorder: rec, RequestTimeout: r.requestTimeout}
	defer w.Close()

	ctx, cancel := context.WithTimeout(context.Background(), r.duration)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	faults(ctx, rand.New(rand.NewPCG(seed, 0xfa017)))
	<-done

	c.heal()
	c.waitReady()
	vctx, vcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer vcancel()
	if err := w.Verify(vctx); err != nil {
		t.Error(err)
	}

	dir := filepath.Join(os.TempDir(), fmt.Sprintf("linkraft-robust-%s-%d", t.Name(), seed))
	ops := rec.Ops()
	rep, err := history.Check(ops, history.Options{ReportDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	stats := summarize(ops)
	t.Logf("%d operations on %d codes: %s; linearizability %s", rep.Ops, rep.Codes, stats, rep.Linearizable)
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if stats.acked == 0 {
		t.Fatal("no create was acknowledged: the scenario tested nothing")
	}
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
