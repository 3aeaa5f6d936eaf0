package router

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/shardrpc"
)

// TestCacheRefreshAheadWindow: Get reports cacheHitRefresh exactly in the
// last 1/refreshAheadDiv of an entry's TTL, a plain hit before it and a
// miss from the TTL on.
func TestCacheRefreshAheadWindow(t *testing.T) {
	const ttl = 10 * time.Second
	c := newTargetCache(100, ttl)
	const t0 = int64(1_000_000)
	c.Put("abc1234", "https://example.com/", 0, 0, t0)
	window := ttl.Milliseconds() / refreshAheadDiv
	for _, tc := range []struct {
		at   int64
		want cacheState
	}{
		{t0, cacheHit},
		{t0 + ttl.Milliseconds() - window - 1, cacheHit},
		{t0 + ttl.Milliseconds() - window, cacheHitRefresh},
		{t0 + ttl.Milliseconds() - 1, cacheHitRefresh},
		{t0 + ttl.Milliseconds(), cacheMiss},
	} {
		if _, _, st := c.Get([]byte("abc1234"), tc.at); st != tc.want {
			t.Errorf("Get at t0+%d ms: state %d, want %d", tc.at-t0, st, tc.want)
		}
	}
	// An expired link is never a hit, in the window or not.
	c.Put("exp1234", "https://example.com/", 0, t0+ttl.Milliseconds()-window, t0)
	if _, _, st := c.Get([]byte("exp1234"), t0+ttl.Milliseconds()-window); st != cacheExpired {
		t.Errorf("expired link in the window: state %d, want cacheExpired", st)
	}
}

// refreshRouter returns a handler-driven router with a 1 h cache TTL and
// one link in the fake shards, whose cache entry it stores so that now is
// in the middle of the entry's refresh-ahead window.
func refreshRouter(t *testing.T) (*Router, *fakeShards, string) {
	t.Helper()
	r, fake, code := newHandlerRouter(t) // Options.CacheTTL unset: the config's
	r.cache = newTargetCache(1000, time.Hour)
	t.Cleanup(func() {
		if err := r.closeRefresh(context.Background()); err != nil {
			t.Error(err)
		}
	})
	putInWindow(r, fake, code)
	return r, fake, code
}

// putInWindow caches code's link as stored at a time that puts now in the
// middle of the entry's refresh-ahead window.
func putInWindow(r *Router, fake *fakeShards, code string) {
	ttl := r.cache.ttlMs
	fake.mu.Lock()
	l := fake.links[code]
	fake.mu.Unlock()
	r.cache.Put(code, l.URL, 0, 0, time.Now().UnixMilli()-ttl+r.cache.refreshAheadMs/2)
}

// getCode serves GET /code through the router's handler.
func getCode(r *Router, code string) *fasthttp.RequestCtx {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(fasthttp.MethodGet)
	ctx.Request.SetRequestURI("/" + code)
	r.handle(&ctx)
	return &ctx
}

// waitRefreshes waits (10 s at most) until no refresh is in flight.
func waitRefreshes(t *testing.T, r *Router) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.refresh.mu.Lock()
		n := len(r.refresh.pending)
		r.refresh.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d refreshes still in flight after 10 s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRedirectRefreshesAhead: a cached redirect in the last part of its
// entry's TTL is answered from the cache at once, and the entry is
// revalidated in the background, so it is fresh for a whole TTL again.
func TestRedirectRefreshesAhead(t *testing.T) {
	r, fake, code := refreshRouter(t)
	if _, _, st := r.cache.Get([]byte(code), time.Now().UnixMilli()); st != cacheHitRefresh {
		t.Fatalf("entry not in its refresh window: state %d", st)
	}
	ctx := getCode(r, code)
	if ctx.Response.StatusCode() != 301 || string(ctx.Response.Header.Peek("Location")) != "https://example.com/hot/path?q=1" {
		t.Fatalf("redirect in the window: %d %q", ctx.Response.StatusCode(), ctx.Response.Header.Peek("Location"))
	}
	waitRefreshes(t, r)
	if _, resolves := fake.counts(); resolves != 1 {
		t.Fatalf("%d resolves, want the one background refresh", resolves)
	}
	// Fresh again for a whole TTL: a plain hit now, and still one past the
	// old entry's end.
	now := time.Now().UnixMilli()
	if _, _, st := r.cache.Get([]byte(code), now); st != cacheHit {
		t.Fatalf("after the refresh: state %d, want a plain hit", st)
	}
	if _, _, st := r.cache.Get([]byte(code), now+r.cache.refreshAheadMs); st != cacheHit {
		t.Fatalf("after the refresh, past the old freshness: state %d, want a hit", st)
	}
	// Plain hits start no refresh.
	for range 100 {
		getCode(r, code)
	}
	waitRefreshes(t, r)
	if _, resolves := fake.counts(); resolves != 1 {
		t.Fatalf("%d resolves after plain hits, want 1", resolves)
	}
}

// TestRefreshAheadOnePerCode: hits that arrive while a code's refresh is
// in flight do not start another.
func TestRefreshAheadOnePerCode(t *testing.T) {
	r, fake, code := refreshRouter(t)
	fake.mu.Lock() // the refresh blocks in Resolve until the hits are served
	for range 200 {
		if ctx := getCode(r, code); ctx.Response.StatusCode() != 301 {
			fake.mu.Unlock()
			t.Fatalf("redirect during a refresh: %d", ctx.Response.StatusCode())
		}
	}
	fake.mu.Unlock()
	waitRefreshes(t, r)
	if _, resolves := fake.counts(); resolves != 1 {
		t.Fatalf("%d resolves for 200 hits in the window, want 1", resolves)
	}
}

// TestRefreshAheadDeletedLink: a refresh that finds the link deleted drops
// the entry, so the next redirect asks the shard and answers 410.
func TestRefreshAheadDeletedLink(t *testing.T) {
	r, fake, code := refreshRouter(t)
	fake.set(func(f *fakeShards) { f.gone[code] = true; delete(f.links, code) })
	if ctx := getCode(r, code); ctx.Response.StatusCode() != 301 {
		// Within the TTL the cached entry is still served: the documented bound.
		t.Fatalf("redirect before the refresh: %d", ctx.Response.StatusCode())
	}
	waitRefreshes(t, r)
	if _, _, st := r.cache.Get([]byte(code), time.Now().UnixMilli()); st != cacheMiss {
		t.Fatalf("deleted link still cached: state %d", st)
	}
	if ctx := getCode(r, code); ctx.Response.StatusCode() != fasthttp.StatusGone {
		t.Fatalf("redirect after the refresh: %d, want 410", ctx.Response.StatusCode())
	}
}

// TestRefreshAheadNotFound: a code unknown at its shard is dropped too.
func TestRefreshAheadNotFound(t *testing.T) {
	r, fake, code := refreshRouter(t)
	fake.set(func(f *fakeShards) { delete(f.links, code) })
	getCode(r, code)
	waitRefreshes(t, r)
	if _, _, st := r.cache.Get([]byte(code), time.Now().UnixMilli()); st != cacheMiss {
		t.Fatalf("unknown code still cached: state %d", st)
	}
}

// TestRefreshAheadFailure: a refresh that fails (no leader, timeout)
// leaves the entry as it was: still served until its TTL ends, never
// longer.
func TestRefreshAheadFailure(t *testing.T) {
	r, fake, code := refreshRouter(t)
	fake.set(func(f *fakeShards) { f.resolveErr = fmt.Errorf("test: %w", shardrpc.ErrUnavailable) })
	getCode(r, code)
	waitRefreshes(t, r)
	now := time.Now().UnixMilli()
	if _, _, st := r.cache.Get([]byte(code), now); st != cacheHitRefresh {
		t.Fatalf("after a failed refresh: state %d, want the entry unchanged", st)
	}
	if _, _, st := r.cache.Get([]byte(code), now+r.cache.refreshAheadMs); st != cacheMiss {
		t.Fatalf("a failed refresh extended the entry: state %d", st)
	}
}

// TestRefreshAheadAfterClose: once the router shuts down, hits start no
// refresh.
func TestRefreshAheadAfterClose(t *testing.T) {
	r, fake, code := refreshRouter(t)
	if err := r.closeRefresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ctx := getCode(r, code); ctx.Response.StatusCode() != 301 {
		t.Fatalf("redirect after close: %d", ctx.Response.StatusCode())
	}
	if _, resolves := fake.counts(); resolves != 0 {
		t.Fatalf("%d resolves after close, want 0", resolves)
	}
}

// TestRefreshCloseHonoursContext: closing waits for a running refresh only
// as long as its context allows.
func TestRefreshCloseHonoursContext(t *testing.T) {
	r, fake, code := refreshRouter(t)
	fake.mu.Lock() // the refresh blocks in Resolve
	getCode(r, code)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := r.closeRefresh(ctx)
	fake.mu.Unlock()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("close with a refresh blocked: %v, want the context's deadline", err)
	}
	if err := r.closeRefresh(context.Background()); err != nil {
		t.Fatalf("close once the refresh ended: %v", err)
	}
}
