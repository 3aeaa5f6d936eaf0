package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// ErrSetup is wrapped by the errors of making a run's links.
var ErrSetup = errors.New("bench setup failed")

// maxCodeLen bounds a code read from a file or an answer: longer lines are
// not codes (aliases are at most 64 characters).
const maxCodeLen = 128

// base62 is the code alphabet of synthesized codes.
const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// synthCodes returns n random 7-character base62 codes drawn from seed.
func synthCodes(n int, seed uint64) []string {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	codes := make([]string, n)
	var buf [7]byte
	for i := range codes {
		for j := range buf {
			buf[j] = base62[r.IntN(len(base62))]
		}
		codes[i] = string(buf[:])
	}
	return codes
}

// validCode reports whether s can be sent as a path segment as it is.
func validCode(s []byte) bool {
	if len(s) == 0 || len(s) > maxCodeLen {
		return false
	}
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// parseCodes reads codes one a line; blank lines and lines starting with
// '#' are skipped. At most limit codes are read when limit > 0.
func parseCodes(r io.Reader, limit int) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	var codes []string
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		if !validCode(b) {
			return nil, fmt.Errorf("line %d: %q is not a code", line, truncate(b, 40))
		}
		codes = append(codes, string(b))
		if limit > 0 && len(codes) == limit {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return codes, nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// readCodesFile reads a codes file (see parseCodes).
func readCodesFile(path string, limit int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open codes file: %w", err)
	}
	defer f.Close()
	codes, err := parseCodes(f, limit)
	if err != nil {
		return nil, fmt.Errorf("codes file %s: %w", path, err)
	}
	if len(codes) == 0 {
		return nil, fmt.Errorf("codes file %s has no codes", path)
	}
	return codes, nil
}

// writeCodesFile writes codes one a line.
func writeCodesFile(path string, codes []string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create codes file: %w", err)
	}
	w := bufio.NewWriter(f)
	for _, c := range codes {
		w.WriteString(c)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write codes file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close codes file %s: %w", path, err)
	}
	return nil
}

// createAttempts is how often one link's create is tried before it counts
// as failed.
const createAttempts = 3

// creator makes the links of a run with concurrent POSTs.
type creator struct {
	client   *fasthttp.HostClient
	host     string
	runID    string
	timeout  time.Duration
	n        int
	workers  int
	progress *progress

	next    atomic.Int64
	created atomic.Int64
	failed  atomic.Int64

	mu      sync.Mutex
	lastErr string // the last failure, for the error message
}

// create makes n links and returns their codes in creation order. Up to
// 1% of the creates may fail (they are left out); more is an error.
func (c *creator) create(ctx context.Context) ([]string, *SetupStats, error) {
	codes := make([]string, c.n)
	start := time.Now()
	var prevDone int64
	stopProgress := c.progress.start(func(tick time.Duration) string {
		done := c.created.Load()
		rate := float64(done-prevDone) / tick.Seconds()
		prevDone = done
		return fmt.Sprintf("creating links: %s/%s (%s/s), %d failed",
			fmtCount(float64(done)), fmtCount(float64(c.n)), fmtCount(rate), c.failed.Load())
	})
	var wg sync.WaitGroup
	for range min(c.workers, c.n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.loop(ctx, codes)
		}()
	}
	wg.Wait()
	stopProgress()
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("%w: creating links interrupted: %w", ErrSetup, err)
	}
	failed := int(c.failed.Load())
	if failed*100 > c.n {
		c.mu.Lock()
		last := c.lastErr
		c.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: %d of %d creates failed (last: %s)", ErrSetup, failed, c.n, last)
	}
	out := codes[:0]
	for _, code := range codes {
		if code != "" {
			out = append(out, code)
		}
	}
	secs := time.Since(start).Seconds()
	stats := &SetupStats{Created: len(out), Failed: failed, Seconds: round3(secs)}
	if secs > 0 {
		stats.PerSecond = math2(float64(len(out)) / secs)
	}
	return out, stats, nil
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }
func math2(v float64) float64  { return float64(int64(v*100+0.5)) / 100 }

// loop creates links by index until every index is taken.
func (c *creator) loop(ctx context.Context, codes []string) {
	req := new(fasthttp.Request)
	resp := new(fasthttp.Response)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetHost(c.host)
	req.SetRequestURI(shortenPath)
	req.Header.SetContentType("application/json")
	var body []byte
	for ctx.Err() == nil {
		i := c.next.Add(1) - 1
		if i >= int64(c.n) {
			return
		}
		body = appendShortenBody(body[:0], c.runID, -1, i)
		req.SetBody(body)
		var why string
		for attempt := range createAttempts {
			if attempt > 0 && !sleepCtx(ctx, time.Duration(attempt)*50*time.Millisecond) {
				return
			}
			code, reason := c.createOne(req, resp)
			if reason == "" {
				codes[i] = code
				c.created.Add(1)
				why = ""
				break
			}
			why = reason
		}
		if why != "" {
			c.failed.Add(1)
			c.mu.Lock()
			c.lastErr = why
			c.mu.Unlock()
		}
	}
}

// createOne sends one create and returns the code, or a reason it failed.
func (c *creator) createOne(req *fasthttp.Request, resp *fasthttp.Response) (string, string) {
	if err := c.client.DoTimeout(req, resp, c.timeout); err != nil {
		return "", fmt.Sprintf("%s: %v", errKindNames[classifyErr(err)], err)
	}
	if s := resp.StatusCode(); s != fasthttp.StatusCreated {
		return "", statusKind(s) + ": " + string(truncate(resp.Body(), 200))
	}
	code, ok := findCode(resp.Body())
	if !ok || !validCode(code) {
		return "", ErrKindBadResponse + ": " + strconv.Quote(string(truncate(resp.Body(), 200)))
	}
	return string(code), ""
}

// sleepCtx sleeps for d or until ctx is done; it reports whether it slept
// the whole time.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
