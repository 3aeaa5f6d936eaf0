package bench

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"
)

// TestMain checks, after every test, that no goroutine is left. fasthttp's
// client ends its idle-connection cleaner on its own within the harness's
// idle timeout after a run, so the check polls with a deadline. The one
// goroutine ignored is fasthttp's process-wide server clock, started by the
// in-test server, which never ends.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := goleak.Find(goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"))
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintln(os.Stderr, "goroutines left after the tests:", err)
				code = 1
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	os.Exit(code)
}

// testServer is a small in-process stand-in for a router: POST
// /api/v1/links stores a link and answers 201 with its code, GET /{code}
// answers 301 with the link's URL as Location, or 404.
type testServer struct {
	url string
	srv *fasthttp.Server

	// Behaviour knobs, set before the first request.
	redirectAll bool          // every GET path redirects; POST answers 405 (like nginx)
	postStatus  int           // the status of the POSTs that postStatusN picks
	delay       time.Duration // every request waits this long
	stallAfter  time.Duration // the first GET this long after the first one starts a stall
	stallFor    time.Duration // during which every request waits for its end
	// Knobs a test may change between runs.
	postStatusN  atomic.Int64 // every Nth POST answers postStatus instead of 201
	getBadEvery  atomic.Int64 // every Nth GET answers 200 instead of a redirect
	getMissEvery atomic.Int64 // every Nth GET answers 404

	mu        sync.Mutex
	links     map[string]string
	hits      map[string]int64
	stallEnd  time.Time
	firstGet  time.Time
	stalled   bool
	posts     atomic.Int64
	gets      atomic.Int64
	notFounds atomic.Int64
	nextID    atomic.Int64
}

func newTestServer(t *testing.T, configure func(*testServer)) *testServer {
	t.Helper()
	s := &testServer{links: map[string]string{}, hits: map[string]int64{}}
	if configure != nil {
		configure(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s.url = "http://" + ln.Addr().String()
	s.srv = &fasthttp.Server{
		Handler:         s.handle,
		Name:            "bench-test",
		CloseOnShutdown: true,
		// The server's idle-worker cleaner sleeps this long between rounds,
		// also after Shutdown: keep it short so it is gone soon after a test.
		MaxIdleWorkerDuration: 50 * time.Millisecond,
	}
	done := make(chan error, 1)
	go func() { done <- s.srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.srv.Shutdown(); err != nil {
			t.Errorf("shutdown test server: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("test server: %v", err)
		}
	})
	return s
}

func (s *testServer) waitStall() {
	s.mu.Lock()
	end := s.stallEnd
	s.mu.Unlock()
	if d := time.Until(end); d > 0 {
		time.Sleep(d) // the stall being simulated: the server does nothing meanwhile
	}
}

func (s *testServer) handle(ctx *fasthttp.RequestCtx) {
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	s.waitStall()
	path := string(ctx.Path())
	switch {
	case ctx.IsPost() && path == shortenPath:
		n := s.posts.Add(1)
		if s.redirectAll {
			ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
			return
		}
		if k := s.postStatusN.Load(); k > 0 && n%k == 0 {
			ctx.Error(`{"error":{"code":"unavailable","message":"test"}}`, s.postStatus)
			return
		}
		var in struct {
			URL string `json:"url"`
		}
		if err := json.Unmarshal(ctx.PostBody(), &in); err != nil || in.URL == "" {
			ctx.Error(`{"error":{"code":"bad_json","message":"test"}}`, fasthttp.StatusBadRequest)
			return
		}
		code := fmt.Sprintf("%07s", strconv.FormatInt(s.nextID.Add(1), 36))
		s.mu.Lock()
		s.links[code] = in.URL
		s.mu.Unlock()
		out, _ := json.Marshal(map[string]string{
			"code": code, "short_url": s.url + "/" + code, "url": in.URL,
			"created_at": time.Now().UTC().Format(time.RFC3339),
		})
		ctx.SetStatusCode(fasthttp.StatusCreated)
		ctx.SetContentType("application/json")
		ctx.SetBody(out)
	case ctx.IsGet() && len(path) > 1:
		n := s.gets.Add(1)
		if s.stallFor > 0 {
			s.mu.Lock()
			now := time.Now()
			if s.firstGet.IsZero() {
				s.firstGet = now
			}
			if !s.stalled && now.Sub(s.firstGet) >= s.stallAfter {
				s.stalled = true
				s.stallEnd = now.Add(s.stallFor)
			}
			s.mu.Unlock()
			s.waitStall()
		}
		code := path[1:]
		if k := s.getBadEvery.Load(); k > 0 && n%k == 0 {
			ctx.SetStatusCode(fasthttp.StatusOK)
			ctx.SetBodyString("not a redirect")
			return
		}
		if k := s.getMissEvery.Load(); k > 0 && n%k == 0 {
			s.notFounds.Add(1)
			ctx.Error(`{"error":{"code":"not_found","message":"test"}}`, fasthttp.StatusNotFound)
			return
		}
		s.mu.Lock()
		target, ok := s.links[code]
		if ok || s.redirectAll {
			s.hits[code]++
		}
		s.mu.Unlock()
		if s.redirectAll {
			target, ok = "https://example.com/target", true
		}
		if !ok {
			s.notFounds.Add(1)
			ctx.Error(`{"error":{"code":"not_found","message":"test"}}`, fasthttp.StatusNotFound)
			return
		}
		ctx.Response.Header.Set(fasthttp.HeaderLocation, target)
		ctx.SetStatusCode(fasthttp.StatusMovedPermanently)
	default:
		ctx.Error("not found", fasthttp.StatusNotFound)
	}
}

// hitCounts returns a copy of the redirects counted per code.
func (s *testServer) hitCounts() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.hits))
	for k, v := range s.hits {
		out[k] = v
	}
	return out
}
