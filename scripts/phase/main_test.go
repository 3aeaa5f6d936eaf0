package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestFoldGolden folds the samples and probe rows in testdata and compares
// the table with the one the earlier Python version of this command
// printed for the same files (testdata/*.golden).
func TestFoldGolden(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		golden string
	}{
		{[]string{"fold", "1", "testdata/fold.samples", "testdata/fold.probe"}, "testdata/fold.golden"},
		{[]string{"fold", "-hz", "100", "0.5", "testdata/fold.samples"}, "testdata/fold-noprobe.golden"},
	} {
		var out bytes.Buffer
		if err := run(tc.args, &out); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		want, err := os.ReadFile(tc.golden)
		if err != nil {
			t.Fatal(err)
		}
		if out.String() != string(want) {
			t.Errorf("%v:\n%s\nwant (%s):\n%s", tc.args, out.String(), tc.golden, want)
		}
	}
}

// TestFoldPeakFirst checks that the rows start at the nodes' busiest bin,
// that the CPU is in cores and the probe's percentiles in ms.
func TestFoldPeakFirst(t *testing.T) {
	// 1 s period, samples every 10 ms for 2 s; the node burns a full
	// core only in [0.60, 0.90), the router half a core throughout. CPU is
	// read over 50 ms windows, so bins 13 to 16 ([650, 850) ms) see the
	// whole core and bins 12 and 17 part of it.
	s := samples{names: []string{"router", "n1"}}
	var rtr, node float64
	for i := 0; i <= 200; i++ {
		tm := 100 + float64(i)*0.01
		s.rows = append(s.rows, []float64{tm, rtr, node})
		rtr += 0.5
		if ph := tm - float64(int(tm)); ph >= 0.595 && ph < 0.895 {
			node++
		}
	}
	times := []float64{100.66, 100.67, 101.1}
	lats := []float64{0.030, 0.010, 0.001}
	var out bytes.Buffer
	fold(&out, 1, 100, s, true, times, lats)
	lines := strings.Split(out.String(), "\n")
	if got, want := lines[0], "| phase (ms) | router cores | n1 cores | probe n | probe p50 ms | probe p99 ms |"; got != want {
		t.Fatalf("header %q, want %q", got, want)
	}
	first := strings.Fields(strings.ReplaceAll(lines[2], "|", " "))
	// Bin 13 ([650, 700) ms) comes first: the node's whole core, both
	// probes, p50 the larger of two (index 1 of the sorted pair).
	if want := []string{"0", "0.50", "1.00", "2", "30.00", "30.00"}; strings.Join(first, " ") != strings.Join(want, " ") {
		t.Errorf("first row %q, want %q", first, want)
	}
	if lines[3] != "| 50 | 0.50 | 1.00 | 0 | nan | nan |" {
		t.Errorf("second row %q, want phase 50, the router's half core, the node's core and no probe", lines[3])
	}
	if !strings.Contains(out.String(), "\nNodes: 0.30 cores on average; ") {
		t.Errorf("the node burns 0.3 s of each second:\n%s", out.String())
	}
}

func TestFoldNoNodeCPU(t *testing.T) {
	s := samples{names: []string{"n1"}}
	for i := range 10 {
		s.rows = append(s.rows, []float64{float64(i) * 0.01, 7})
	}
	var out bytes.Buffer
	fold(&out, 1, 100, s, false, nil, nil)
	if !strings.HasSuffix(out.String(), "\nNodes: no CPU in the samples.\n") {
		t.Errorf("got:\n%s", out.String())
	}
}

func TestPct(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3}
	for _, tc := range []struct{ q, want float64 }{{0, 1}, {0.5, 3}, {0.99, 5}, {1, 5}} {
		if got := pct(v, tc.q); got != tc.want {
			t.Errorf("pct(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := fnum(pct(nil, 0.5), 2); got != "nan" {
		t.Errorf("pct of nothing prints %q, want nan", got)
	}
}

func TestBinOf(t *testing.T) {
	for _, tc := range []struct {
		t, period float64
		want      int
	}{{0, 1, 0}, {0.049, 1, 0}, {0.05, 1, 1}, {10.999, 1, 19}, {3.26, 2, 12}, {-0.01, 1, 19}} {
		if got := binOf(tc.t, tc.period); got != tc.want {
			t.Errorf("binOf(%v, %v) = %d, want %d", tc.t, tc.period, got, tc.want)
		}
	}
}

func TestParseSamplesErrors(t *testing.T) {
	for _, in := range []string{"", "x a b\n", "t a\n1 2 3\n", "t a\n1 x\n"} {
		if _, err := parseSamples(strings.NewReader(in)); err == nil {
			t.Errorf("parseSamples(%q): no error", in)
		}
	}
	s, err := parseSamples(strings.NewReader("t a b\n1.5 2 3\n\n2.5 4 5\n"))
	if err != nil || len(s.rows) != 2 || s.names[1] != "b" || s.rows[1][2] != 5 {
		t.Errorf("parseSamples = %+v, %v", s, err)
	}
	if _, _, err := parseProbe(strings.NewReader("1 2 3\n")); err == nil {
		t.Error("parseProbe of three fields: no error")
	}
}

func TestParseStatTicks(t *testing.T) {
	// A command name with a space and a ')' in it, utime 1234, stime 56.
	line := "4242 (we) ird (name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 56 0 0 20 0 5 0 100 0 0\n"
	got, err := parseStatTicks(line)
	if err != nil || got != 1290 {
		t.Errorf("parseStatTicks = %d, %v, want 1290", got, err)
	}
	for _, bad := range []string{"4242 no name S 1", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u 5 0"} {
		if _, err := parseStatTicks(bad); err == nil {
			t.Errorf("parseStatTicks(%q): no error", bad)
		}
	}
}

func TestStatFile(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	st := openStat(os.Getpid())
	defer st.close()
	st.buf = st.buf[:8] // too small: ticks must grow it
	for range 2 {
		if _, err := st.ticks(); err != nil {
			t.Fatal(err)
		}
	}
	gone := openStat(999999999)
	defer gone.close()
	if _, err := gone.ticks(); err == nil {
		t.Error("ticks of a process that is not there: no error")
	}
}

func TestParseProcs(t *testing.T) {
	p, err := parseProcs([]string{"router=12", "n1=7"})
	if err != nil || len(p) != 2 || p[1] != (proc{"n1", 7}) {
		t.Errorf("parseProcs = %v, %v", p, err)
	}
	for _, bad := range []string{"router", "=3", "a=0", "a=x", "a b=3"} {
		if _, err := parseProcs([]string{bad}); err == nil {
			t.Errorf("parseProcs(%q): no error", bad)
		}
	}
}

func TestSample(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	out := filepath.Join(t.TempDir(), "s")
	pid := os.Getpid()
	if err := run([]string{"sample", out, "0.05", fmt.Sprintf("me=%d", pid), "gone=999999999"}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := parseSamples(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.names) != 2 || s.names[0] != "me" || len(s.rows) == 0 {
		t.Fatalf("samples %+v", s)
	}
	for _, r := range s.rows {
		if r[2] != 0 {
			t.Errorf("a process that is gone counts %v ticks, want 0", r[2])
		}
	}
}

func TestReadResponse(t *testing.T) {
	two := "HTTP/1.1 301 Moved Permanently\r\nLocation: https://x\r\ncontent-length: 5\r\n\r\nhello" +
		"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
	r := bufio.NewReader(strings.NewReader(two))
	for i := range 2 {
		if err := readResponse(r); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
	}
	if r.Buffered() != 0 {
		t.Errorf("%d bytes left over", r.Buffered())
	}
	for _, bad := range []string{"", "HTTP/1.1 200 OK\r\n", "\r\n", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"} {
		if err := readResponse(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("readResponse(%q): no error", bad)
		}
	}
}

func TestProbe(t *testing.T) {
	var (
		mu    sync.Mutex
		paths []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		http.Redirect(w, r, "https://example.com/", http.StatusMovedPermanently)
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "p")
	if err := run([]string{"probe", out, "0.03", srv.Listener.Addr().String(), "abc"}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	times, lats, err := parseProbe(f)
	if err != nil {
		t.Fatal(err)
	}
	srv.Close() // the handler has returned for every request
	mu.Lock()
	defer mu.Unlock()
	if len(times) == 0 || len(times) != len(paths) {
		t.Fatalf("%d rows for %d requests", len(times), len(paths))
	}
	for i := range times {
		if lats[i] < 0 || (i > 0 && times[i] <= times[i-1]) || paths[i] != "/abc" {
			t.Errorf("row %d: %v %v for %s", i, times[i], lats[i], paths[i])
		}
	}
}

func TestField(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.json")
	doc := `{"total": {"ok": 12345678901, "per_s": 1.5e3}, "label": "A",
		"ops": {"redirect": {"latency_us": {"p50": 812, "p99_9": 20447}}}}`
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"field", path, "total", "ok"}, "12345678901\n"},
		{[]string{"field", path, "total", "per_s"}, "1.5e3\n"},
		{[]string{"field", path, "label"}, "A\n"},
		{[]string{"field", path, "ops", "redirect", "latency_us"}, `{"p50":812,"p99_9":20447}` + "\n"},
		{[]string{"field", "-or", "0", path, "ops", "shorten", "latency_us", "p50"}, "0\n"},
		{[]string{"field", "-or", "0", path, "ops", "redirect", "latency_us", "p99_9"}, "20447\n"},
	} {
		var out bytes.Buffer
		if err := run(tc.args, &out); err != nil || out.String() != tc.want {
			t.Errorf("%v = %q, %v; want %q", tc.args[1:], out.String(), err, tc.want)
		}
	}
	for _, args := range [][]string{
		{"field", path, "ops", "shorten"},         // absent, no -or
		{"field", "-or", "0", path, "label", "x"}, // not an object
		{"field", "-or", "0", filepath.Join(dir, "none.json"), "a"},
		{"field", path},
	} {
		if err := run(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args[1:])
		}
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"sample", "x", "1"}, {"sample", "x", "0", "a=1"},
		{"probe", "x", "1", "h:1"}, {"fold", "1"}, {"fold", "-hz", "0", "1", "s"}, {"fold", "abc", "s"}} {
		if err := run(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
