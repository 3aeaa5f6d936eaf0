package router

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkraft/linkraft/internal/testutil"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
)

// gatedClient is a shard client whose change feed can be cut (as a
// partition between the router and the shards' leaders would) and that
// counts the resolves, i.e. the redirects its router's cache missed.
type gatedClient struct {
	*shardrpc.Client
	cut      atomic.Bool
	resolves atomic.Int64
}

func (g *gatedClient) Resolve(ctx context.Context, shard uint64, code string) (shardrpc.Link, error) {
	g.resolves.Add(1)
	return g.Client.Resolve(ctx, shard, code)
}

func (g *gatedClient) ResolveDeadline(deadline time.Time, shard uint64, code string) (shardrpc.Link, error) {
	g.resolves.Add(1)
	return g.Client.ResolveDeadline(deadline, shard, code)
}

func (g *gatedClient) Changes(ctx context.Context, shard, since uint64, wait time.Duration) (shardrpc.Changes, error) {
	if g.cut.Load() {
		return shardrpc.Changes{}, fmt.Errorf("changes of shard %d: cut by the test: %w", shard, shardrpc.ErrUnavailable)
	}
	return g.Client.Changes(ctx, shard, since, wait)
}

// feedCluster starts a 3-node cluster, router r1 (the writer, a plain
// client) and router r2 with a gatedClient, both with cache TTL ttl.
func feedCluster(t *testing.T, ttl time.Duration) (c *nodetest.Cluster, a string, b *Router, bBase string, gate *gatedClient) {
	t.Helper()
	t.Cleanup(func() { waitWorkerCleaners(t) })
	c = nodetest.Start(t, nodetest.Options{Routers: 2})
	c.WaitLeaders()
	cfg := c.Config()
	_, a, _ = startClusterRouter(t, cfg, "r1", Options{DisableClicks: true, CacheTTL: ttl})
	gate = &gatedClient{Client: shardrpc.NewClient(cfg, shardrpc.ClientOptions{IdleConnTimeout: 100 * time.Millisecond})}
	b, bBase, _ = startRouterWith(t, cfg, "r2", gate, gate.Client.Close, Options{DisableClicks: true, CacheTTL: ttl})
	waitFeeds(t, b)
	return c, a, b, bBase, gate
}

// createAt creates a link of url through the router at base.
func createAt(t *testing.T, base, url string) string {
	t.Helper()
	resp, err := httpClient.Post(base+"/api/v1/links", "application/json", stringsReader(fmt.Sprintf(`{"url": %q}`, url)))
	if err != nil {
		t.Fatal(err)
	}
	var cr created
	if err := decodeBody(resp, &cr); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create %s: %d %v", url, resp.StatusCode, err)
	}
	return cr.Code
}

// send sends method path to base and returns the status.
func send(t *testing.T, method, base, path, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, base+path, stringsReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// redirectsTo asserts a 301 to url at base.
func redirectsTo(t *testing.T, base, code, url string) {
	t.Helper()
	if st, loc, err := get(base, "/"+code); err != nil || st != http.StatusMovedPermanently || loc != url {
		t.Fatalf("GET %s/%s: %d %q %v, want 301 to %s", base, code, st, loc, err, url)
	}
}

// TestFeedPropagatesChanges: with a one-minute cache TTL, a delete or an
// edit through router A reaches router B's cache within seconds through
// the change feed, also after the shard's leader changed; in between, B
// answers from its cache without asking the shards.
func TestFeedPropagatesChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c, a, b, bBase, gate := feedCluster(t, time.Minute)
	rg, err := c.Config().Ring()
	if err != nil {
		t.Fatal(err)
	}
	// within: the feed's bound here, far below the TTL.
	const within = 5 * time.Second

	del := createAt(t, a, "https://example.com/feed/delete")
	edit := createAt(t, a, "https://example.com/feed/edit")
	redirectsTo(t, bBase, del, "https://example.com/feed/delete")
	redirectsTo(t, bBase, edit, "https://example.com/feed/edit")
	before := gate.resolves.Load()
	for range 20 {
		redirectsTo(t, bBase, del, "https://example.com/feed/delete")
		redirectsTo(t, bBase, edit, "https://example.com/feed/edit")
	}
	if n := gate.resolves.Load() - before; n != 0 {
		t.Fatalf("router B resolved %d times for cached links", n)
	}

	if st := send(t, http.MethodDelete, a, "/api/v1/links/"+del, ""); st != http.StatusNoContent {
		t.Fatalf("delete: %d", st)
	}
	testutil.EventuallyEvery(t, 20*time.Millisecond, within, "router B to stop redirecting the deleted link", func() error {
		if st, _, err := get(bBase, "/"+del); err != nil || st != http.StatusGone {
			return fmt.Errorf("GET: %d %v", st, err)
		}
		return nil
	})
	if st := send(t, http.MethodPatch, a, "/api/v1/links/"+edit, `{"url": "https://example.com/feed/edited"}`); st != http.StatusOK {
		t.Fatalf("edit: %d", st)
	}
	testutil.EventuallyEvery(t, 20*time.Millisecond, within, "router B to redirect to the edited target", func() error {
		if st, loc, err := get(bBase, "/"+edit); err != nil || st != http.StatusMovedPermanently || loc != "https://example.com/feed/edited" {
			return fmt.Errorf("GET: %d %q %v", st, loc, err)
		}
		return nil
	})

	// The leader of the deleted link's shard stops; the feed moves to the
	// new leader and goes on.
	shard := rg.ShardOf(rg.PartitionOfCode(del))
	var later string
	for i := 0; ; i++ {
		later = createAt(t, a, fmt.Sprintf("https://example.com/feed/later/%d", i))
		if rg.ShardOf(rg.PartitionOfCode(later)) == shard {
			break
		}
	}
	mustLocation(t, bBase, later) // cached at B
	old := c.WaitLeader(shard)
	c.StopNode(old)
	testutil.EventuallyEvery(t, 20*time.Millisecond, 30*time.Second, "a new leader", func() error {
		if l := c.Leader(shard); l == "" || l == old {
			return fmt.Errorf("leader %q", l)
		}
		return nil
	})
	resets := b.FeedStatus()
	if st := send(t, http.MethodDelete, a, "/api/v1/links/"+later, ""); st != http.StatusNoContent {
		t.Fatalf("delete after the leader change: %d", st)
	}
	testutil.EventuallyEvery(t, 20*time.Millisecond, within, "router B to stop redirecting the link deleted at the new leader", func() error {
		if st, _, err := get(bBase, "/"+later); err != nil || st != http.StatusGone {
			return fmt.Errorf("GET: %d %v", st, err)
		}
		return nil
	})
	for i, f := range b.FeedStatus() {
		if f.Resets != resets[i].Resets {
			t.Errorf("shard %d's feed reset on the leader change (%d -> %d resets): the followers keep the changes", f.Shard, resets[i].Resets, f.Resets)
		}
	}
}

// mustLocation returns the Location of a redirect of code at base.
func mustLocation(t *testing.T, base, code string) string {
	t.Helper()
	st, loc, err := get(base, "/"+code)
	if err != nil || st != http.StatusMovedPermanently {
		t.Fatalf("GET %s/%s: %d %v", base, code, st, err)
	}
	return loc
}

// TestFeedDownStopsServing: with a short cache TTL, router B keeps its
// cached link past the TTL while the feed answers; once the feed is cut
// it stops serving the cached link within the TTL of the last answer (it
// asks the shard again, as without feeds), and once the feed is back the
// link is served from the cache again.
func TestFeedDownStopsServing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	const ttl = 2 * time.Second
	_, a, b, bBase, gate := feedCluster(t, ttl)
	code := createAt(t, a, "https://example.com/feed/down")
	redirectsTo(t, bBase, code, "https://example.com/feed/down")
	// Served from the cache for twice the TTL: no resolve.
	before := gate.resolves.Load()
	for end := time.Now().Add(2 * ttl); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		redirectsTo(t, bBase, code, "https://example.com/feed/down")
	}
	if n := gate.resolves.Load() - before; n != 0 {
		t.Fatalf("router B resolved %d times while its feed answered", n)
	}

	gate.cut.Store(true)
	cutAt := time.Now()
	// The last answer was sent at most a poll's wait before the cut.
	bound := ttl + b.feedWait() + time.Second
	testutil.EventuallyEvery(t, 20*time.Millisecond, bound, "router B to stop serving the cached link", func() error {
		n := gate.resolves.Load()
		redirectsTo(t, bBase, code, "https://example.com/feed/down")
		if gate.resolves.Load() == n {
			return fmt.Errorf("still served from the cache %v after the cut", time.Since(cutAt))
		}
		return nil
	})

	gate.cut.Store(false)
	// The entry stored while the feed was down is on its own TTL; after
	// it, the link is feed-backed again and served without resolves.
	testutil.EventuallyEvery(t, 50*time.Millisecond, 4*ttl+5*time.Second, "router B to serve the link from its cache again", func() error {
		n := gate.resolves.Load()
		for end := time.Now().Add(ttl + 500*time.Millisecond); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			redirectsTo(t, bBase, code, "https://example.com/feed/down")
		}
		if d := gate.resolves.Load() - n; d != 0 {
			return fmt.Errorf("%d resolves in a TTL", d)
		}
		return nil
	})
}
