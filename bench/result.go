package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is everything one run measured, with the parameters it ran with.
// It is what the JSON result file holds.
type Result struct {
	// Label names the run in tables.
	Label string `json:"label"`
	// Workload is what the run sent.
	Workload Workload `json:"workload"`
	// Target is the base URL the run drove.
	Target string `json:"target"`
	// Loop is "closed" (Concurrency workers back to back) or "open" (Rate).
	Loop string `json:"loop"`
	// Concurrency is the number of workers and connections.
	Concurrency int `json:"concurrency"`
	// Rate is the intended requests per second of the open loop; 0 in the
	// closed loop.
	Rate float64 `json:"rate"`
	// MaxInFlight is the open loop's bound on due, unanswered requests.
	MaxInFlight int `json:"max_inflight,omitempty"`
	// Duration is the requested recorded time, in seconds.
	Duration float64 `json:"duration_s"`
	// Warmup is the unrecorded time before it, in seconds.
	Warmup float64 `json:"warmup_s"`
	// Elapsed is the recorded time actually run, in seconds: Duration,
	// or less when interrupted. Throughputs are per second of Elapsed.
	Elapsed float64 `json:"elapsed_s"`
	// Timeout is the per-request timeout, in seconds.
	Timeout float64 `json:"timeout_s"`
	// Links is N, the number of codes the redirects were drawn from.
	Links int `json:"links"`
	// CodesFrom says where those codes came from.
	CodesFrom CodesSource `json:"codes_from,omitempty"`
	// ZipfS is the Zipf exponent of the draws (redirect and mixed).
	ZipfS float64 `json:"zipf_s,omitempty"`
	// Seed is the seed of the draws and of synthetic codes.
	Seed uint64 `json:"seed"`
	// Start is when the warmup began (UTC).
	Start time.Time `json:"start"`
	// GoVersion, GOOS, GOARCH, GOMAXPROCS and NumCPU describe the
	// harness's runtime and machine.
	GoVersion  string `json:"go_version"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	NumCPU     int    `json:"num_cpu"`
	// Interrupted is true when the run was stopped before its duration.
	Interrupted bool `json:"interrupted"`
	// Setup describes the creation of the links, when the run made them.
	Setup *SetupStats `json:"setup,omitempty"`
	// Total sums every op kind.
	Total OpStats `json:"total"`
	// Ops holds the op kinds the workload sends: "shorten", "redirect".
	Ops map[string]*OpStats `json:"ops"`
	// CPU is the CPU the harness (GeneratorGroup) and each group of
	// Config.CPUOf used in the recorded window; empty when the run was
	// interrupted before the window began.
	CPU []CPUUse `json:"cpu,omitempty"`
	// CPUError says why the groups of Config.CPUOf are missing from CPU
	// (a process that exited during the run).
	CPUError string `json:"cpu_error,omitempty"`
}

// SetupStats describes how the links of a run were created.
type SetupStats struct {
	// Created counts the links made; Failed the creates that failed
	// every attempt (at most 1% of them, or the run does not start).
	Created int `json:"created"`
	Failed  int `json:"failed"`
	// Seconds is how long making them took; PerSecond is Created/Seconds.
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"per_s"`
}

// OpStats are the numbers of one op kind (or all) in the recorded window.
type OpStats struct {
	// Requests counts the requests started in the window, shed ones
	// included: OK + Errors.
	Requests int64 `json:"requests"`
	// OK counts the successes: a 201 with a code for a shorten, a 301,
	// 302, 307 or 308 with a Location for a redirect.
	OK int64 `json:"ok"`
	// Errors counts the rest; ErrorKinds splits them by kind.
	Errors int64 `json:"errors"`
	// Throughput is OK per second of Elapsed.
	Throughput float64 `json:"ops_per_s"`
	// Latency of the successful requests, in microseconds.
	Latency Latency `json:"latency_us"`
	// ErrorKinds counts the errors by kind (ErrKind* or "status_NNN").
	ErrorKinds map[string]int64 `json:"error_kinds"`
}

// Latency holds latency statistics in microseconds, from an HDR histogram
// with three significant digits.
type Latency struct {
	// Min and Max are the extremes; Mean the average.
	Min  int64   `json:"min"`
	Mean float64 `json:"mean"`
	// P50 .. P999 are the 50th, 90th, 99th and 99.9th percentiles.
	P50  int64 `json:"p50"`
	P90  int64 `json:"p90"`
	P99  int64 `json:"p99"`
	P999 int64 `json:"p99_9"`
	Max  int64 `json:"max"`
}

// latencyOf summarizes a histogram of microseconds.
func latencyOf(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	mean := h.Mean()
	if math.IsNaN(mean) {
		mean = 0
	}
	return Latency{
		Min:  h.Min(),
		Mean: math.Round(mean*10) / 10,
		P50:  h.ValueAtQuantile(50),
		P90:  h.ValueAtQuantile(90),
		P99:  h.ValueAtQuantile(99),
		P999: h.ValueAtQuantile(99.9),
		Max:  h.Max(),
	}
}

// WriteJSON writes r as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write bench result: %w", err)
	}
	return nil
}

// WriteJSONFile writes r as indented JSON to the file path.
func (r *Result) WriteJSONFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create result file: %w", err)
	}
	if err := r.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close result file %s: %w", path, err)
	}
	return nil
}

// ErrBadResult is wrapped by ReadResultFile when a file is not a result.
var ErrBadResult = errors.New("not a bench result")

// ReadResultFile reads a JSON result written by WriteJSONFile.
func ReadResultFile(path string) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read result: %w", err)
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadResult, path, err)
	}
	if r.Workload == "" || r.Ops == nil {
		return nil, fmt.Errorf("%w: %s has no workload or ops", ErrBadResult, path)
	}
	return &r, nil
}

// loopDesc describes the load model, e.g. "closed c=64" or "open 20900/s c=64".
func (r *Result) loopDesc() string { return loopDesc(r.Rate, r.Concurrency) }

func loopDesc(rate float64, concurrency int) string {
	if rate > 0 {
		return fmt.Sprintf("open %s/s c=%d", fmtCount(rate), concurrency)
	}
	return fmt.Sprintf("closed c=%d", concurrency)
}

// opOrder lists the op kinds of r in a fixed order.
func (r *Result) opOrder() []string {
	var names []string
	for _, n := range opNames {
		if _, ok := r.Ops[n]; ok {
			names = append(names, n)
		}
	}
	return names
}

// WriteMarkdown writes r as a short Markdown section: the parameters, one
// table row per op kind (and a total for mixed), and the errors by kind.
func (r *Result) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s: %s, %s\n\n", mdEscape(r.Label), r.Workload, r.loopDesc())
	fmt.Fprintf(&b, "- target %s, %.1fs recorded after %.1fs warmup", r.Target, r.Elapsed, r.Warmup)
	if r.Interrupted {
		b.WriteString(" (interrupted)")
	}
	b.WriteString("\n")
	if r.Workload.needsCodes() {
		fmt.Fprintf(&b, "- %s links, codes from %s", fmtCount(float64(r.Links)), r.CodesFrom)
		if r.Workload == WorkloadCold {
			b.WriteString(", drawn uniformly")
		} else {
			fmt.Fprintf(&b, ", drawn Zipf s=%g", r.ZipfS)
		}
		if s := r.Setup; s != nil {
			fmt.Fprintf(&b, "; created in %.1fs (%s/s, %d failed)", s.Seconds, fmtCount(s.PerSecond), s.Failed)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "- %s %s/%s, GOMAXPROCS %d, %d CPUs, started %s\n\n",
		r.GoVersion, r.GOOS, r.GOARCH, r.GOMAXPROCS, r.NumCPU, r.Start.UTC().Format(time.RFC3339))
	b.WriteString("| op | requests | ok | ops/s | p50 | p90 | p99 | p99.9 | max | errors |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	row := func(name string, s *OpStats) {
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %d |\n",
			name, s.Requests, s.OK, fmtCount(s.Throughput),
			fmtLatency(s.Latency.P50), fmtLatency(s.Latency.P90), fmtLatency(s.Latency.P99),
			fmtLatency(s.Latency.P999), fmtLatency(s.Latency.Max), s.Errors)
	}
	ops := r.opOrder()
	for _, n := range ops {
		row(n, r.Ops[n])
	}
	if len(ops) > 1 {
		row("total", &r.Total)
	}
	if len(r.Total.ErrorKinds) > 0 {
		fmt.Fprintf(&b, "\nErrors: %s\n", fmtErrorKinds(r.Total.ErrorKinds))
	}
	if len(r.CPU) > 0 {
		b.WriteString("\nCPU per successful request (user + system, recorded window):")
		for i, u := range r.CPU {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " %s %.1fµs", mdEscape(u.Name), u.PerRequest)
		}
		b.WriteString(".\n")
	}
	if r.CPUError != "" {
		fmt.Fprintf(&b, "\nThe other processes' CPU is not known: %s\n", mdEscape(r.CPUError))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write markdown: %w", err)
	}
	return nil
}

// WriteTable writes one Markdown table over several results: a row per
// result and op kind. When baseline names the label of one of the results,
// a column gives the redirect throughput of each redirect and cold run as a
// ratio to the baseline's redirect throughput (not for mixed runs, whose
// redirects share the workers with slower shortens).
func WriteTable(w io.Writer, results []*Result, baseline string) error {
	var base *OpStats
	if baseline != "" {
		for _, r := range results {
			if r.Label == baseline {
				base = r.Ops[opNames[opRedirect]]
				break
			}
		}
		if base == nil {
			return fmt.Errorf("baseline %q: no result with that label has redirects", baseline)
		}
	}
	var b strings.Builder
	b.WriteString("| run | workload | load | op | ops/s | p50 | p90 | p99 | p99.9 | max | errors |")
	if base != nil {
		fmt.Fprintf(&b, " redirects vs %s |", mdEscape(baseline))
	}
	b.WriteString("\n|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|")
	if base != nil {
		b.WriteString("--:|")
	}
	b.WriteString("\n")
	for _, r := range results {
		for _, n := range r.opOrder() {
			s := r.Ops[n]
			errs := fmt.Sprint(s.Errors)
			if len(s.ErrorKinds) > 0 {
				errs += " (" + fmtErrorKinds(s.ErrorKinds) + ")"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |",
				mdEscape(r.Label), r.Workload, r.loopDesc(), n, fmtCount(s.Throughput),
				fmtLatency(s.Latency.P50), fmtLatency(s.Latency.P90), fmtLatency(s.Latency.P99),
				fmtLatency(s.Latency.P999), fmtLatency(s.Latency.Max), errs)
			if base != nil {
				ratio := "—"
				if n == opNames[opRedirect] && r.Workload != WorkloadMixed && base.Throughput > 0 {
					ratio = fmt.Sprintf("%.2f×", s.Throughput/base.Throughput)
				}
				fmt.Fprintf(&b, " %s |", ratio)
			}
			b.WriteString("\n")
		}
	}
	writeCPUTable(&b, results)
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("write markdown table: %w", err)
	}
	return nil
}

// writeCPUTable appends, when any of results measured CPU, a second table:
// a row per result, a column per process group (in the order the groups
// first appear), the CPU per successful request in microseconds.
func writeCPUTable(b *strings.Builder, results []*Result) {
	var names []string
	for _, r := range results {
		for _, u := range r.CPU {
			if !slices.Contains(names, u.Name) {
				names = append(names, u.Name)
			}
		}
	}
	if len(names) == 0 {
		return
	}
	b.WriteString("\nCPU per successful request, µs (user + system over the recorded window; — not measured):\n\n")
	b.WriteString("| run | workload | load |")
	for _, n := range names {
		fmt.Fprintf(b, " %s |", mdEscape(n))
	}
	b.WriteString("\n|---|---|---|")
	b.WriteString(strings.Repeat("--:|", len(names)))
	b.WriteString("\n")
	for _, r := range results {
		fmt.Fprintf(b, "| %s | %s | %s |", mdEscape(r.Label), r.Workload, r.loopDesc())
		for _, n := range names {
			cell := "—"
			for _, u := range r.CPU {
				if u.Name == n {
					cell = fmt.Sprintf("%.1f", u.PerRequest)
				}
			}
			fmt.Fprintf(b, " %s |", cell)
		}
		b.WriteString("\n")
	}
}

// fmtLatency formats microseconds for a table.
func fmtLatency(us int64) string {
	switch {
	case us < 1000:
		return fmt.Sprintf("%dµs", us)
	case us < 1_000_000:
		return fmt.Sprintf("%.2fms", float64(us)/1e3)
	default:
		return fmt.Sprintf("%.2fs", float64(us)/1e6)
	}
}

// fmtCount formats a count or rate with thousands separators.
func fmtCount(v float64) string {
	n := int64(math.Round(v))
	neg := n < 0
	if neg {
		n = -n
	}
	s := fmt.Sprint(n)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// fmtErrorKinds formats error counts as "kind=n, kind=n", largest first.
func fmtErrorKinds(m map[string]int64) string {
	kinds := make([]string, 0, len(m))
	for k := range m {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if m[kinds[i]] != m[kinds[j]] {
			return m[kinds[i]] > m[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// mdEscape keeps a label from breaking a Markdown table.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "\r", " ").Replace(s)
}
