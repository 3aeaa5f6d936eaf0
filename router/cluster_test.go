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

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/internal/testutil"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
)

// startClusterRouter serves router id of cfg with a real shardrpc client
// and opts on 127.0.0.1:0. stop shuts it down and checks the shutdown (once;
// t.Cleanup calls it too).
func startClusterRouter(t *testing.T, cfg *config.Config, id string, opts Options) (r *Router, base string, stop func()) {
	t.Helper()
	client := shardrpc.NewClient(cfg, shardrpc.ClientOptions{IdleConnTimeout: 100 * time.Millisecond})
	return startRouterWith(t, cfg, id, client, client.Close, opts)
}

// startRouterWith is startClusterRouter with the shard client given;
// closeClient runs after the router stopped.
func startRouterWith(t *testing.T, cfg *config.Config, id string, client ShardClient, closeClient func(), opts Options) (r *Router, base string, stop func()) {
	t.Helper()
	opts.Logger = testLogger(t)
	opts.IdleWorkerTimeout = 50 * time.Millisecond
	r, err := New(cfg, id, client, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Serve(ln) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			httpClient.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.Shutdown(ctx); err != nil {
				t.Errorf("shutdown %s: %v", id, err)
			}
			if err := <-done; err != ErrServerClosed {
				t.Errorf("serve %s: %v", id, err)
			}
			closeClient()
		})
	}
	t.Cleanup(stop)
	return r, "http://" + ln.Addr().String(), stop
}

// startRealRouter serves router id of cfg with default options and returns
// its base URL.
func startRealRouter(t *testing.T, cfg *config.Config, id string) string {
	t.Helper()
	_, base, _ := startClusterRouter(t, cfg, id, Options{})
	return base
}

func get(base, path string) (int, string, error) {
	resp, err := httpClient.Get(base + path)
	if err != nil {
		return 0, "", err
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location"), nil
}

// TestRouterOnRealCluster runs routers with the real shard client against
// a real 3-node cluster (Raft over TCP, Pebble, the internal RPC): 200
// creates all redirect, at a router that created them and at one that
// never saw them and caches nothing; after the leader of a shard stops,
// every link still redirects and new links are created.
func TestRouterOnRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	// Registered before the cluster, so it runs after the nodes stopped.
	t.Cleanup(func() { waitWorkerCleaners(t) })
	c := nodetest.Start(t, nodetest.Options{Routers: 2, RPCSecret: "router-test-rpc", CodeSecret: "router-test-code"})
	leaders := c.WaitLeaders()
	cfg := *c.Config()
	cfg.Routers = append([]config.Router(nil), cfg.Routers...)
	zero := 0
	cfg.Routers[1].CacheSize = &zero
	a := startRealRouter(t, &cfg, "r1")
	b := startRealRouter(t, &cfg, "r2")
	for _, base := range []string{a, b} {
		testutil.EventuallyEvery(t, 20*time.Millisecond, 30*time.Second, base+"/readyz", func() error {
			if st, _, err := get(base, "/readyz"); err != nil || st != 200 {
				return fmt.Errorf("status %d, %v", st, err)
			}
			return nil
		})
	}

	const n = 200
	type link struct{ code, url string }
	links := make([]link, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				u := fmt.Sprintf("https://example.com/real/%d", i)
				body := fmt.Sprintf(`{"url": %q}`, u)
				if i%10 == 0 {
					body = fmt.Sprintf(`{"url": %q, "alias": "real-alias-%d"}`, u, i)
				}
				resp, err := httpClient.Post(a+"/api/v1/links", "application/json", stringsReader(body))
				if err != nil {
					errs <- err
					return
				}
				var cr created
				err = decodeBody(resp, &cr)
				if err != nil || resp.StatusCode != http.StatusCreated {
					errs <- fmt.Errorf("create %d: status %d: %v", i, resp.StatusCode, err)
					return
				}
				links[i] = link{cr.Code, u}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, l := range links {
		if seen[l.code] {
			t.Fatalf("code %q given twice", l.code)
		}
		seen[l.code] = true
		if i%10 == 0 && l.code != fmt.Sprintf("real-alias-%d", i) {
			t.Fatalf("link %d has code %q, want its alias", i, l.code)
		}
	}
	checkAll := func(what string) {
		t.Helper()
		for _, base := range []string{a, b} {
			for _, l := range links {
				st, loc, err := get(base, "/"+l.code)
				if err != nil || st != http.StatusMovedPermanently || loc != l.url {
					t.Fatalf("%s: GET %s/%s: %d %q %v, want 301 to %s", what, base, l.code, st, loc, err, l.url)
				}
			}
		}
	}
	checkAll("after the creates")
	if st, _, err := get(b, "/zzzzzzz"); err != nil || st != http.StatusNotFound {
		t.Fatalf("unknown code: %d %v", st, err)
	}

	// The leader of shard 1 stops: reads and writes move to the new one.
	old := leaders[1]
	c.StopNode(old)
	testutil.EventuallyEvery(t, 20*time.Millisecond, 30*time.Second, "a new leader of shard 1", func() error {
		if l := c.Leader(1); l == "" || l == old {
			return fmt.Errorf("leader %q", l)
		}
		return nil
	})
	checkAll("after the leader of shard 1 stopped")
	for i := 0; i < 30; i++ {
		body := fmt.Sprintf(`{"url": "https://example.com/after/%d"}`, i)
		resp, err := httpClient.Post(b+"/api/v1/links", "application/json", stringsReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var cr created
		if err := decodeBody(resp, &cr); err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("create after the leader change: %d %v", resp.StatusCode, err)
		}
		if st, loc, err := get(a, "/"+cr.Code); err != nil || st != http.StatusMovedPermanently || loc != fmt.Sprintf("https://example.com/after/%d", i) {
			t.Fatalf("new link at the other router: %d %q %v", st, loc, err)
		}
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// decodeBody reads and closes resp's body and decodes it into v when the
// status is a success.
func decodeBody(resp *http.Response, v any) error {
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("status %d: %s", resp.StatusCode, raw)
	}
	return json.Unmarshal(raw, v)
}

// waitWorkerCleaners waits until the worker-pool cleaners of stopped
// fasthttp servers have exited. A cleaner notices its server stopped only
// after its server's MaxIdleWorkerDuration (fasthttp's default is 10 s;
// the nodes' RPC servers use the default), so goleak would report them as
// leaked although they do end.
func waitWorkerCleaners(t testing.TB) {
	testutil.EventuallyEvery(t, 20*time.Millisecond, 15*time.Second, "fasthttp worker-pool cleaners to exit", func() error {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if n := strings.Count(stacks, "fasthttp.(*workerPool).Start.func2"); n > 0 {
			return fmt.Errorf("%d still running", n)
		}
		return nil
	})
}
