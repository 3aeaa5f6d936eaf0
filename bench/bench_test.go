package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linkraft/linkraft/internal/testutil"
)

// quick returns a short run's configuration against url.
func quick(url string, w Workload) Config {
	return Config{
		Target:           url,
		Workload:         w,
		Concurrency:      4,
		Duration:         250 * time.Millisecond,
		Warmup:           50 * time.Millisecond,
		Timeout:          2 * time.Second,
		Links:            500,
		SetupConcurrency: 16,
		Seed:             42,
	}
}

func mustRun(t *testing.T, cfg Config) *Result {
	t.Helper()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// checkSane checks the numbers every successful run must have.
func checkSane(t *testing.T, res *Result, s *OpStats, name string) {
	t.Helper()
	if s == nil {
		t.Fatalf("%s: no stats", name)
	}
	if s.OK < 20 {
		t.Errorf("%s: only %d successes", name, s.OK)
	}
	if s.Requests != s.OK+s.Errors {
		t.Errorf("%s: requests %d != ok %d + errors %d", name, s.Requests, s.OK, s.Errors)
	}
	l := s.Latency
	if !(l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("%s: percentiles out of order: %+v", name, l)
	}
	if l.Max <= 0 || l.Max > 2_000_000 {
		t.Errorf("%s: max latency %dµs is not plausible", name, l.Max)
	}
	// The upper bound is loose: a loaded machine can fire the end timer late.
	if res.Elapsed < 0.24 || res.Elapsed > 5 {
		t.Errorf("%s: elapsed %.3fs for a 0.25s run", name, res.Elapsed)
	}
	want := float64(s.OK) / res.Elapsed
	if s.Throughput < want*0.99 || s.Throughput > want*1.01 {
		t.Errorf("%s: throughput %.1f, want %.1f", name, s.Throughput, want)
	}
}

func TestShortenWorkload(t *testing.T) {
	srv := newTestServer(t, nil)
	res := mustRun(t, quick(srv.url, WorkloadShorten))
	s := res.Ops["shorten"]
	checkSane(t, res, s, "shorten")
	if s.Errors != 0 {
		t.Errorf("errors: %v", s.ErrorKinds)
	}
	if _, ok := res.Ops["redirect"]; ok {
		t.Error("shorten run reports redirects")
	}
	// Every recorded success made a link with a URL of its own.
	srv.mu.Lock()
	urls := map[string]bool{}
	for _, u := range srv.links {
		urls[u] = true
	}
	n := len(srv.links)
	srv.mu.Unlock()
	if int64(n) < s.OK || len(urls) != n {
		t.Errorf("server has %d links with %d distinct URLs; run counted %d", n, len(urls), s.OK)
	}
}

func TestRedirectWorkloadZipf(t *testing.T) {
	srv := newTestServer(t, nil)
	res := mustRun(t, quick(srv.url, WorkloadRedirect))
	checkSane(t, res, res.Ops["redirect"], "redirect")
	if res.Setup == nil || res.Setup.Created != 500 || res.Links != 500 {
		t.Fatalf("setup %+v, links %d; want 500 created", res.Setup, res.Links)
	}
	if e := res.Total.Errors; e != 0 || srv.notFounds.Load() != 0 {
		t.Errorf("errors %v, server 404s %d", res.Total.ErrorKinds, srv.notFounds.Load())
	}
	// Zipf s=1.1 over 500 codes: the hottest code takes a large share.
	hits := srv.hitCounts()
	var total, top int64
	for _, n := range hits {
		total += n
		top = max(top, n)
	}
	if share := float64(top) / float64(total); share < 0.1 {
		t.Errorf("hottest code has %.3f of %d redirects; Zipf s=1.1 over 500 gives about 0.2", share, total)
	}
}

func TestColdWorkloadIsUniform(t *testing.T) {
	srv := newTestServer(t, nil)
	res := mustRun(t, quick(srv.url, WorkloadCold))
	checkSane(t, res, res.Ops["redirect"], "cold")
	hits := srv.hitCounts()
	var total, top int64
	for _, n := range hits {
		total += n
		top = max(top, n)
	}
	mean := float64(total) / 500
	if float64(top) > 6*mean+10 {
		t.Errorf("hottest code has %d of %d redirects (mean %.1f): not uniform", top, total, mean)
	}
	if len(hits) < 400 && total > 5000 {
		t.Errorf("only %d of 500 codes were hit in %d redirects", len(hits), total)
	}
}

func TestMixedWorkloadRatio(t *testing.T) {
	srv := newTestServer(t, nil)
	res := mustRun(t, quick(srv.url, WorkloadMixed))
	sh, rd := res.Ops["shorten"], res.Ops["redirect"]
	checkSane(t, res, rd, "mixed redirects")
	if sh == nil || sh.OK == 0 {
		t.Fatalf("mixed run made no shortens: %+v", sh)
	}
	ratio := float64(rd.Requests) / float64(sh.Requests)
	if ratio < 8.5 || ratio > 11.5 {
		t.Errorf("redirects:shortens = %d:%d = %.2f, want about 10", rd.Requests, sh.Requests, ratio)
	}
	if res.Total.OK != sh.OK+rd.OK || res.Total.Requests != sh.Requests+rd.Requests {
		t.Errorf("total %+v is not the sum of %+v and %+v", res.Total, sh, rd)
	}
}

func TestCodesNoneSendsNoPost(t *testing.T) {
	srv := newTestServer(t, func(s *testServer) { s.redirectAll = true })
	cfg := quick(srv.url, WorkloadRedirect)
	cfg.CodesFrom = CodesNone
	cfg.Links = 1000
	res := mustRun(t, cfg)
	checkSane(t, res, res.Ops["redirect"], "redirect without POST")
	if p := srv.posts.Load(); p != 0 {
		t.Errorf("%d POSTs sent with codes from none", p)
	}
	if res.Setup != nil || res.Links != 1000 || res.CodesFrom != CodesNone {
		t.Errorf("setup %+v, links %d, codes from %q", res.Setup, res.Links, res.CodesFrom)
	}
	for code := range srv.hitCounts() {
		if !validCode([]byte(code)) || len(code) != 7 {
			t.Fatalf("synthetic code %q", code)
		}
	}
}

func TestCodesFileRoundTrip(t *testing.T) {
	srv := newTestServer(t, nil)
	path := filepath.Join(t.TempDir(), "codes.txt")
	cfg := quick(srv.url, WorkloadRedirect)
	cfg.Links = 200
	cfg.SaveCodes = path
	cfg.Duration = 50 * time.Millisecond
	cfg.Warmup = -1
	mustRun(t, cfg)
	codes, err := readCodesFile(path, 0)
	if err != nil || len(codes) != 200 {
		t.Fatalf("saved codes: %d, %v", len(codes), err)
	}
	posts := srv.posts.Load()
	cfg = quick(srv.url, WorkloadCold)
	cfg.CodesFrom, cfg.CodesFile, cfg.Links = CodesFile, path, 0
	cfg.Duration = 200 * time.Millisecond
	res := mustRun(t, cfg)
	if srv.posts.Load() != posts {
		t.Error("a run with codes from a file created links")
	}
	if res.Links != 200 || res.Total.Errors != 0 || res.Total.OK == 0 {
		t.Errorf("links %d, ok %d, errors %v", res.Links, res.Total.OK, res.Total.ErrorKinds)
	}
}

// TestOpenLoopMeasuresFromIntendedTime stalls the server for 200ms once in
// the middle of the recorded window. In the open loop every request that
// was due during the stall is late, and its latency counts from when it was
// due: the stall must show in the p99. The closed loop, which waits, only
// sees c slow requests: the comparison shows the coordinated omission the
// open loop avoids.
func TestOpenLoopMeasuresFromIntendedTime(t *testing.T) {
	const rate = 2000.0
	run := func(open bool) *Result {
		srv := newTestServer(t, func(s *testServer) {
			s.redirectAll = true
			// 50ms warmup + 350ms into the window.
			s.stallAfter, s.stallFor = 400*time.Millisecond, 200*time.Millisecond
		})
		cfg := quick(srv.url, WorkloadCold)
		cfg.CodesFrom, cfg.Links = CodesNone, 100
		cfg.Concurrency = 8
		cfg.Duration = time.Second
		if open {
			cfg.Rate = rate
		}
		return mustRun(t, cfg)
	}
	open := run(true)
	s := open.Ops["redirect"]
	if s.Errors != 0 {
		t.Fatalf("open loop errors: %v", s.ErrorKinds)
	}
	if want := rate * open.Elapsed; float64(s.Requests) < want*0.9 || float64(s.Requests) > want*1.1 {
		t.Errorf("open loop sent %d requests in %.2fs at %g/s; want about %.0f", s.Requests, open.Elapsed, rate, want)
	}
	if s.Latency.P99 < 100_000 || s.Latency.Max < 150_000 {
		t.Errorf("open loop p99 %dµs, max %dµs: the 200ms stall is hidden", s.Latency.P99, s.Latency.Max)
	}
	closed := run(false)
	c := closed.Ops["redirect"]
	if c.Latency.Max < 150_000 {
		t.Errorf("closed loop max %dµs: the stall did not happen", c.Latency.Max)
	}
	if c.Latency.P99 >= s.Latency.P99/2 {
		t.Errorf("closed loop p99 %dµs vs open loop %dµs: expected the closed loop to hide the stall",
			c.Latency.P99, s.Latency.P99)
	}
	t.Logf("p99 with a 200ms stall: open loop %dµs, closed loop %dµs", s.Latency.P99, c.Latency.P99)
}

func TestOpenLoopInFlightLimit(t *testing.T) {
	srv := newTestServer(t, func(s *testServer) {
		s.redirectAll = true
		s.delay = 20 * time.Millisecond
	})
	cfg := quick(srv.url, WorkloadRedirect)
	cfg.CodesFrom, cfg.Links = CodesNone, 10
	cfg.Concurrency = 2  // at most 100 answers/s with a 20ms server
	cfg.Rate = 1000      // asked for 1000/s
	cfg.MaxInFlight = 10 // so most requests must be shed
	res := mustRun(t, cfg)
	s := res.Ops["redirect"]
	shed := s.ErrorKinds[ErrKindInFlightLimit]
	if shed < s.Requests/2 {
		t.Errorf("shed %d of %d requests; want most (errors %v)", shed, s.Requests, s.ErrorKinds)
	}
	// A sent request was due at most about MaxInFlight slots (10ms) before
	// it was sent, plus the server's 20ms.
	if s.Latency.Max > 500_000 {
		t.Errorf("ok %d, max %dµs: sent requests should wait at most about 10 slots", s.OK, s.Latency.Max)
	}
}

func TestErrorsAreClassified(t *testing.T) {
	t.Run("status and bad answers", func(t *testing.T) {
		srv := newTestServer(t, func(s *testServer) { s.postStatus = 503 })
		// Make the links first, without failures.
		cfg := quick(srv.url, WorkloadRedirect)
		cfg.Links = 100
		cfg.Duration, cfg.Warmup = 10*time.Millisecond, -1
		codesPath := filepath.Join(t.TempDir(), "codes")
		cfg.SaveCodes = codesPath
		mustRun(t, cfg)
		srv.postStatusN.Store(3)
		srv.getBadEvery.Store(7)
		srv.getMissEvery.Store(5)

		cfg = quick(srv.url, WorkloadMixed)
		cfg.CodesFrom, cfg.CodesFile, cfg.Links = CodesFile, codesPath, 0
		res := mustRun(t, cfg)
		sh, rd := res.Ops["shorten"], res.Ops["redirect"]
		if sh.ErrorKinds["status_503"] == 0 {
			t.Errorf("shorten errors %v, want status_503", sh.ErrorKinds)
		}
		if rd.ErrorKinds["status_404"] == 0 || rd.ErrorKinds[ErrKindBadRedirect] == 0 {
			t.Errorf("redirect errors %v, want status_404 and bad_redirect", rd.ErrorKinds)
		}
		if res.Total.ErrorKinds["status_503"] != sh.ErrorKinds["status_503"] {
			t.Errorf("total errors %v do not sum the ops'", res.Total.ErrorKinds)
		}
	})
	t.Run("connect", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close() // nothing listens there now
		cfg := quick("http://"+addr, WorkloadRedirect)
		cfg.CodesFrom, cfg.Links = CodesNone, 10
		cfg.Duration = 100 * time.Millisecond
		res := mustRun(t, cfg)
		s := res.Ops["redirect"]
		if s.OK != 0 || s.ErrorKinds[ErrKindConnect] == 0 || s.Errors != s.ErrorKinds[ErrKindConnect] {
			t.Errorf("against a closed port: ok %d, errors %v; want only connect errors", s.OK, s.ErrorKinds)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		srv := newTestServer(t, func(s *testServer) {
			s.redirectAll = true
			s.delay = 150 * time.Millisecond
		})
		cfg := quick(srv.url, WorkloadRedirect)
		cfg.CodesFrom, cfg.Links = CodesNone, 10
		cfg.Timeout = 30 * time.Millisecond
		cfg.Duration = 200 * time.Millisecond
		res := mustRun(t, cfg)
		s := res.Ops["redirect"]
		if s.ErrorKinds[ErrKindTimeout] == 0 || s.OK != 0 {
			t.Errorf("against a slow server: ok %d, errors %v; want timeouts", s.OK, s.ErrorKinds)
		}
	})
	t.Run("setup fails", func(t *testing.T) {
		srv := newTestServer(t, func(s *testServer) { s.postStatus = 500 })
		srv.postStatusN.Store(1)
		cfg := quick(srv.url, WorkloadRedirect)
		cfg.Links = 20
		_, err := Run(context.Background(), cfg)
		if !errors.Is(err, ErrSetup) || !strings.Contains(err.Error(), "status_500") {
			t.Errorf("Run with failing creates: %v; want ErrSetup naming status_500", err)
		}
	})
}

func TestInterruptStillReports(t *testing.T) {
	srv := newTestServer(t, func(s *testServer) { s.redirectAll = true })
	cfg := quick(srv.url, WorkloadRedirect)
	cfg.CodesFrom, cfg.Links = CodesNone, 10
	cfg.Duration = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(400*time.Millisecond, cancel)
	start := time.Now()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("cancelled run took %v", took)
	}
	if !res.Interrupted || res.Total.OK == 0 || res.Elapsed <= 0 || res.Elapsed > 20 {
		t.Errorf("interrupted %v, ok %d, elapsed %.2f", res.Interrupted, res.Total.OK, res.Elapsed)
	}
}

func TestZipfDrawsStayInRange(t *testing.T) {
	for _, n := range []int{1, 2, 7, 1000} {
		for _, w := range []Workload{WorkloadRedirect, WorkloadCold} {
			r := &runner{cfg: Config{Workload: w, ZipfS: 1.1}.withDefaults(), codes: make([]string, n), seed: 7}
			wk := newWorker(r, 3)
			counts := make([]int, n)
			for range 20000 {
				i := wk.pickCode()
				if i < 0 || i >= n {
					t.Fatalf("%s over %d codes drew %d", w, n, i)
				}
				counts[i]++
			}
			if w == WorkloadRedirect && n > 1 && counts[0] <= counts[n-1] {
				t.Errorf("Zipf over %d: rank 0 drawn %d times, last rank %d", n, counts[0], counts[n-1])
			}
		}
	}
}

func TestResultOutputs(t *testing.T) {
	srv := newTestServer(t, nil)
	res := mustRun(t, quick(srv.url, WorkloadMixed))
	res.Label = "mixed | pipe"

	var md bytes.Buffer
	if err := res.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	checkMarkdownTables(t, md.String(), 3) // shorten, redirect, total
	if !strings.Contains(md.String(), `mixed \| pipe`) {
		t.Errorf("label not escaped:\n%s", md.String())
	}

	path := filepath.Join(t.TempDir(), "r.json")
	if err := res.WriteJSONFile(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("result is not JSON: %v", err)
	}
	for _, k := range []string{"label", "workload", "target", "loop", "concurrency", "rate", "duration_s",
		"warmup_s", "elapsed_s", "links", "start", "go_version", "gomaxprocs", "total", "ops", "setup"} {
		if _, ok := m[k]; !ok {
			t.Errorf("result JSON has no %q", k)
		}
	}
	lat := m["ops"].(map[string]any)["redirect"].(map[string]any)["latency_us"].(map[string]any)
	for _, k := range []string{"p50", "p90", "p99", "p99_9", "max"} {
		if _, ok := lat[k]; !ok {
			t.Errorf("latency has no %q", k)
		}
	}
	back, err := ReadResultFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Total.OK != res.Total.OK || back.Total.Latency != res.Total.Latency || back.Label != res.Label {
		t.Errorf("round trip changed the result: %+v vs %+v", back.Total, res.Total)
	}

	base := *back
	base.Label, base.Workload = "nginx", WorkloadRedirect
	base.Ops = map[string]*OpStats{"redirect": {OK: 1, Throughput: back.Ops["redirect"].Throughput * 4}}
	var tbl bytes.Buffer
	redirect := *back
	redirect.Workload, redirect.Label = WorkloadRedirect, "redirect"
	redirect.Ops = map[string]*OpStats{"redirect": back.Ops["redirect"]}
	if err := WriteTable(&tbl, []*Result{&base, back, &redirect}, "nginx"); err != nil {
		t.Fatal(err)
	}
	// nginx redirect, mixed shorten, mixed redirect, redirect; then the
	// CPU table, a row per result.
	checkMarkdownTables(t, tbl.String(), 4+3)
	if !strings.Contains(tbl.String(), "| 0.25× |") || !strings.Contains(tbl.String(), "| 1.00× |") ||
		strings.Count(tbl.String(), "×") != 2 {
		t.Errorf("the ratio column should have the baseline and the redirect run only:\n%s", tbl.String())
	}
	if err := WriteTable(&tbl, []*Result{back}, "nope"); err == nil {
		t.Error("WriteTable with an unknown baseline succeeded")
	}
	if _, err := ReadResultFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("ReadResultFile of a missing file succeeded")
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"x":1}`), 0o644)
	if _, err := ReadResultFile(bad); !errors.Is(err, ErrBadResult) {
		t.Errorf("ReadResultFile of a non-result: %v", err)
	}
}

// checkMarkdownTables checks that every table in md has rows with as many
// cells as its header, a separator row, and rows body rows in all.
func checkMarkdownTables(t *testing.T, md string, rows int) {
	t.Helper()
	var cols, body int
	inTable := false
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		n := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|") - 1
		switch {
		case !inTable:
			inTable, cols = true, n
		case strings.HasPrefix(line, "|---") || strings.HasPrefix(line, "|--:"):
			if n != cols {
				t.Errorf("separator has %d columns, header %d: %q", n, cols, line)
			}
		default:
			body++
			if n != cols {
				t.Errorf("row has %d cells, header %d: %q", n, cols, line)
			}
		}
	}
	if body != rows {
		t.Errorf("%d table rows, want %d:\n%s", body, rows, md)
	}
}

func TestProgressLines(t *testing.T) {
	srv := newTestServer(t, nil)
	for _, tty := range []bool{false, true} {
		var out testutil.SyncBuffer
		cfg := quick(srv.url, WorkloadRedirect)
		cfg.Links = 100
		cfg.Progress, cfg.ProgressTTY, cfg.ProgressInterval = &out, tty, 100*time.Millisecond
		cfg.Warmup = 250 * time.Millisecond
		mustRun(t, cfg)
		s := out.String()
		if !strings.Contains(s, "ops/s") || !strings.Contains(s, "p99") || !strings.Contains(s, "warmup") {
			t.Errorf("tty=%v: progress output lacks ops/s, p99 or warmup:\n%q", tty, s)
		}
		if tty != strings.Contains(s, "\r") {
			t.Errorf("tty=%v: carriage returns in %q", tty, s)
		}
		if !tty && strings.Count(s, "\n") < 3 {
			t.Errorf("plain progress has too few lines: %q", s)
		}
	}
	if DetectTTY(&bytes.Buffer{}) {
		t.Error("a buffer is not a terminal")
	}
}

func TestConfigValidation(t *testing.T) {
	ok := Config{Target: "http://127.0.0.1:1"}
	cases := []struct {
		name string
		mod  func(*Config)
	}{
		{"no target", func(c *Config) { c.Target = "" }},
		{"ftp target", func(c *Config) { c.Target = "ftp://x:1" }},
		{"target with path", func(c *Config) { c.Target = "http://x:1/api" }},
		{"unknown workload", func(c *Config) { c.Workload = "read" }},
		{"negative rate", func(c *Config) { c.Rate = -1 }},
		{"max in-flight below c", func(c *Config) { c.Rate, c.MaxInFlight = 10, 1 }},
		{"zipf s 1", func(c *Config) { c.ZipfS = 1 }},
		{"none with shorten", func(c *Config) { c.Workload, c.CodesFrom = WorkloadMixed, CodesNone }},
		{"file without name", func(c *Config) { c.CodesFrom = CodesFile }},
		{"unknown codes source", func(c *Config) { c.CodesFrom = "s3" }},
		{"negative links", func(c *Config) { c.Links = -5 }},
		{"huge timeout", func(c *Config) { c.Timeout = time.Hour }},
		{"process group without processes", func(c *Config) { c.CPUOf = []ProcessGroup{{Name: "nodes"}} }},
		{"process group named generator", func(c *Config) { c.CPUOf = []ProcessGroup{{Name: GeneratorGroup, PIDs: []int{1}}} }},
		{"process group named twice", func(c *Config) {
			c.CPUOf = []ProcessGroup{{Name: "n", PIDs: []int{1}}, {Name: "n", PIDs: []int{2}}}
		}},
		{"process group with pid 0", func(c *Config) { c.CPUOf = []ProcessGroup{{Name: "n", PIDs: []int{0}}} }},
	}
	if err := ok.withDefaults().validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range cases {
		c := ok
		tc.mod(&c)
		if err := c.withDefaults().validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", tc.name, err)
		}
		if _, err := Run(context.Background(), c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Run: %v, want ErrConfig", tc.name, err)
		}
	}
	d := Config{Workload: WorkloadCold}.withDefaults()
	if d.Links != 1_000_000 || d.Concurrency != 64 || d.Duration != 10*time.Second || d.Warmup != 2*time.Second {
		t.Errorf("defaults: %+v", d)
	}
	if d := (Config{Rate: 20000, Concurrency: 64}).withDefaults(); d.MaxInFlight != 20000 {
		t.Errorf("default max in-flight %d, want 20000", d.MaxInFlight)
	}
}

func TestLiveHistogram(t *testing.T) {
	prev := -1
	for v := int64(0); v < 5_000_000; v += 1 + v/50 {
		i := liveIndex(v)
		if i < prev || i >= liveBuckets {
			t.Fatalf("liveIndex(%d) = %d after %d", v, i, prev)
		}
		if up := liveUpper(i); up < v || float64(up) > float64(v)*1.07+1 {
			t.Fatalf("liveUpper(liveIndex(%d)) = %d", v, up)
		}
		prev = i
	}
	var h liveHist
	for v := int64(1); v <= 1000; v++ {
		h.record(v)
	}
	var sum [liveBuckets]int64
	h.addTo(&sum)
	if q := liveQuantile(&sum, 0.99); q < 990 || q > 1060 {
		t.Errorf("p99 of 1..1000 = %d", q)
	}
}
