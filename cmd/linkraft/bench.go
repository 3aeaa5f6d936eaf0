package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/linkraft/linkraft/bench"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench [flags]",
		"Drives a router (or any server answering the same requests) with one workload and\n"+
			"prints a Markdown table of throughput, latency percentiles and errors by kind.\n"+
			"Workloads: shorten (POST /api/v1/links), redirect (GET /{code}, Zipf-distributed),\n"+
			"mixed (10 redirects : 1 shorten), cold (uniform over -links codes; run it against a\n"+
			"router with cache_size: 0 so that every redirect reaches a shard).\n"+
			"Closed loop by default (-c workers back to back); -rate N selects the open loop,\n"+
			"which measures latency from each request's intended send time.\n"+
			"Ctrl-C stops early, still prints the results, and exits with status 1.\n\n"+
			"  linkraft bench -target http://127.0.0.1:8080 -workload redirect -c 64 -duration 10s\n"+
			"  linkraft bench -workload mixed -rate 20900 -out mixed.json\n"+
			"  linkraft bench -combine 'results/*.json' -baseline nginx", stderr)
	targetURL := fs.String("target", "http://127.0.0.1:8080", "base URL of the router")
	workload := fs.String("workload", string(bench.WorkloadRedirect), "shorten, redirect, mixed or cold")
	conc := fs.Int("c", bench.DefaultConcurrency, "workers and connections (closed loop); most requests on the wire (open loop)")
	rate := fs.Float64("rate", 0, "requests per second: selects the open loop (0: closed loop)")
	maxInFlight := fs.Int("max-inflight", 0, "open loop: most requests due and unanswered before requests are shed (0: one second of -rate)")
	duration := fs.Duration("duration", bench.DefaultDuration, "recorded time")
	warmup := fs.Duration("warmup", bench.DefaultWarmup, "unrecorded time before it (0: none)")
	timeout := fs.Duration("timeout", bench.DefaultTimeout, "timeout of one request")
	links := fs.Int("links", 0, "N, the links redirect/mixed/cold draw from (0: 100000; 1000000 for cold; with -codes-file, every code of the file)")
	codesFrom := fs.String("codes-from", "", "where the links come from: create (POST them first), none (random codes, no POST: for a server that redirects every path), file (-codes-file); default create, or file when -codes-file is set")
	codesFile := fs.String("codes-file", "", "file of codes, one a line, e.g. written by -save-codes")
	saveCodes := fs.String("save-codes", "", "write the run's codes to this file, for a later -codes-file")
	setupC := fs.Int("setup-c", bench.DefaultSetupConcurrency, "creates in flight while making the links")
	zipfS := fs.Float64("zipf-s", bench.DefaultZipfS, "Zipf exponent s (> 1) of redirect and mixed")
	seed := fs.Uint64("seed", 0, "seed of the code draws (0: from the clock)")
	out := fs.String("out", "", "also write the result as JSON to this file")
	label := fs.String("label", "", "name of the run in tables (default: the workload)")
	progress := fs.Bool("progress", true, "write a progress line to stderr every second")
	combine := fs.String("combine", "", "print one table of earlier JSON results instead of running: comma-separated files or globs, in order")
	baseline := fs.String("baseline", "", "with -combine: label of the result whose redirect throughput the others are compared to")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run (setup included) to this file")
	var cpuOf processGroups
	fs.Var(&cpuOf, "cpu-of", "name=pid[,pid...]: also report these local processes' CPU per request over the recorded window (repeatable; Linux)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *combine != "" {
		return combineResults(*combine, *baseline, stdout)
	}

	cfg := bench.Config{
		Target:           *targetURL,
		Workload:         bench.Workload(*workload),
		Concurrency:      *conc,
		Rate:             *rate,
		MaxInFlight:      *maxInFlight,
		Duration:         *duration,
		Warmup:           *warmup,
		Timeout:          *timeout,
		Links:            *links,
		CodesFrom:        bench.CodesSource(*codesFrom),
		CodesFile:        *codesFile,
		SaveCodes:        *saveCodes,
		SetupConcurrency: *setupC,
		ZipfS:            *zipfS,
		Seed:             *seed,
		Label:            *label,
		CPUOf:            cpuOf,
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = -1 // none; a zero Config.Warmup would mean the default
	}
	if cfg.Duration <= 0 || cfg.Concurrency <= 0 || cfg.Timeout <= 0 {
		fmt.Fprintln(stderr, "-duration, -c and -timeout must be > 0")
		fs.Usage()
		return errUsage
	}
	if cfg.CodesFrom == "" && cfg.CodesFile != "" {
		cfg.CodesFrom = bench.CodesFile
	}
	if *progress {
		cfg.Progress = stderr
		cfg.ProgressTTY = bench.DetectTTY(stderr)
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer func() {
			if err := stop(); err != nil {
				fmt.Fprintln(stderr, "bench:", err)
			}
		}()
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := res.WriteMarkdown(stdout); err != nil {
		return err
	}
	if *out != "" {
		if err := res.WriteJSONFile(*out); err != nil {
			return err
		}
	}
	if res.Interrupted {
		// The partial results are out; a non-zero exit still tells a
		// calling script that the run was cut short.
		return fmt.Errorf("interrupted after %.1fs of %v (the results above cover that part): %w",
			res.Elapsed, cfg.Duration, context.Cause(ctx))
	}
	return nil
}

// processGroups is the repeatable -cpu-of flag.
type processGroups []bench.ProcessGroup

// String implements flag.Value.
func (p *processGroups) String() string {
	parts := make([]string, len(*p))
	for i, g := range *p {
		parts[i] = g.String()
	}
	return strings.Join(parts, " ")
}

// Set implements flag.Value: one name=pid[,pid...] group.
func (p *processGroups) Set(s string) error {
	g, err := bench.ParseProcessGroup(s)
	if err != nil {
		return err
	}
	*p = append(*p, g)
	return nil
}

// startCPUProfile starts Go's CPU profiler writing to path; the returned
// function stops it and closes the file.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("cpu profile %s: %w", path, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("cpu profile %s: %w", path, err)
		}
		return nil
	}, nil
}

// combineResults prints one table of the JSON results named by list:
// comma-separated paths or globs, each glob's matches in lexical order.
func combineResults(list, baseline string, stdout io.Writer) error {
	var results []*bench.Result
	for _, pat := range strings.Split(list, ",") {
		pat = strings.TrimSpace(pat)
		if pat == "" {
			continue
		}
		paths, err := filepath.Glob(pat)
		if err != nil {
			return fmt.Errorf("combine %q: %w", pat, err)
		}
		if len(paths) == 0 {
			return fmt.Errorf("combine: no result file matches %q", pat)
		}
		for _, p := range paths {
			r, err := bench.ReadResultFile(p)
			if err != nil {
				return err
			}
			results = append(results, r)
		}
	}
	if len(results) == 0 {
		return fmt.Errorf("combine: no result files in %q", list)
	}
	fmt.Fprintf(stdout, "linkraft bench: %d runs, %s\n\n", len(results), time.Now().UTC().Format(time.RFC3339))
	return bench.WriteTable(stdout, results, baseline)
}
