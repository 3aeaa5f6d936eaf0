package router

import (
	"github.com/valyala/fasthttp"

	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linkraft/linkraft/internal/testutil"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
)

// Delete implements ShardClient for the fake: the code keeps a tombstone.
func (f *fakeShards) Delete(_ context.Context, shard uint64, code string) (shardrpc.DeleteResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone[code] {
		return shardrpc.DeleteResult{}, fmt.Errorf("code %q: %w", code, shardrpc.ErrGone)
	}
	if _, ok := f.links[code]; !ok || f.shardOf[code] != shard {
		return shardrpc.DeleteResult{}, fmt.Errorf("code %q: %w", code, shardrpc.ErrNotFound)
	}
	delete(f.links, code)
	f.gone[code] = true
	return shardrpc.DeleteResult{}, nil
}

// get and put are the cache's Get and Put at the current time, without an
// expiry: the shape the cache tests use.
func (c *targetCache) get(code []byte) (string, bool) {
	t, _, st := c.Get(code, time.Now().UnixMilli())
	return t, st == cacheHit
}

func (c *targetCache) put(code, target string) { c.Put(code, target, 0, 0, time.Now().UnixMilli()) }

func TestDeleteLink(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	c := decode[created](t, tr.post(t, `{"url": "https://example.com/to-delete"}`))
	if a := tr.do(t, http.MethodGet, "/"+c.Code, "", ""); a.status != 301 {
		t.Fatalf("redirect before delete: %d", a.status)
	}
	if a := tr.do(t, http.MethodDelete, "/api/v1/links/"+c.Code, "", ""); a.status != http.StatusNoContent || a.body != "" {
		t.Fatalf("delete: %d %q", a.status, a.body)
	}
	// The router that served the delete stops at once, though it had the
	// link cached.
	a := tr.do(t, http.MethodGet, "/"+c.Code, "", "")
	if a.status != http.StatusGone || errorCode(t, a) != codeGone {
		t.Fatalf("redirect after delete: %d %s", a.status, a.body)
	}
	a = tr.do(t, http.MethodGet, "/"+c.Code, "", "", "Accept", "text/html,application/xhtml+xml")
	if a.status != http.StatusGone || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") || !strings.Contains(a.body, "Link gone") {
		t.Fatalf("browser redirect after delete: %d %q %q", a.status, a.header.Get("Content-Type"), a.body)
	}
	for _, path := range []string{"/api/v1/links/" + c.Code, "/api/v1/links/" + c.Code + "/stats"} {
		if a := tr.do(t, http.MethodGet, path, "", ""); a.status != http.StatusGone && !(a.status == 404 && strings.HasSuffix(path, "/stats")) {
			t.Fatalf("GET %s after delete: %d %s", path, a.status, a.body)
		}
	}
	if a := tr.do(t, http.MethodDelete, "/api/v1/links/"+c.Code, "", ""); a.status != http.StatusGone || errorCode(t, a) != codeGone {
		t.Fatalf("second delete: %d %s", a.status, a.body)
	}
	// Unknown codes and paths that cannot be codes are 404 JSON.
	for _, code := range []string{"zzzzzzz", "no.such", "api"} {
		if a := tr.do(t, http.MethodDelete, "/api/v1/links/"+code, "", ""); a.status != 404 || errorCode(t, a) != codeNotFound {
			t.Fatalf("delete %s: %d %s", code, a.status, a.body)
		}
	}
	if a := tr.do(t, http.MethodDelete, "/api/v1/links/"+c.Code+"/stats", "", ""); a.status != 405 || a.header.Get("Allow") != allowGetHead {
		t.Fatalf("DELETE of stats: %d %q", a.status, a.header.Get("Allow"))
	}
	if a := tr.do(t, http.MethodPut, "/api/v1/links/"+c.Code, "", ""); a.status != 405 || a.header.Get("Allow") != allowLink {
		t.Fatalf("PUT of a link: %d %q", a.status, a.header.Get("Allow"))
	}
	// A deleted alias is never given out again.
	tr.post(t, `{"url": "https://example.com/a", "alias": "deleted-alias"}`)
	if a := tr.do(t, http.MethodDelete, "/api/v1/links/deleted-alias", "", ""); a.status != 204 {
		t.Fatalf("delete alias: %d", a.status)
	}
	if a := tr.post(t, `{"url": "https://example.com/a", "alias": "deleted-alias"}`); a.status != http.StatusConflict {
		t.Fatalf("re-create deleted alias: %d %s", a.status, a.body)
	}
}

func TestCacheTTLAndInvalidate(t *testing.T) {
	c := newTargetCache(16, time.Second)
	const now = 1_000_000
	c.Put("a", "ta", 0, 0, now)
	c.Put("b", "tb", 0, now+500, now)
	c.Put("c", "tc", 0, 0, now)
	if v, _, st := c.Get([]byte("a"), now+899); st != cacheHit || v != "ta" {
		t.Fatalf("fresh entry: %q %v", v, st)
	}
	// In the last tenth of the TTL the entry is still served, flagged for
	// a refresh ahead (refresh.go).
	if v, _, st := c.Get([]byte("a"), now+999); st != cacheHitRefresh || v != "ta" {
		t.Fatalf("fresh entry in its refresh window: %q %v", v, st)
	}
	if _, _, st := c.Get([]byte("a"), now+1000); st != cacheMiss {
		t.Fatalf("entry past its TTL: %v, want a miss", st)
	}
	if _, _, st := c.Get([]byte("b"), now+499); st != cacheHit {
		t.Fatalf("before expiry: %v", st)
	}
	if _, _, st := c.Get([]byte("b"), now+500); st != cacheExpired {
		t.Fatalf("at expiry: %v, want expired", st)
	}
	// A new Put refreshes.
	c.Put("a", "ta", 0, 0, now+1000)
	if _, _, st := c.Get([]byte("a"), now+1500); st != cacheHit {
		t.Fatalf("refreshed entry: %v", st)
	}
	// Invalidate moves the last entry into the hole; the rest stays.
	c.Invalidate("a")
	c.Invalidate("a")
	c.Invalidate("never")
	if _, _, st := c.Get([]byte("a"), now); st != cacheMiss || c.Len() != 2 {
		t.Fatalf("after invalidate: %v, %d entries", st, c.Len())
	}
	if v, _, st := c.Get([]byte("c"), now); st != cacheHit || v != "tc" {
		t.Fatalf("moved entry: %q %v", v, st)
	}
	for i := 0; i < 40; i++ { // fill past the limit: eviction still works
		c.Put(fmt.Sprint("k", i), "v", 0, 0, now)
	}
	if n := c.Len(); n > 16 {
		t.Fatalf("%d entries", n)
	}
	var nilCache *targetCache
	nilCache.Invalidate("a")
}

func statusOf(method, url, body string) (int, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestDeleteOnRealCluster deletes at one router of a real 3-node cluster:
// that router stops redirecting at once, the other (which had the link
// cached) within its cache TTL, and the code is never issued again. A link
// created with a ttl redirects at both routers until its expiry and
// answers 410 from then on.
func TestDeleteOnRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	t.Cleanup(func() { waitWorkerCleaners(t) })
	c := nodetest.Start(t, nodetest.Options{Routers: 2, CodeSecret: "router-delete-code"})
	c.WaitLeaders()
	const ttl = time.Second
	_, a, _ := startClusterRouter(t, c.Config(), "r1", Options{CacheTTL: ttl})
	_, b, _ := startClusterRouter(t, c.Config(), "r2", Options{CacheTTL: ttl})
	for _, base := range []string{a, b} {
		testutil.EventuallyEvery(t, 20*time.Millisecond, 30*time.Second, base+"/readyz", func() error {
			if st, _, err := get(base, "/readyz"); err != nil || st != 200 {
				return fmt.Errorf("status %d, %v", st, err)
			}
			return nil
		})
	}
	var codes []string
	for _, body := range []string{`{"url": "https://example.com/del/1"}`, `{"url": "https://example.com/del/2", "alias": "real-deleted"}`} {
		resp, err := httpClient.Post(a+"/api/v1/links", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var cr created
		if err := decodeBody(resp, &cr); err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("create: %d %v", resp.StatusCode, err)
		}
		codes = append(codes, cr.Code)
	}
	for _, code := range codes {
		// Both routers cache the link.
		for _, base := range []string{a, b} {
			if st, _, err := get(base, "/"+code); err != nil || st != 301 {
				t.Fatalf("redirect %s at %s: %d %v", code, base, st, err)
			}
		}
		if st, err := statusOf(http.MethodDelete, a+"/api/v1/links/"+code, ""); err != nil || st != http.StatusNoContent {
			t.Fatalf("delete %s: %d %v", code, st, err)
		}
		deleted := time.Now()
		if st, _, err := get(a, "/"+code); err != nil || st != http.StatusGone {
			t.Fatalf("redirect of %s at the deleting router: %d %v", code, st, err)
		}
		testutil.EventuallyEvery(t, 20*time.Millisecond, ttl+5*time.Second, "r2 to stop redirecting "+code, func() error {
			if st, _, err := get(b, "/"+code); err != nil || st != http.StatusGone {
				return fmt.Errorf("status %d, %v", st, err)
			}
			return nil
		})
		// The bound: the TTL plus the replication lag of the replica asked
		// (milliseconds here); a generous margin for a loaded machine.
		if took := time.Since(deleted); took > ttl+2*time.Second {
			t.Errorf("r2 served %s for %s after the delete; the bound is %s plus replication lag", code, took, ttl)
		}
	}
	if st, err := statusOf(http.MethodPost, b+"/api/v1/links", `{"url": "https://example.com/del/2", "alias": "real-deleted"}`); err != nil || st != http.StatusConflict {
		t.Fatalf("re-create a deleted alias: %d %v", st, err)
	}
	if st, err := statusOf(http.MethodDelete, b+"/api/v1/links/"+codes[0], ""); err != nil || st != http.StatusGone {
		t.Fatalf("second delete at r2: %d %v", st, err)
	}

	// A link with a ttl: stored with its expiry by the shard, it redirects
	// at both routers until then and answers 410 from then on.
	resp, err := httpClient.Post(a+"/api/v1/links", "application/json", strings.NewReader(`{"url": "https://example.com/ttl", "ttl": "2s"}`))
	if err != nil {
		t.Fatal(err)
	}
	var lr linkResponse
	if err := decodeBody(resp, &lr); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create with ttl: %d %v", resp.StatusCode, err)
	}
	exp, err := time.Parse(time.RFC3339Nano, lr.ExpiresAt)
	if err != nil {
		t.Fatalf("expires_at %q: %v", lr.ExpiresAt, err)
	}
	for _, base := range []string{a, b} {
		if st, _, err := get(base, "/"+lr.Code); err != nil || (st != 301 && time.Now().Before(exp)) {
			t.Fatalf("redirect before expiry at %s: %d %v", base, st, err)
		}
	}
	for _, base := range []string{a, b} {
		testutil.EventuallyEvery(t, 20*time.Millisecond, 10*time.Second, "expiry at "+base, func() error {
			if st, _, err := get(base, "/"+lr.Code); err != nil || st != http.StatusGone {
				return fmt.Errorf("status %d, %v", st, err)
			}
			if time.Now().Before(exp) {
				t.Errorf("410 before the expiry %s", exp)
			}
			return nil
		})
	}
}

func TestCreateLimits(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	for _, tc := range []struct{ body, code string }{
		{`{"url": "https://e.com/", "ttl": "0s"}`, codeInvalidLimits},
		{`{"url": "https://e.com/", "ttl": "-1h"}`, codeInvalidLimits},
		{`{"url": "https://e.com/", "ttl": "87601h"}`, codeInvalidLimits},
		{`{"url": "https://e.com/", "ttl": "soon"}`, codeInvalidLimits},
		{`{"url": "https://e.com/", "ttl": 72}`, codeInvalidJSON},
		{`{"url": "https://e.com/", "expires_at": "2001-01-01T00:00:00Z"}`, codeInvalidLimits},
		{`{"url": "https://e.com/", "expires_at": "2999-01-01T00:00:00Z"}`, codeInvalidLimits},
		{`{"url": "https://e.com/", "expires_at": "tomorrow"}`, codeInvalidLimits},
		{`{"url": "https://e.com/", "expires_at": "2030-01-01T00:00:00Z", "ttl": "1h"}`, codeInvalidLimits},
		{`{"url": "https://e.com/", "max_clicks": 0}`, codeInvalidLimits},
		{`{"url": "https://e.com/", "max_clicks": -3}`, codeInvalidJSON},
		{`{"url": "https://e.com/", "max_clicks": 1.5}`, codeInvalidJSON},
		{`{"url": "https://e.com/", "max_clicks": "5"}`, codeInvalidJSON},
		{`{"url": "https://e.com/", "ttl": "1h", "reuse": true}`, codeInvalidLimits},
	} {
		a := tr.post(t, tc.body)
		if a.status != 400 || errorCode(t, a) != tc.code {
			t.Errorf("%s: %d %s, want 400 %s", tc.body, a.status, a.body, tc.code)
		}
	}
	if creates, _ := tr.fake.counts(); creates != 0 {
		t.Fatalf("%d creates reached the shards", creates)
	}
	before := time.Now()
	a := tr.post(t, `{"url": "https://e.com/", "ttl": "72h", "max_clicks": 10}`)
	if a.status != 201 {
		t.Fatalf("create with limits: %d %s", a.status, a.body)
	}
	var lr linkResponse
	lr = decode[linkResponse](t, a)
	exp, err := time.Parse(time.RFC3339Nano, lr.ExpiresAt)
	if err != nil || exp.Before(before.Add(72*time.Hour-time.Second)) || exp.After(time.Now().Add(72*time.Hour)) || lr.MaxClicks != 10 || lr.Expired {
		t.Fatalf("answer %+v (%v)", lr, err)
	}
	if c := tr.fake.lastCreate(); c.req.ExpiresAtMs != exp.UnixMilli() || c.req.MaxClicks != 10 {
		t.Fatalf("create request %+v", c.req)
	}
	a = tr.post(t, `{"url": "https://e.com/", "expires_at": "2031-05-06T07:08:09+02:00"}`)
	if lr = decode[linkResponse](t, a); a.status != 201 || lr.ExpiresAt != "2031-05-06T05:08:09Z" {
		t.Fatalf("create with expires_at: %d %s", a.status, a.body)
	}
}

// TestExpiredLinkAnswers410 follows a link past its expiry: the cached
// entry stops redirecting at the expiry without asking the shard, and the
// expired hit allocates nothing either.
func TestExpiredLinkAnswers410(t *testing.T) {
	r, fake, _ := newHandlerRouter(t)
	rg := r.ring
	code := "expiring-link"
	p := rg.PartitionOfCode(code)
	exp := time.Now().Add(300 * time.Millisecond).UnixMilli()
	if _, err := fake.Create(context.Background(), rg.ShardOf(p), shardrpc.CreateRequest{Partition: p, URL: "https://example.com/soon", Alias: code, ExpiresAtMs: exp}); err != nil {
		t.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	run := func(accept string) {
		ctx.Request.Reset()
		ctx.Request.Header.SetMethod(fasthttp.MethodGet)
		ctx.Request.SetRequestURI("/" + code)
		if accept != "" {
			ctx.Request.Header.Set("Accept", accept)
		}
		ctx.Response.Reset()
		r.handle(&ctx)
	}
	run("")
	if ctx.Response.StatusCode() != 301 {
		t.Fatalf("before expiry: %d", ctx.Response.StatusCode())
	}
	if allocs := testing.AllocsPerRun(100, func() { run("") }); allocs != 0 && time.Now().UnixMilli() < exp {
		t.Fatalf("cached redirect of an expiring link allocates %.1f", allocs)
	}
	deadline := time.Now().Add(5 * time.Second)
	for run(""); ctx.Response.StatusCode() != 410; run("") {
		if time.Now().After(deadline) {
			t.Fatalf("still %d after the expiry", ctx.Response.StatusCode())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if now := time.Now().UnixMilli(); now < exp {
		t.Fatalf("410 at %d, before the expiry %d", now, exp)
	}
	if !strings.Contains(string(ctx.Response.Body()), `"gone"`) {
		t.Fatalf("JSON body %q", ctx.Response.Body())
	}
	run("text/html")
	if ctx.Response.StatusCode() != 410 || !strings.Contains(string(ctx.Response.Body()), "Link gone") {
		t.Fatalf("browser: %d %q", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	_, resolves := fake.counts()
	if allocs := testing.AllocsPerRun(100, func() { run("") }); allocs != 0 {
		t.Fatalf("expired cached answer allocates %.1f", allocs)
	}
	if _, after := fake.counts(); after != resolves {
		t.Fatalf("%d resolves for an expired cached link", after-resolves)
	}
	// Without a cache entry (another router), the shard's record says it
	// expired: 410 too.
	r.cache.Invalidate(code)
	run("")
	if ctx.Response.StatusCode() != 410 {
		t.Fatalf("uncached expired link: %d", ctx.Response.StatusCode())
	}
}

// TestMaxClicks: once the shard counted max_clicks human clicks, the link
// stops within a flush and a cache TTL.
func TestMaxClicks(t *testing.T) {
	r, fake, _ := newClickRouter(t, Options{CacheTTL: 50 * time.Millisecond})
	code := "limited-link"
	p := r.ring.PartitionOfCode(code)
	if _, err := fake.Create(context.Background(), r.ring.ShardOf(p), shardrpc.CreateRequest{Partition: p, URL: "https://example.com/limited", Alias: code, MaxClicks: 2}); err != nil {
		t.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	run := func() int {
		ctx.Request.Reset()
		ctx.Request.Header.SetMethod(fasthttp.MethodGet)
		ctx.Request.SetRequestURI("/" + code)
		ctx.Request.Header.SetUserAgent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
		ctx.Response.Reset()
		r.handle(&ctx)
		return ctx.Response.StatusCode()
	}
	for i := 0; i < 2; i++ {
		if st := run(); st != 301 {
			t.Fatalf("click %d: %d", i, st)
		}
	}
	fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.FlushClicks(fctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for run() != 410 {
		if time.Now().After(deadline) {
			t.Fatal("the link still redirects after max_clicks clicks were flushed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
