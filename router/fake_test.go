package router

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/ring"
	"github.com/linkraft/linkraft/shardrpc"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp's process-wide Date header ticker, started by the first
		// server and never stopped.
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	)
}

// createCall is one Create the fake received.
type createCall struct {
	shard uint64
	req   shardrpc.CreateRequest
}

// fakeShards is an in-memory ShardClient: each shard a map of links, codes
// allocated from the partition's ID range like the real allocator. It
// records every call, and a test can make the next calls fail.
type fakeShards struct {
	ring *ring.Ring

	mu         sync.Mutex
	links      map[string]shardrpc.Link
	gone       map[string]bool // deleted codes (tombstones; see lifecycle_test.go)
	shardOf    map[string]uint64
	next       map[uint32]uint64
	byURL      map[string]string
	creates    []createCall
	resolves   []string
	createErr  error
	resolveErr error
	statusErr  map[uint64]error
	panicOn    string
	listErr    error
	listScan   int // > 0: List stops after this many links with a frontier
	now        int64
}

func newFakeShards(r *ring.Ring) *fakeShards {
	return &fakeShards{
		ring:      r,
		links:     map[string]shardrpc.Link{},
		gone:      map[string]bool{},
		shardOf:   map[string]uint64{},
		next:      map[uint32]uint64{},
		byURL:     map[string]string{},
		statusErr: map[uint64]error{},
		now:       time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC).UnixMilli(),
	}
}

func (f *fakeShards) Create(_ context.Context, shard uint64, req shardrpc.CreateRequest) (shardrpc.Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates = append(f.creates, createCall{shard: shard, req: req})
	if f.panicOn != "" && strings.Contains(req.URL, f.panicOn) {
		panic("fake shard: planned panic")
	}
	if f.createErr != nil {
		return shardrpc.Link{}, f.createErr
	}
	if want := f.ring.ShardOf(req.Partition); want != shard {
		return shardrpc.Link{}, fmt.Errorf("partition %d sent to shard %d, owner %d: %w", req.Partition, shard, want, shardrpc.ErrWrongShard)
	}
	if req.Reuse && req.Alias == "" {
		if code, ok := f.byURL[req.Owner+"\x00"+req.URL]; ok {
			l := f.links[code]
			l.Created = false
			return l, nil
		}
	}
	code := req.Alias
	if code != "" {
		if _, ok := f.links[code]; ok || f.gone[code] {
			return shardrpc.Link{}, fmt.Errorf("alias %q: %w", code, shardrpc.ErrAliasTaken)
		}
	} else {
		codec := f.ring.Codec()
		lo, _ := codec.Range(req.Partition)
		for {
			code = codec.Encode(lo + f.next[req.Partition])
			f.next[req.Partition]++
			if _, ok := f.links[code]; !ok && !f.gone[code] {
				break
			}
		}
	}
	l := shardrpc.Link{Code: code, URL: req.URL, CreatedAtMs: f.now, Alias: req.Alias != "", Created: true,
		ExpiresAtMs: req.ExpiresAtMs, MaxClicks: req.MaxClicks,
		Owner: req.Owner, Title: req.Title, Tags: req.Tags, RedirectStatus: req.RedirectStatus}
	f.links[code] = l
	f.shardOf[code] = shard
	if _, ok := f.byURL[req.Owner+"\x00"+req.URL]; !ok && req.Alias == "" {
		f.byURL[req.Owner+"\x00"+req.URL] = code
	}
	return l, nil
}

func (f *fakeShards) Resolve(_ context.Context, shard uint64, code string) (shardrpc.Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resolves = append(f.resolves, code)
	if f.resolveErr != nil {
		return shardrpc.Link{}, f.resolveErr
	}
	if f.gone[code] {
		return shardrpc.Link{}, fmt.Errorf("code %q: %w", code, shardrpc.ErrGone)
	}
	l, ok := f.links[code]
	if !ok {
		return shardrpc.Link{}, fmt.Errorf("code %q: %w", code, shardrpc.ErrNotFound)
	}
	if f.shardOf[code] != shard {
		return shardrpc.Link{}, fmt.Errorf("code %q asked at shard %d, stored at %d: %w", code, shard, f.shardOf[code], shardrpc.ErrNotFound)
	}
	l.Created = false
	return l, nil
}

func (f *fakeShards) Status(_ context.Context, shard uint64) (shardrpc.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.statusErr[shard]; err != nil {
		return shardrpc.Status{}, err
	}
	return shardrpc.Status{Shard: shard, NodeID: "n1", State: "Leader", LeaderID: "n1"}, nil
}

func (f *fakeShards) counts() (creates, resolves int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.creates), len(f.resolves)
}

func (f *fakeShards) lastCreate() createCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creates[len(f.creates)-1]
}

func (f *fakeShards) set(fn func(f *fakeShards)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// testConfig is the default topology with a test secret, partitions small
// enough to be quick, and router r1 on base URL http://short.test.
func testConfig(t testing.TB, cacheSize int) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Cluster.CodeSecret = "router-test-secret"
	cfg.Cluster.Partitions = 64
	cfg.Routers[0].BaseURL = "http://short.test"
	cfg.Routers[0].CacheSize = &cacheSize
	cfg.Routers = append(cfg.Routers, config.Router{ID: "r2", Listen: "127.0.0.1:8081", BaseURL: "https://s.example:8443"})
	cfg.ApplyDefaults()
	return cfg
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testRouter is a Router with a fake shard client, serving on 127.0.0.1:0.
type testRouter struct {
	*Router
	fake *fakeShards
	base string
}

func startRouter(t *testing.T, cfg *config.Config) *testRouter {
	t.Helper()
	rg, err := cfg.Ring()
	if err != nil {
		t.Fatal(err)
	}
	fake := newFakeShards(rg)
	r, err := New(cfg, "r1", fake, Options{Logger: testLogger(t), IdleWorkerTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Serve(ln) }()
	t.Cleanup(func() {
		httpClient.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != ErrServerClosed {
			t.Errorf("serve returned %v, want ErrServerClosed", err)
		}
	})
	return &testRouter{Router: r, fake: fake, base: "http://" + ln.Addr().String()}
}

// httpClient does not follow redirects: the tests look at them.
var httpClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (tr *testRouter) do(t *testing.T, method, path, contentType, body string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, tr.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(raw)}
}

func (tr *testRouter) post(t *testing.T, body string) answer {
	t.Helper()
	return tr.do(t, http.MethodPost, "/api/v1/links", "application/json", body)
}
