package router

import (
	"context"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
)

// maxColdRedirectAllocs bounds the allocations of a redirect that misses
// the cache (cache off) and resolves at a real shard over loopback, router
// and shardrpc client together: 3 today, the code as a string and the
// decoded record's strings (linkstore.DecodeRecord). The node's side
// allocates nothing (node.TestResolveBinaryDoesNotAllocate). Before the
// binary resolve RPC and ResolveDeadline a cold redirect allocated 7 times
// here, and the JSON client about 20 more per resolve.
const maxColdRedirectAllocs = 3

// TestColdRedirectAllocations drives the handler of a router whose cache
// is off, so that every redirect is a resolve RPC, and bounds its
// allocations per redirect.
func TestColdRedirectAllocations(t *testing.T) {
	// Registered before the cluster, so it runs after the node stopped.
	t.Cleanup(func() { waitWorkerCleaners(t) })
	c := nodetest.Start(t, nodetest.Options{Nodes: 1, Shards: 1, Routers: 1, Partitions: 8})
	c.WaitLeader(1)
	cfg := c.Config()
	zero := 0
	cfg.Routers[0].CacheSize = &zero
	client := shardrpc.NewClient(cfg, shardrpc.ClientOptions{IdleConnTimeout: 100 * time.Millisecond})
	defer client.Close()
	r, err := New(cfg, cfg.Routers[0].ID, client, Options{Logger: testLogger(t), DisableClicks: true})
	if err != nil {
		t.Fatal(err)
	}
	rg, err := cfg.Ring()
	if err != nil {
		t.Fatal(err)
	}
	link, err := client.Create(context.Background(), 1, shardrpc.CreateRequest{Partition: rg.PartitionsOf(1)[0], URL: "https://example.com/cold/path"})
	if err != nil {
		t.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	path := "/" + link.Code
	run := func() {
		ctx.Request.Header.SetMethod(fasthttp.MethodGet)
		ctx.Request.SetRequestURI(path)
		ctx.Response.Reset()
		r.handle(&ctx)
		if ctx.Response.StatusCode() != fasthttp.StatusMovedPermanently || string(ctx.Response.Header.Peek("Location")) != link.URL {
			t.Fatalf("cold redirect: %d %q", ctx.Response.StatusCode(), ctx.Response.Header.Peek("Location"))
		}
	}
	run()
	if raceEnabled {
		t.Skip("allocation counts are not checked under the race detector")
	}
	n := testing.AllocsPerRun(300, run)
	t.Logf("a cold redirect allocates %.1f times (router and client)", n)
	if n > maxColdRedirectAllocs {
		t.Fatalf("a cold redirect allocates %.1f times, want at most %d", n, maxColdRedirectAllocs)
	}
}
