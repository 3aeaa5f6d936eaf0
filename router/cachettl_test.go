package router

import (
	"net/http"
	"testing"
	"time"

	"github.com/linkraft/linkraft/config"
)

// TestCacheTTLFromConfig: cluster.yaml's cache_ttl sets how long a router
// serves a cached link before it asks the shard again; Options.CacheTTL
// overrides it; without either the default holds.
func TestCacheTTLFromConfig(t *testing.T) {
	const ttl = 50 * time.Millisecond
	cfg := testConfig(t, 1000)
	cfg.Cluster.CacheTTL = ttl
	tr := startRouter(t, cfg)
	if tr.opts.CacheTTL != ttl || tr.cache.ttlMs != ttl.Milliseconds() {
		t.Fatalf("router cache TTL %s (%d ms), want the config's %s", tr.opts.CacheTTL, tr.cache.ttlMs, ttl)
	}
	start := time.Now() // before the create, which caches the link
	c := decode[created](t, tr.post(t, `{"url": "https://example.com/ttl-from-config"}`))
	// The create cached the link: the first redirect is a hit.
	if a := tr.do(t, http.MethodGet, "/"+c.Code, "", ""); a.status != 301 {
		t.Fatalf("redirect: %d", a.status)
	}
	// Once the TTL has passed, a redirect asks the shard again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, resolves := tr.fake.counts(); resolves > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no revalidation within 10 s with a cache TTL of %s", ttl)
		}
		time.Sleep(10 * time.Millisecond)
		if a := tr.do(t, http.MethodGet, "/"+c.Code, "", ""); a.status != 301 {
			t.Fatalf("redirect: %d", a.status)
		}
	}
	// Refresh ahead may revalidate in the last 1/refreshAheadDiv of the
	// TTL, never before.
	if elapsed, early := time.Since(start), ttl-ttl/refreshAheadDiv; elapsed < early {
		t.Fatalf("revalidated after %s, before %s (the TTL %s less its refresh-ahead window)", elapsed, early, ttl)
	}

	rg, err := cfg.Ring()
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(cfg, "r1", newFakeShards(rg), Options{CacheTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if r.opts.CacheTTL != time.Hour {
		t.Fatalf("Options.CacheTTL %s did not override the config", r.opts.CacheTTL)
	}
	cfg = testConfig(t, 1000)
	cfg.Cluster.CacheTTL = 0 // a Config built in code without ApplyDefaults
	if r, err = New(cfg, "r1", newFakeShards(rg), Options{}); err != nil {
		t.Fatal(err)
	}
	if r.opts.CacheTTL != config.DefaultCacheTTL {
		t.Fatalf("unset TTL: %s, want the default %s", r.opts.CacheTTL, config.DefaultCacheTTL)
	}
}
