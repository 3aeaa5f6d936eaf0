package router

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/clicks"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
)

// clickFake is fakeShards that also takes clicks: it keeps every batch it
// acknowledged and answers stats from them.
type clickFake struct {
	*fakeShards
	cmu     sync.Mutex
	batches []clicks.Batch
}

func (f *clickFake) FlushClicks(_ context.Context, _ uint64, b clicks.Batch) error {
	f.cmu.Lock()
	defer f.cmu.Unlock()
	f.batches = append(f.batches, b)
	return nil
}

func (f *clickFake) Stats(_ context.Context, _ uint64, req shardrpc.StatsRequest) (clicks.Stats, error) {
	f.cmu.Lock()
	defer f.cmu.Unlock()
	st := clicks.Stats{Code: req.Code, From: req.From, To: req.To}
	for _, b := range f.batches {
		for _, d := range b.Deltas {
			if d.Code == req.Code {
				st.TotalClicks += d.Clicks
				st.TotalBots += d.Bots
			}
		}
	}
	return st, nil
}

// newClickRouter is newHandlerRouter with click counting on.
func newClickRouter(t testing.TB, opts Options) (*Router, *clickFake, string) {
	t.Helper()
	cfg := testConfig(t, 1000)
	rg, err := cfg.Ring()
	if err != nil {
		t.Fatal(err)
	}
	fake := &clickFake{fakeShards: newFakeShards(rg)}
	opts.Logger = testLogger(t)
	opts.IdleWorkerTimeout = 50 * time.Millisecond
	r, err := New(cfg, "r1", fake, opts)
	if err != nil {
		t.Fatal(err)
	}
	code := rg.Codec().Encode(424242)
	p := rg.PartitionOfCode(code)
	if _, err := fake.Create(context.Background(), rg.ShardOf(p), shardrpc.CreateRequest{Partition: p, URL: "https://example.com/hot/path?q=1", Alias: code}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return r, fake, code
}

func redirectRequest(ctx *fasthttp.RequestCtx, method, path string) {
	ctx.Request.Reset()
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(path)
	ctx.Request.Header.SetUserAgent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")
	ctx.Request.Header.SetReferer("https://news.example.org/item?id=1")
	ctx.Response.Reset()
}

func TestCountedRedirectAllocatesNothing(t *testing.T) {
	r, fake, code := newClickRouter(t, Options{})
	var ctx fasthttp.RequestCtx
	ctx.Init(&ctx.Request, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 5555}, nil)
	path := "/" + code
	run := func() {
		redirectRequest(&ctx, fasthttp.MethodGet, path)
		r.handle(&ctx)
	}
	run() // miss: resolves, fills the cache, counts
	// Warm both of the counter's maps for this code.
	for range 2 {
		run()
		if err := r.FlushClicks(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if allocs := testing.AllocsPerRun(1000, run); allocs != 0 {
		t.Fatalf("counted cached redirect allocates %.1f times per request, want 0", allocs)
	}
	if ctx.Response.StatusCode() != 301 {
		t.Fatalf("status %d", ctx.Response.StatusCode())
	}
	head := func() {
		redirectRequest(&ctx, fasthttp.MethodHead, path)
		r.handle(&ctx)
	}
	head()
	if allocs := testing.AllocsPerRun(1000, head); allocs != 0 {
		t.Fatalf("counted HEAD allocates %.1f times per request, want 0", allocs)
	}
	if err := r.FlushClicks(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, _ := fake.Stats(context.Background(), 0, shardrpc.StatsRequest{Code: code})
	// 3 GETs before, 1001 in AllocsPerRun (it runs once more to warm up);
	// the HEADs are bot clicks.
	if st.TotalClicks != 3+1001 || st.TotalBots != 1+1001 {
		t.Fatalf("counted %d clicks and %d bots, want %d and %d", st.TotalClicks, st.TotalBots, 3+1001, 1+1001)
	}
}

func TestStatsEndpointValidation(t *testing.T) {
	r, _, code := newClickRouter(t, Options{})
	do := func(path string) (int, map[string]any) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(fasthttp.MethodGet)
		ctx.Request.SetRequestURI(path)
		r.handle(&ctx)
		var body map[string]any
		if err := json.Unmarshal(ctx.Response.Body(), &body); err != nil {
			t.Fatalf("%s: body %q is not JSON: %v", path, ctx.Response.Body(), err)
		}
		return ctx.Response.StatusCode(), body
	}
	base := "/api/v1/links/" + code + "/stats"
	for _, q := range []string{"?from=2026-13-01", "?to=yesterday", "?from=2026-02-01&to=2026-01-31",
		"?from=2025-01-01&to=2026-01-02", "?from=1969-12-31"} {
		if st, body := do(base + q); st != 400 || body["error"] == nil {
			t.Errorf("%s: %d %v, want a 400 JSON error", q, st, body)
		}
	}
	st, body := do(base)
	if st != 200 || body["to"] != today().String() || body["from"] != (today()-29).String() {
		t.Fatalf("default range: %d %v", st, body)
	}
	if st, _ := do(base + "?from=2025-01-01&to=2026-01-01"); st != 200 {
		t.Fatalf("366 days: %d", st)
	}
	if st, _ := do("/api/v1/links/nosuchlink/stats"); st != 404 {
		t.Fatalf("unknown code: %d", st)
	}
	if st, body := do("/api/v1/links/" + code); st != 200 || body["clicks"] != float64(0) {
		t.Fatalf("link record: %d %v", st, body)
	}
}

// awaitStoppedWorkerPools waits until the worker-pool cleaners of stopped
// fasthttp servers exit: one notices its server stopped only after the
// server's MaxIdleWorkerDuration (10 s for the nodes' RPC servers), so
// goleak would report it although it ends.
func awaitStoppedWorkerPools(t *testing.T) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		n := strings.Count(string(buf[:runtime.Stack(buf, true)]), "fasthttp.(*workerPool).Start.func2")
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d fasthttp worker-pool cleaners still running", n)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func httpDo(t *testing.T, method, url, ua string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestClicksOnRealCluster counts redirects at two routers against a real
// 3-node cluster and reads them back from the shards.
func TestClicksOnRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	// Registered before the cluster, so it runs after the nodes stopped.
	t.Cleanup(func() { awaitStoppedWorkerPools(t) })
	c := nodetest.Start(t, nodetest.Options{Routers: 2})
	c.WaitLeaders()
	cfg := *c.Config()
	// No flush on the interval during the test: router a flushes
	// explicitly, router b only when it shuts down.
	cfg.Cluster.ClickFlushInterval = time.Hour
	ra, a, _ := startClusterRouter(t, &cfg, "r1", Options{})
	_, b, stopB := startClusterRouter(t, &cfg, "r2", Options{})
	rg, err := cfg.Ring()
	if err != nil {
		t.Fatal(err)
	}

	// Links on at least two shards.
	var codes []string
	shards := map[uint64]bool{}
	for i := 0; len(shards) < 2 || len(codes) < 2; i++ {
		resp, body := httpDo(t, http.MethodPost, a+"/api/v1/links", "", strings.NewReader(fmt.Sprintf(`{"url": "https://example.com/clicks/%d"}`, i)))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create: %d %s", resp.StatusCode, body)
		}
		var cr struct{ Code string }
		if err := json.Unmarshal(body, &cr); err != nil {
			t.Fatal(err)
		}
		s := rg.ShardOfCode(cr.Code)
		if !shards[s] {
			shards[s] = true
			codes = append(codes, cr.Code)
		}
	}
	const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
	want := map[string]int{}
	for i, code := range codes {
		n := 40 + 7*i
		want[code] = n
		for j := range n {
			base := a
			if j%2 == 1 {
				base = b
			}
			if resp, _ := httpDo(t, http.MethodGet, base+"/"+code, firefox, nil); resp.StatusCode != 301 {
				t.Fatalf("redirect: %d", resp.StatusCode)
			}
		}
		for range 5 {
			httpDo(t, http.MethodGet, a+"/"+code, "curl/8.4.0", nil)
		}
	}
	// Router a flushes now (twice: the second has nothing new); router b
	// stops gracefully, which flushes what it counted.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range 2 {
		if err := ra.FlushClicks(ctx); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	stopB()
	for _, code := range codes {
		resp, body := httpDo(t, http.MethodGet, a+"/api/v1/links/"+code+"/stats", "", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("stats: %d %s", resp.StatusCode, body)
		}
		var st clicks.Stats
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
		n := uint64(want[code])
		if st.Clicks != n || st.TotalClicks != n || st.Bots != 5 || st.Uniques != 1 || len(st.Days) != 30 ||
			len(st.Browsers) != 1 || st.Browsers[0] != (clicks.Count{Key: "Firefox", N: n}) {
			t.Fatalf("stats of %s: %s, want %d clicks, 5 bots, 1 unique", code, body, n)
		}
		resp, body = httpDo(t, http.MethodGet, a+"/api/v1/links/"+code, "", nil)
		var rec struct{ Clicks *uint64 }
		if err := json.Unmarshal(body, &rec); err != nil || resp.StatusCode != 200 || rec.Clicks == nil || *rec.Clicks != n {
			t.Fatalf("link record of %s: %d %s", code, resp.StatusCode, body)
		}
	}
	if st := ra.ClickStats(); st.Pending != 0 || st.Sent == 0 || st.DroppedClicks != 0 {
		t.Fatalf("router a flusher: %+v", st)
	}
}
