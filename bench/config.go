package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"
)

// Workload names what a run sends.
type Workload string

// The workloads; see the package documentation.
const (
	WorkloadShorten  Workload = "shorten"
	WorkloadRedirect Workload = "redirect"
	WorkloadMixed    Workload = "mixed"
	WorkloadCold     Workload = "cold"
)

// Workloads lists every workload, in the order of the documentation.
var Workloads = []Workload{WorkloadShorten, WorkloadRedirect, WorkloadMixed, WorkloadCold}

// needsCodes reports whether the workload reads existing links.
func (w Workload) needsCodes() bool { return w != WorkloadShorten }

// defaultLinks is the number of links a workload reads when Config.Links is 0.
func (w Workload) defaultLinks() int {
	if w == WorkloadCold {
		return 1_000_000
	}
	return 100_000
}

// CodesSource says where the codes of the redirect, mixed and cold workloads
// come from.
type CodesSource string

const (
	// CodesCreate makes the links with POST /api/v1/links before the run.
	CodesCreate CodesSource = "create"
	// CodesNone synthesizes random codes and sends no POST: for servers that
	// redirect every path (the nginx baseline).
	CodesNone CodesSource = "none"
	// CodesFile reads the codes from Config.CodesFile, one a line.
	CodesFile CodesSource = "file"
)

// Defaults of the zero fields of Config.
const (
	DefaultConcurrency      = 64
	DefaultDuration         = 10 * time.Second
	DefaultWarmup           = 2 * time.Second
	DefaultTimeout          = 5 * time.Second
	DefaultZipfS            = 1.1
	DefaultSetupConcurrency = 128
	// MaxLatency is the largest latency the histograms hold; larger values
	// are recorded as MaxLatency.
	MaxLatency = 100 * time.Second
	// MaxConcurrency bounds Config.Concurrency: each worker holds an HDR
	// histogram of about 150 KB per op kind.
	MaxConcurrency = 4096
)

// ErrConfig is wrapped by every validation error of a Config.
var ErrConfig = errors.New("invalid bench configuration")

// Config is one run of the harness. Zero fields take the defaults above.
type Config struct {
	// Target is the base URL of the router, e.g. "http://127.0.0.1:8080".
	// Only the scheme (http or https) and host:port are used.
	Target string
	// Workload is what to send (default redirect).
	Workload Workload
	// Concurrency is the number of workers and the most connections to the
	// target (default 64, at most MaxConcurrency). In the open loop it is
	// the most requests in flight on the wire at once.
	Concurrency int
	// Rate, when > 0, selects the open loop: requests per second, spread
	// evenly over time. 0 selects the closed loop.
	Rate float64
	// MaxInFlight bounds, in the open loop, the requests that are due
	// (their intended send time has passed) and not yet answered; a request
	// over the bound is not sent and counts as an "inflight_limit" error.
	// Default: one second of Rate, and at least Concurrency.
	MaxInFlight int
	// Duration is the recorded part of the run (default 10s).
	Duration time.Duration
	// Warmup runs the workload before the recorded part without recording
	// it (default 2s; a negative value means none).
	Warmup time.Duration
	// Timeout bounds each request (default 5s).
	Timeout time.Duration
	// Links is N, the number of links redirect, mixed and cold draw from
	// (default 100,000; 1,000,000 for cold). With CodesFile, 0 means every
	// code of the file and a smaller N uses the file's first N.
	Links int
	// CodesFrom says where those links come from (default CodesCreate).
	CodesFrom CodesSource
	// CodesFile is the file CodesFile reads.
	CodesFile string
	// SaveCodes, when set, is a file the run's codes are written to (one a
	// line), for a later run with CodesFile.
	SaveCodes string
	// SetupConcurrency is the number of creates in flight while the links
	// are made (default 128).
	SetupConcurrency int
	// ZipfS is the exponent s of the Zipf distribution of the redirect
	// and mixed workloads (default 1.1; must be > 1).
	ZipfS float64
	// Seed makes the code draws and synthetic codes reproducible; 0 means
	// a seed from the clock.
	Seed uint64
	// Label names the run in tables (default: the workload).
	Label string
	// Progress receives the live progress lines; nil means none.
	Progress io.Writer
	// ProgressTTY makes progress lines overwrite each other with a carriage
	// return, for a terminal. DetectTTY tells whether a writer is one.
	ProgressTTY bool
	// ProgressInterval is the time between progress lines (default 1s).
	ProgressInterval time.Duration
	// CPUOf names local processes whose CPU the run measures over its
	// recorded window, each group reported per successful request next to
	// the harness's own (Result.CPU). Linux only (/proc/PID/stat).
	CPUOf []ProcessGroup
}

// withDefaults returns c with its zero fields set to the defaults.
func (c Config) withDefaults() Config {
	if c.Workload == "" {
		c.Workload = WorkloadRedirect
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Warmup == 0 {
		c.Warmup = DefaultWarmup
	} else if c.Warmup < 0 {
		c.Warmup = 0
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.CodesFrom == "" {
		c.CodesFrom = CodesCreate
	}
	if c.Links == 0 && c.CodesFrom != CodesFile {
		c.Links = c.Workload.defaultLinks()
	}
	if c.SetupConcurrency == 0 {
		c.SetupConcurrency = DefaultSetupConcurrency
	}
	if c.ZipfS == 0 {
		c.ZipfS = DefaultZipfS
	}
	if c.Rate > 0 && c.MaxInFlight == 0 {
		c.MaxInFlight = max(c.Concurrency, int(c.Rate))
	}
	if c.Label == "" {
		c.Label = string(c.Workload)
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = time.Second
	}
	return c
}

// validate checks a Config that has its defaults.
func (c Config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	if _, err := parseTarget(c.Target); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	known := false
	for _, w := range Workloads {
		known = known || w == c.Workload
	}
	switch {
	case !known:
		return bad("workload %q is not one of shorten, redirect, mixed, cold", c.Workload)
	case c.Concurrency < 1 || c.Concurrency > MaxConcurrency:
		return bad("concurrency %d is not in 1..%d", c.Concurrency, MaxConcurrency)
	case c.Rate < 0:
		return bad("rate %g is negative", c.Rate)
	case c.Rate > 0 && c.MaxInFlight < c.Concurrency:
		return bad("max in-flight %d is below the concurrency %d", c.MaxInFlight, c.Concurrency)
	case c.Duration < 0:
		return bad("duration %v is negative", c.Duration)
	case c.Timeout < 0 || c.Timeout > MaxLatency:
		return bad("timeout %v is not in 0..%v", c.Timeout, MaxLatency)
	case c.Links < 0:
		return bad("links %d is negative", c.Links)
	case c.SetupConcurrency < 1:
		return bad("setup concurrency %d is below 1", c.SetupConcurrency)
	case !(c.ZipfS > 1) || c.ZipfS > 100:
		return bad("zipf exponent %g is not in (1, 100]", c.ZipfS)
	case c.ProgressInterval < 0:
		return bad("progress interval %v is negative", c.ProgressInterval)
	}
	seen := make(map[string]bool, len(c.CPUOf))
	for _, g := range c.CPUOf {
		if err := checkGroupName(g.Name); err != nil {
			return bad("%v", err)
		}
		if seen[g.Name] {
			return bad("process group %q is named twice", g.Name)
		}
		seen[g.Name] = true
		if len(g.PIDs) == 0 {
			return bad("process group %q has no process", g.Name)
		}
		for _, pid := range g.PIDs {
			if pid <= 0 {
				return bad("process group %q: %d is not a process ID", g.Name, pid)
			}
		}
	}
	switch c.CodesFrom {
	case CodesCreate:
		if c.Workload.needsCodes() && c.Links == 0 {
			return bad("links must be > 0 to create links")
		}
	case CodesNone:
		if c.Workload == WorkloadShorten || c.Workload == WorkloadMixed {
			return bad("codes from none sends no POST, so it cannot run the %s workload", c.Workload)
		}
		if c.Links == 0 {
			return bad("links must be > 0 to synthesize codes")
		}
	case CodesFile:
		if c.CodesFile == "" {
			return bad("codes from file needs a file name")
		}
	default:
		return bad("codes source %q is not one of create, none, file", c.CodesFrom)
	}
	return nil
}

// target is a parsed Config.Target.
type target struct {
	addr  string // host:port to dial
	host  string // Host header
	isTLS bool
}

// parseTarget parses a base URL "http[s]://host[:port][/]".
func parseTarget(s string) (target, error) {
	if s == "" {
		return target{}, errors.New("target URL is empty")
	}
	u, err := url.Parse(s)
	if err != nil {
		return target{}, fmt.Errorf("target %q: %w", s, err)
	}
	var t target
	switch u.Scheme {
	case "http":
	case "https":
		t.isTLS = true
	default:
		return target{}, fmt.Errorf("target %q: scheme must be http or https", s)
	}
	if u.Host == "" || u.Hostname() == "" {
		return target{}, fmt.Errorf("target %q has no host", s)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return target{}, fmt.Errorf("target %q must be a bare base URL (scheme://host:port)", s)
	}
	if strings.ContainsAny(u.Host, " \t\r\n") {
		return target{}, fmt.Errorf("target %q has a malformed host", s)
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if t.isTLS {
			port = "443"
		}
	}
	t.addr = net.JoinHostPort(u.Hostname(), port)
	if h, _, err := net.SplitHostPort(t.addr); err != nil || h == "" || strings.ContainsAny(h, "[]/@") {
		return target{}, fmt.Errorf("target %q has a malformed host", s)
	}
	t.host = t.addr
	return t, nil
}
