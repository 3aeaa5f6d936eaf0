package router

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/linkraft/linkraft/shardrpc"
)

// newHandlerRouter returns a Router whose handler the test drives directly,
// with one cached link; it returns the link's code.
func newHandlerRouter(t testing.TB) (*Router, *fakeShards, string) {
	t.Helper()
	cfg := testConfig(t, 1000)
	rg, err := cfg.Ring()
	if err != nil {
		t.Fatal(err)
	}
	fake := newFakeShards(rg)
	r, err := New(cfg, "r1", fake, Options{Logger: testLogger(t), IdleWorkerTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	code := rg.Codec().Encode(424242)
	p := rg.PartitionOfCode(code)
	if _, err := fake.Create(context.Background(), rg.ShardOf(p), shardrpc.CreateRequest{Partition: p, URL: "https://example.com/hot/path?q=1", Alias: code}); err != nil {
		t.Fatal(err)
	}
	return r, fake, code
}

func TestRedirectCachedAllocatesNothing(t *testing.T) {
	r, fake, code := newHandlerRouter(t)
	var ctx fasthttp.RequestCtx
	path := "/" + code
	run := func() {
		ctx.Request.Header.SetMethod(fasthttp.MethodGet)
		ctx.Request.SetRequestURI(path)
		ctx.Response.Reset()
		r.handle(&ctx)
	}
	run() // miss: resolves and fills the cache
	if ctx.Response.StatusCode() != 301 || string(ctx.Response.Header.Peek("Location")) != "https://example.com/hot/path?q=1" {
		t.Fatalf("first redirect: %d %q", ctx.Response.StatusCode(), ctx.Response.Header.Peek("Location"))
	}
	allocs := testing.AllocsPerRun(1000, run)
	if ctx.Response.StatusCode() != 301 || string(ctx.Response.Header.Peek("Location")) != "https://example.com/hot/path?q=1" {
		t.Fatalf("cached redirect: %d %q", ctx.Response.StatusCode(), ctx.Response.Header.Peek("Location"))
	}
	if allocs != 0 {
		t.Fatalf("cached redirect allocates %.1f times per request, want 0", allocs)
	}
	if _, resolves := fake.counts(); resolves != 1 {
		t.Fatalf("%d resolves, want 1", resolves)
	}
	// HEAD is as cheap.
	head := func() {
		ctx.Request.Header.SetMethod(fasthttp.MethodHead)
		ctx.Request.SetRequestURI(path)
		ctx.Response.Reset()
		r.handle(&ctx)
	}
	if allocs := testing.AllocsPerRun(1000, head); allocs != 0 {
		t.Fatalf("cached HEAD redirect allocates %.1f times per request, want 0", allocs)
	}
}

func TestNotACodeAllocatesNothing(t *testing.T) {
	r, fake, _ := newHandlerRouter(t)
	var ctx fasthttp.RequestCtx
	run := func() {
		ctx.Request.Header.SetMethod(fasthttp.MethodGet)
		ctx.Request.SetRequestURI("/no.such.thing")
		ctx.Response.Reset()
		r.handle(&ctx)
	}
	run()
	if ctx.Response.StatusCode() != 404 {
		t.Fatalf("status %d", ctx.Response.StatusCode())
	}
	if _, resolves := fake.counts(); resolves != 0 {
		t.Fatalf("%d resolves for a path that is no code", resolves)
	}
}

func BenchmarkRedirectCached(b *testing.B) {
	r, _, code := newHandlerRouter(b)
	path := "/" + code
	var warm fasthttp.RequestCtx
	warm.Request.SetRequestURI(path)
	r.handle(&warm)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		for pb.Next() {
			ctx.Request.Header.SetMethod(fasthttp.MethodGet)
			ctx.Request.SetRequestURI(path)
			ctx.Response.Reset()
			r.handle(&ctx)
		}
	})
}

// BenchmarkRedirectCachedNetHTTP is the twin of BenchmarkRedirectCached on
// net/http: the same cache and lookup, the standard library's request and
// response types.
func BenchmarkRedirectCachedNetHTTP(b *testing.B) {
	r, _, code := newHandlerRouter(b)
	r.cache.put(code, "https://example.com/hot/path?q=1")
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		c := strings.TrimPrefix(req.URL.Path, "/")
		target, ok := r.cache.get([]byte(c))
		if !ok {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Location", target)
		w.WriteHeader(r.redirectStatus)
	})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "/"+code, nil)
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
		}
	})
}

func TestCacheEvictsWithinBound(t *testing.T) {
	c := newTargetCache(100, time.Minute)
	for i := 0; i < 1000; i++ {
		c.put("code"+strconv.Itoa(i), "https://example.com/"+strconv.Itoa(i))
	}
	n := c.Len()
	if n > 100+len(c.parts) || n < 50 {
		t.Fatalf("cache holds %d entries for size 100", n)
	}
	hits := 0
	for i := 0; i < 1000; i++ {
		if got, ok := c.get([]byte("code" + strconv.Itoa(i))); ok {
			hits++
			if got != "https://example.com/"+strconv.Itoa(i) {
				t.Fatalf("code%d -> %q", i, got)
			}
		}
	}
	if hits != n {
		t.Fatalf("%d hits, %d entries", hits, n)
	}
}

func TestCacheClockKeepsReferenced(t *testing.T) {
	c := newTargetCache(16, time.Minute) // one part of 16
	if len(c.parts) != 1 {
		t.Fatalf("%d parts for size 16", len(c.parts))
	}
	for i := 0; i < 16; i++ {
		c.put("k"+strconv.Itoa(i), "v")
	}
	// Reference the first half; the next 8 inserts must evict the other half.
	for i := 0; i < 8; i++ {
		if _, ok := c.get([]byte("k" + strconv.Itoa(i))); !ok {
			t.Fatal("miss")
		}
	}
	for i := 16; i < 24; i++ {
		c.put("k"+strconv.Itoa(i), "v")
	}
	for i := 0; i < 8; i++ {
		if _, ok := c.get([]byte("k" + strconv.Itoa(i))); !ok {
			t.Errorf("referenced k%d evicted", i)
		}
	}
	for i := 8; i < 16; i++ {
		if _, ok := c.get([]byte("k" + strconv.Itoa(i))); ok {
			t.Errorf("unreferenced k%d kept", i)
		}
	}
	// A second Put of a present code replaces its target (an edit).
	c.put("k0", "other")
	if v, _ := c.get([]byte("k0")); v != "other" {
		t.Errorf("k0 -> %q", v)
	}
}

func TestCacheNilAndConcurrent(t *testing.T) {
	var nilCache *targetCache = newTargetCache(0, time.Minute)
	nilCache.put("a", "b")
	if _, ok := nilCache.get([]byte("a")); ok || nilCache.Len() != 0 {
		t.Fatal("disabled cache stores")
	}
	c := newTargetCache(256, time.Minute)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				k := "k" + strconv.Itoa((i*7+g)%600)
				if v, ok := c.get([]byte(k)); ok && v != "v"+k {
					t.Errorf("%s -> %s", k, v)
					return
				}
				c.put(k, "v"+k)
			}
		}()
	}
	wg.Wait()
	if n := c.Len(); n > 256+len(c.parts) {
		t.Fatalf("%d entries", n)
	}
}

// FuzzCreateBody drives POST /api/v1/links with arbitrary bodies: the
// answer is a 201 after one create, or a 4xx with nothing stored; never a
// 5xx or a panic.
func FuzzCreateBody(f *testing.F) {
	for _, s := range []string{
		`{"url": "https://example.com/"}`, `{"url": "https://example.com/", "alias": "my-alias"}`,
		`{"url": "https://example.com/", "reuse": true}`, `{"url": 42}`, `{"url": "javascript:alert(1)"}`,
		`[]`, `null`, `{"url": "https://example.com/"} {}`, `{"url": "http://short.test/x"}`, `{"alias": "api"}`,
		`{"url":"https://ex\u0000ample.com"}`, `{"url": "https://例え.テスト/é"}`,
	} {
		f.Add(s)
	}
	r, fake, _ := newHandlerRouter(f)
	var ctx fasthttp.RequestCtx
	f.Fuzz(func(t *testing.T, body string) {
		before, _ := fake.counts()
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod(fasthttp.MethodPost)
		ctx.Request.SetRequestURI("/api/v1/links")
		ctx.Request.Header.SetContentType("application/json")
		ctx.Request.SetBodyString(body)
		r.handle(&ctx)
		after, _ := fake.counts()
		status := ctx.Response.StatusCode()
		switch {
		case status == 201 || status == 200:
			if after != before+1 {
				t.Fatalf("%d with %d creates", status, after-before)
			}
		case status == 409:
			// a taken alias: asked, refused.
		case status >= 400 && status < 500:
			if after != before {
				t.Fatalf("%d after a create call: %s", status, ctx.Response.Body())
			}
		default:
			t.Fatalf("body %q: status %d %s", body, status, ctx.Response.Body())
		}
	})
}

// BenchmarkRedirectServer measures a cached redirect through the whole
// fasthttp server over an in-memory connection, beside the same with
// net/http (BenchmarkRedirectServerNetHTTP): parsing, routing, the cache,
// writing the answer.
func BenchmarkRedirectServer(b *testing.B) {
	r, _, code := newHandlerRouter(b)
	ln := fasthttputil.NewInmemoryListener()
	done := make(chan error, 1)
	go func() { done <- r.Serve(ln) }()
	b.Cleanup(func() {
		_ = r.Shutdown(context.Background())
		<-done
	})
	c := &fasthttp.HostClient{Addr: "bench", Dial: func(string) (net.Conn, error) { return ln.Dial() }, MaxConns: 64, MaxIdleConnDuration: 50 * time.Millisecond}
	url := "http://bench/" + code
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(url)
		for pb.Next() {
			if err := c.Do(req, resp); err != nil || resp.StatusCode() != 301 {
				b.Errorf("redirect: %d %v", resp.StatusCode(), err)
				return
			}
		}
	})
	b.StopTimer()
	c.CloseIdleConnections()
}

func BenchmarkRedirectServerNetHTTP(b *testing.B) {
	r, _, code := newHandlerRouter(b)
	r.cache.put(code, "https://example.com/hot/path?q=1")
	ln := fasthttputil.NewInmemoryListener()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		target, ok := r.cache.get([]byte(strings.TrimPrefix(req.URL.Path, "/")))
		if !ok {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Location", target)
		w.WriteHeader(r.redirectStatus)
	})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tr := &http.Transport{
		DialContext:         func(context.Context, string, string) (net.Conn, error) { return ln.Dial() },
		MaxIdleConnsPerHost: 64,
	}
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	b.Cleanup(func() {
		tr.CloseIdleConnections()
		_ = srv.Shutdown(context.Background())
		<-done
	})
	url := "http://bench/" + code
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 301 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
