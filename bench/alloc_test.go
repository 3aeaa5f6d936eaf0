package bench

import (
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// startMinimalServer serves a fixed 301 for GET and a fixed 201 for POST,
// without allocating, so that allocation counts measure the harness.
func startMinimalServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	created := []byte(`{"code":"aB3dE5g","short_url":"http://x/aB3dE5g","url":"https://example.com/","created_at":"2026-11-27T06:00:00Z"}`)
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if ctx.IsPost() {
				ctx.SetStatusCode(fasthttp.StatusCreated)
				ctx.SetBody(created)
				return
			}
			ctx.Response.Header.Set(fasthttp.HeaderLocation, "https://example.com/target")
			ctx.SetStatusCode(fasthttp.StatusMovedPermanently)
		},
		MaxIdleWorkerDuration: 50 * time.Millisecond,
		CloseOnShutdown:       true,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// newTestRunner returns a runner with one worker against url, as Run would
// set it up, for driving the request path directly.
func newTestRunner(t testing.TB, url string, w Workload) (*runner, *worker) {
	t.Helper()
	cfg := Config{Target: url, Workload: w, Concurrency: 1, CodesFrom: CodesNone, Links: 1000}.withDefaults()
	tgt, err := parseTarget(url)
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{cfg: cfg, target: tgt, client: newClient(tgt, 1, time.Second), codes: synthCodes(1000, 1),
		seed: 1, runID: "alloc", stopCh: make(chan struct{})}
	t.Cleanup(r.client.CloseIdleConnections)
	r.uses[opShorten], r.uses[opRedirect] = true, true
	r.base = time.Now()
	r.stopAtNs.Store(1 << 62)
	return r, newWorker(r, 0)
}

// TestRequestPathDoesNotAllocate checks that a request of each kind, with
// its recording, allocates nothing once the buffers are warm (the server
// above allocates nothing either).
func TestRequestPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	url := startMinimalServer(t)
	r, w := newTestRunner(t, url, WorkloadMixed)
	for _, o := range []op{opRedirect, opShorten} {
		step := func() {
			start := r.now()
			ek, status := w.do(o)
			if ek != ekNone {
				t.Fatalf("%s: error kind %q status %d", opNames[o], errKindNames[ek], status)
			}
			w.record(o, start, r.now(), ek, status)
		}
		for range 100 {
			step()
		}
		if n := testing.AllocsPerRun(2000, step); n >= 0.5 {
			t.Errorf("%s: %.2f allocations per request", opNames[o], n)
		}
	}
}

// BenchmarkRedirectRequest measures one redirect through the harness's
// request path against an in-process server: the generator's own cost
// bounds what it can measure.
func BenchmarkRedirectRequest(b *testing.B) {
	url := startMinimalServer(b)
	r, w := newTestRunner(b, url, WorkloadRedirect)
	b.ReportAllocs()
	for b.Loop() {
		start := r.now()
		ek, status := w.do(opRedirect)
		w.record(opRedirect, start, r.now(), ek, status)
	}
}
