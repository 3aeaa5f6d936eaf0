package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// runner is the shared state of one measured phase.
type runner struct {
	cfg    Config
	target target
	client *fasthttp.HostClient
	codes  []string
	uses   [numOps]bool
	seed   uint64
	runID  string

	base      time.Time // every *Ns below is nanoseconds since base
	measureNs int64     // the recorded window starts (end of warmup)
	endNs     int64     // the scheduled end
	stopAtNs  atomic.Int64
	stopped   atomic.Bool
	stopCh    chan struct{}

	// Open loop: request i is intended at i*intervalNs.
	seq        atomic.Int64
	intervalNs float64
}

func (r *runner) now() int64 { return int64(time.Since(r.base)) }

// inWindow reports whether a request whose clock started at t is recorded.
func (r *runner) inWindow(t int64) bool { return t >= r.measureNs && t < r.stopAtNs.Load() }

// intended returns the intended send time of open-loop request i.
func (r *runner) intended(i int64) int64 { return int64(float64(i) * r.intervalNs) }

// dueBefore returns how many open-loop requests are intended at or before t.
func (r *runner) dueBefore(t int64) int64 {
	if t < 0 {
		return 0
	}
	return int64(float64(t)/r.intervalNs) + 1
}

// idleConnTimeout closes the harness's idle keep-alive connections; it is
// short so that the client's connection cleaner ends soon after a run.
const idleConnTimeout = time.Second

// newClient returns the client of a run: keep-alive connections to the
// target, at most maxConns, no retries (a failed request is an error to
// count, not to hide), redirects never followed.
func newClient(t target, maxConns int, timeout time.Duration) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                      t.addr,
		IsTLS:                     t.isTLS,
		Name:                      "linkraft-bench",
		MaxConns:                  maxConns,
		MaxConnWaitTimeout:        timeout,
		MaxIdemponentCallAttempts: 1,
		RetryIfErr:                func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
		ReadTimeout:               timeout,
		WriteTimeout:              timeout,
		MaxIdleConnDuration:       idleConnTimeout,
		ConnPoolStrategy:          fasthttp.LIFO,
		DisablePathNormalizing:    true,
		MaxResponseBodySize:       1 << 20,
		// A plain dial: fasthttp's default dialer caches DNS answers in a
		// process-wide goroutine that outlives the run; a benchmark
		// target is dialled only a few times anyway.
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			return net.DialTimeout("tcp", addr, timeout)
		},
	}
}

// Run runs one benchmark and returns its result. It stops by itself after
// the warmup and the duration; when ctx is cancelled during the measurement
// it stops early and returns the results so far with Interrupted set. An
// error means the run could not start (bad configuration, links that could
// not be made, a codes file that could not be read or written).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tgt, err := parseTarget(cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	prog := &progress{w: cfg.Progress, tty: cfg.ProgressTTY, interval: cfg.ProgressInterval}
	res := &Result{
		Label:       cfg.Label,
		Workload:    cfg.Workload,
		Target:      cfg.Target,
		Loop:        "closed",
		Concurrency: cfg.Concurrency,
		Duration:    cfg.Duration.Seconds(),
		Warmup:      cfg.Warmup.Seconds(),
		Timeout:     cfg.Timeout.Seconds(),
		Seed:        seed,
		GoVersion:   runtime.Version(),
		GOOS:        runtime.GOOS,
		GOARCH:      runtime.GOARCH,
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
		NumCPU:      runtime.NumCPU(),
	}
	if cfg.Rate > 0 {
		res.Loop = "open"
		res.Rate = cfg.Rate
		res.MaxInFlight = cfg.MaxInFlight
	}
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	// The processes to measure must be readable before the links are made,
	// not only once the window begins.
	if _, err := sampleCPU(cfg.CPUOf); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}

	var codes []string
	if cfg.Workload.needsCodes() {
		res.CodesFrom = cfg.CodesFrom
		if cfg.Workload != WorkloadCold {
			res.ZipfS = cfg.ZipfS
		}
		switch cfg.CodesFrom {
		case CodesNone:
			codes = synthCodes(cfg.Links, seed)
		case CodesFile:
			if codes, err = readCodesFile(cfg.CodesFile, cfg.Links); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrSetup, err)
			}
		case CodesCreate:
			c := &creator{
				client:   newClient(tgt, cfg.SetupConcurrency, cfg.Timeout),
				host:     tgt.host,
				runID:    runID,
				timeout:  cfg.Timeout,
				n:        cfg.Links,
				workers:  cfg.SetupConcurrency,
				progress: prog,
			}
			codes, res.Setup, err = c.create(ctx)
			c.client.CloseIdleConnections()
			if err != nil {
				return nil, err
			}
		}
		if cfg.SaveCodes != "" {
			if err := writeCodesFile(cfg.SaveCodes, codes); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrSetup, err)
			}
		}
		// Zipf rank k is codes[k]: shuffle so that popularity has nothing
		// to do with creation order (or the order of a file).
		shuf := rand.New(rand.NewPCG(seed, 0x5417))
		shuf.Shuffle(len(codes), func(i, j int) { codes[i], codes[j] = codes[j], codes[i] })
		res.Links = len(codes)
	}

	r := &runner{
		cfg:    cfg,
		target: tgt,
		client: newClient(tgt, cfg.Concurrency, cfg.Timeout),
		codes:  codes,
		seed:   seed,
		runID:  runID,
		stopCh: make(chan struct{}),
	}
	defer r.client.CloseIdleConnections()
	switch cfg.Workload {
	case WorkloadShorten:
		r.uses[opShorten] = true
	case WorkloadMixed:
		r.uses[opShorten] = true
		r.uses[opRedirect] = true
	default:
		r.uses[opRedirect] = true
	}
	if cfg.Rate > 0 {
		r.intervalNs = 1e9 / cfg.Rate
	}
	workers := make([]*worker, cfg.Concurrency)
	for i := range workers {
		workers[i] = newWorker(r, i)
	}

	res.Start = time.Now().UTC()
	r.base = time.Now()
	r.measureNs = int64(cfg.Warmup)
	r.endNs = r.measureNs + int64(cfg.Duration)
	r.stopAtNs.Store(math.MaxInt64)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if cfg.Rate > 0 {
				w.openLoop()
			} else {
				w.closedLoop()
			}
		}()
	}
	stopProgress := prog.start(r.progressLine(workers))

	// The first timer ends the warmup, where the CPU is sampled; the second
	// ends the recorded window.
	var cpuFrom cpuSample
	var cpuErr error
	inWindow := false
	timer := time.NewTimer(time.Duration(r.measureNs))
wait:
	for {
		select {
		case <-timer.C:
			if inWindow {
				break wait
			}
			inWindow = true
			cpuFrom, cpuErr = sampleCPU(cfg.CPUOf)
			timer.Reset(time.Duration(r.endNs - r.now()))
		case <-ctx.Done():
			res.Interrupted = true
			break wait
		}
	}
	timer.Stop()
	stopAt := r.now()
	r.stopAtNs.Store(stopAt)
	r.stopped.Store(true)
	cpuTo, err := sampleCPU(cfg.CPUOf)
	if cpuErr == nil {
		cpuErr = err
	}
	close(r.stopCh)
	wg.Wait()
	stopProgress()

	res.Elapsed = math.Max(0, float64(stopAt-r.measureNs)/1e9)
	r.collect(res, workers)
	if inWindow {
		groups := cfg.CPUOf
		if cpuErr != nil {
			// The harness's own CPU is always readable; a group is not
			// once one of its processes has exited.
			groups = nil
			res.CPUError = cpuErr.Error()
		}
		res.CPU = cpuUses(groups, cpuFrom, cpuTo, res.Total.OK)
	}
	return res, nil
}

// progressLine returns the progress reporter's line function for a run.
func (r *runner) progressLine(workers []*worker) func(time.Duration) string {
	var prevOK int64
	var live [liveBuckets]int64
	head := fmt.Sprintf("%s %s", r.cfg.Workload, loopDesc(r.cfg.Rate, r.cfg.Concurrency))
	return func(tick time.Duration) string {
		var ok, errs int64
		live = [liveBuckets]int64{}
		for _, w := range workers {
			ok += w.ok.Load()
			errs += w.errs.Load()
			w.live.addTo(&live)
		}
		rate := float64(ok-prevOK) / tick.Seconds()
		prevOK = ok
		now := r.now()
		phase := fmt.Sprintf("%5.1fs/%.1fs", float64(now-r.measureNs)/1e9, float64(r.endNs-r.measureNs)/1e9)
		if now < r.measureNs {
			phase = fmt.Sprintf("warmup %.1fs/%.1fs", float64(now)/1e9, float64(r.measureNs)/1e9)
		}
		return fmt.Sprintf("[%s] %s  %s ops/s  p99 %s  errors %d",
			head, phase, fmtCount(rate), fmtLatency(liveQuantile(&live, 0.99)), errs)
	}
}

// collect merges the workers' histograms and counters into res.
func (r *runner) collect(res *Result, workers []*worker) {
	total := newHist()
	res.Total.ErrorKinds = map[string]int64{}
	res.Ops = map[string]*OpStats{}
	for o := range numOps {
		if !r.uses[o] {
			continue
		}
		h := newHist()
		s := &OpStats{ErrorKinds: map[string]int64{}}
		for _, w := range workers {
			c := &w.counts[o]
			h.Merge(c.hist)
			for k, n := range c.errs {
				if n == 0 || errKind(k) == ekStatus {
					continue
				}
				s.ErrorKinds[errKindNames[k]] += n
			}
			for code, n := range c.status {
				s.ErrorKinds[statusKind(code)] += n
			}
		}
		total.Merge(h)
		fillStats(s, h, res.Elapsed)
		res.Ops[opNames[o]] = s
		for k, n := range s.ErrorKinds {
			res.Total.ErrorKinds[k] += n
		}
	}
	fillStats(&res.Total, total, res.Elapsed)
}

// fillStats sets the counts, throughput and latency of s from h and its
// error kinds.
func fillStats(s *OpStats, h *hdrhistogram.Histogram, elapsed float64) {
	s.OK = h.TotalCount()
	s.Latency = latencyOf(h)
	s.Errors = 0
	for _, n := range s.ErrorKinds {
		s.Errors += n
	}
	s.Requests = s.OK + s.Errors
	if elapsed > 0 {
		s.Throughput = math.Round(float64(s.OK)/elapsed*10) / 10
	}
}
