package bench

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// op is the kind of one request.
type op uint8

const (
	opShorten op = iota
	opRedirect
	numOps
)

var opNames = [numOps]string{opShorten: "shorten", opRedirect: "redirect"}

// Histogram range and precision: microseconds from 1 to MaxLatency, three
// significant digits.
const (
	histLowest = 1
	histSigFig = 3
)

var histHighest = MaxLatency.Microseconds()

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histSigFig)
}

// opCounts is what one worker counted for one op kind inside the recorded
// window.
type opCounts struct {
	hist   *hdrhistogram.Histogram // latencies of successes, µs
	errs   [numErrKinds]int64
	status map[int]int64 // unexpected HTTP statuses by code
}

// worker is one load-generating goroutine's state. Only that goroutine
// writes it, except the atomic counters the progress reporter reads.
type worker struct {
	id  int
	run *runner

	counts [numOps]opCounts

	// Read by the progress reporter.
	ok   atomic.Int64 // successes, warmup included
	errs atomic.Int64 // errors, warmup included
	live liveHist     // latencies of recorded successes, µs

	get, post *fasthttp.Request
	resp      *fasthttp.Response
	uri       []byte
	body      []byte
	n         int64 // requests this worker made, the closed loop's op index

	rng  *rand.Rand
	zipf *rand.Zipf

	timer *time.Timer // open loop: waits for an intended send time
}

func newWorker(r *runner, id int) *worker {
	w := &worker{id: id, run: r}
	for o := range w.counts {
		if r.uses[o] {
			w.counts[o].hist = newHist()
		}
	}
	w.rng = rand.New(rand.NewPCG(r.seed, uint64(id)+1))
	if n := len(r.codes); n > 0 && r.cfg.Workload != WorkloadCold {
		w.zipf = rand.NewZipf(w.rng, r.cfg.ZipfS, 1, uint64(n-1))
	}
	host := r.target.host
	w.get = new(fasthttp.Request)
	w.get.Header.SetMethod(fasthttp.MethodGet)
	w.get.Header.SetHost(host)
	w.post = new(fasthttp.Request)
	w.post.Header.SetMethod(fasthttp.MethodPost)
	w.post.Header.SetHost(host)
	w.post.SetRequestURI(shortenPath)
	w.post.Header.SetContentType("application/json")
	w.resp = new(fasthttp.Response)
	w.uri = make([]byte, 0, 64)
	w.body = make([]byte, 0, 128)
	return w
}

const shortenPath = "/api/v1/links"

// opFor returns the kind of the request with index i (per worker in the
// closed loop, global in the open loop): mixed sends a shorten as every
// 11th request, so ten redirects to one shorten.
func (w *worker) opFor(i int64) op {
	switch w.run.cfg.Workload {
	case WorkloadShorten:
		return opShorten
	case WorkloadMixed:
		if i%11 == 10 {
			return opShorten
		}
	}
	return opRedirect
}

// pickCode draws the index of the next code to redirect.
func (w *worker) pickCode() int {
	if w.zipf != nil {
		return int(w.zipf.Uint64())
	}
	return w.rng.IntN(len(w.run.codes))
}

// do sends one request of kind o and returns the error kind (ekNone on
// success) and, for ekStatus, the status code.
func (w *worker) do(o op) (errKind, int) {
	var req *fasthttp.Request
	if o == opShorten {
		w.body = appendShortenBody(w.body[:0], w.run.runID, w.id, w.n)
		w.post.SetBody(w.body)
		req = w.post
	} else {
		code := w.run.codes[w.pickCode()]
		w.uri = append(append(w.uri[:0], '/'), code...)
		w.get.SetRequestURIBytes(w.uri)
		req = w.get
	}
	w.n++
	if err := w.run.client.DoTimeout(req, w.resp, w.run.cfg.Timeout); err != nil {
		return classifyErr(err), 0
	}
	status := w.resp.StatusCode()
	if status >= 400 {
		return ekStatus, status
	}
	if o == opShorten {
		if status != fasthttp.StatusCreated {
			return ekBadResponse, 0
		}
		if _, ok := findCode(w.resp.Body()); !ok {
			return ekBadResponse, 0
		}
		return ekNone, 0
	}
	if !isRedirect(status) || len(w.resp.Header.Peek(fasthttp.HeaderLocation)) == 0 {
		return ekBadRedirect, 0
	}
	return ekNone, 0
}

// appendShortenBody appends the JSON body of a shorten with a URL unique to
// (run, worker, n).
func appendShortenBody(b []byte, runID string, worker int, n int64) []byte {
	b = append(b, `{"url":"https://example.com/bench/`...)
	b = append(b, runID...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(worker), 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, n, 10)
	return append(b, `"}`...)
}

// record counts the outcome of one request whose latency clock started at
// start (ns since the run's base) and ended at end.
func (w *worker) record(o op, start, end int64, ek errKind, status int) {
	if ek != ekNone {
		w.errs.Add(1)
	} else {
		w.ok.Add(1)
	}
	if !w.run.inWindow(start) {
		return
	}
	c := &w.counts[o]
	if ek != ekNone {
		c.errs[ek]++
		if ek == ekStatus {
			if c.status == nil {
				c.status = make(map[int]int64)
			}
			c.status[status]++
		}
		return
	}
	us := min((end-start)/1000, histHighest)
	_ = c.hist.RecordValue(us) // cannot fail: 0 <= us <= histHighest
	w.live.record(us)
}

// closedLoop sends requests back to back until the run stops.
func (w *worker) closedLoop() {
	r := w.run
	for !r.stopped.Load() {
		o := w.opFor(w.n)
		start := r.now()
		ek, status := w.do(o)
		w.record(o, start, r.now(), ek, status)
	}
}

// openLoop takes intended send times from the shared schedule, waits for
// each, sends, and measures from the intended time.
func (w *worker) openLoop() {
	r := w.run
	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	defer w.timer.Stop()
	for !r.stopped.Load() {
		i := r.seq.Add(1) - 1
		intended := r.intended(i)
		if intended >= r.endNs {
			return
		}
		o := w.opFor(i)
		now := r.now()
		if due := r.dueBefore(now); due-i+int64(r.cfg.Concurrency) > int64(r.cfg.MaxInFlight) {
			// The requests due and unanswered would exceed the bound: the
			// target is too far behind the schedule; shed this one.
			w.record(o, intended, now, ekInFlightLimit, 0)
			continue
		}
		// The latency clock starts at the intended time when the worker is
		// already late for it: an earlier answer held it up, and the wait
		// is the target's doing. A worker that is early waits on a timer
		// and starts the clock when it sends: timers fire up to about a
		// millisecond late, and that lateness is the harness's own.
		start := intended
		if wait := intended - now; wait > 0 {
			w.timer.Reset(time.Duration(wait))
			select {
			case <-w.timer.C:
			case <-r.stopCh:
				return
			}
			start = r.now()
		}
		ek, status := w.do(o)
		w.record(o, start, r.now(), ek, status)
	}
}

// extractCode returns the value of the first "code" member of a JSON object
// such as the 201 answer of a shorten. Codes never need JSON escapes; a value
// with a backslash or without a closing quote is rejected.
func extractCode(body []byte) (string, bool) {
	code, ok := findCode(body)
	return string(code), ok
}

// findCode is extractCode without the copy: the result aliases body.
func findCode(body []byte) ([]byte, bool) {
	const key = `"code"`
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return nil, false
	}
	rest := bytes.TrimLeft(body[i+len(key):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return nil, false
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if len(rest) == 0 || rest[0] != '"' {
		return nil, false
	}
	rest = rest[1:]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return nil, false
	}
	return rest[:end], true
}
