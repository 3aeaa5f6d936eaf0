package clicks

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Sink takes a router's click batches. The router implements it with the
// shard RPC client. FlushClicks returns nil only once the shard has durably
// applied (or had already applied) the batch; on an error the batch is sent
// again later, unchanged.
type Sink interface {
	FlushClicks(ctx context.Context, shard uint64, batch Batch) error
}

// Flusher defaults.
const (
	// DefaultInterval is the default flush interval.
	DefaultInterval = time.Second
	// DefaultMaxBatchDeltas is the default number of deltas per batch.
	DefaultMaxBatchDeltas = 4096
	// DefaultMaxPendingBatches is the default number of batches a shard
	// may have waiting.
	DefaultMaxPendingBatches = 300
	// DefaultMaxBatchBytes is the default bound of a batch's encoding. It
	// keeps a batch inside a node's RPC body limit (64 KiB) and a Raft
	// entry small; one delta is at most about 50 KiB, so it always fits.
	// Smaller batches would pace more finely but cost the shards more
	// CPU per click (a Raft entry and an apply each).
	DefaultMaxBatchBytes = 56 << 10
)

// FlusherConfig configures a Flusher.
type FlusherConfig struct {
	// Router is this router's ID (required): it keys every batch.
	Router string
	// Counter is the counter to drain (required).
	Counter *Counter
	// Sink takes the batches (required).
	Sink Sink
	// Interval between flushes; DefaultInterval when zero.
	Interval time.Duration
	// Timeout bounds one flush's sends; Interval (at least 5 s) when zero.
	Timeout time.Duration
	// MaxBatchDeltas splits larger flushes of one shard into several
	// batches; DefaultMaxBatchDeltas when zero.
	MaxBatchDeltas int
	// MaxBatchBytes bounds the encoded size of a batch (a single larger
	// delta still goes alone); DefaultMaxBatchBytes when zero.
	MaxBatchBytes int
	// MaxPendingBatches bounds the batches waiting for one unreachable
	// shard; beyond it new deltas for that shard are dropped (and
	// counted in FlusherStats.DroppedClicks). DefaultMaxPendingBatches when
	// zero.
	MaxPendingBatches int
	// PaceWindow is how long after each tick the flush loop spreads that
	// flush's batches over: each shard sends its queue evenly across the
	// window, the shards' sends interleaved, instead of every batch at the
	// tick. Interval/2 when zero, at most Interval; negative sends
	// everything at the tick. Flush and Close never wait: a Flush call
	// also makes a paced flush under way send the rest at once.
	PaceWindow time.Duration
	// Logger, when set, logs failed flushes.
	Logger *slog.Logger
	// Now is the clock the first sequence is taken from; time.Now when nil.
	Now func() time.Time
}

// FlusherStats counts a flusher's work.
type FlusherStats struct {
	// Sent counts acknowledged batches; Failed counts failed attempts.
	Sent, Failed uint64
	// Pending is the number of batches waiting to be (re)sent.
	Pending int
	// DroppedClicks counts clicks (human and bot) dropped because a shard
	// had MaxPendingBatches waiting.
	DroppedClicks uint64
}

// Flusher drains a Counter every interval and sends each shard its batch,
// in sequence order, retrying failed batches unchanged.
type Flusher struct {
	cfg FlusherConfig

	flushMu sync.Mutex // one flush at a time; guards seq and pending
	seq     uint64
	pending map[uint64][]Batch // per shard, in sequence order

	// hurryMu guards hurry, the cancel func of the paced flush under way
	// (nil when none), and waiting, the Flush calls waiting for flushMu:
	// while one waits, a paced flush sends the rest of its batches at once
	// instead of making Flush wait for its window.
	hurryMu sync.Mutex
	hurry   context.CancelFunc
	waiting int

	// wait waits d or until ctx ends; tests replace it.
	wait func(ctx context.Context, d time.Duration)

	statsMu sync.Mutex
	stats   FlusherStats

	startOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}
	done      chan struct{}
	loopCtx   context.Context
	cancel    context.CancelFunc
	started   bool
}

// NewFlusher returns a flusher; Start runs it.
func NewFlusher(cfg FlusherConfig) (*Flusher, error) {
	if cfg.Router == "" || len(cfg.Router) > MaxRouterLen {
		return nil, fmt.Errorf("clicks: router ID %q: must be 1..%d bytes", cfg.Router, MaxRouterLen)
	}
	if cfg.Counter == nil || cfg.Sink == nil {
		return nil, errors.New("clicks: flusher needs a counter and a sink")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = max(cfg.Interval, 5*time.Second)
	}
	if cfg.MaxBatchDeltas <= 0 {
		cfg.MaxBatchDeltas = DefaultMaxBatchDeltas
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = DefaultMaxBatchBytes
	}
	if cfg.MaxPendingBatches <= 0 {
		cfg.MaxPendingBatches = DefaultMaxPendingBatches
	}
	if cfg.PaceWindow == 0 {
		cfg.PaceWindow = cfg.Interval / 2
	}
	cfg.PaceWindow = min(cfg.PaceWindow, cfg.Interval)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// See the package doc: a restarted router continues above its
	// previous sequences.
	start := cfg.Now().UnixMicro()
	if start < 1 {
		start = 1
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	return &Flusher{
		loopCtx: loopCtx,
		cancel:  cancel,
		cfg:     cfg,
		seq:     uint64(start),
		pending: make(map[uint64][]Batch),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		wait:    sleepCtx,
	}, nil
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Start starts the flush loop. It is a no-op after the first call or after
// Close.
func (f *Flusher) Start() {
	f.startOnce.Do(func() {
		select {
		case <-f.stop:
			return
		default:
		}
		f.started = true
		go f.loop()
	})
}

func (f *Flusher) loop() {
	defer close(f.done)
	t := time.NewTicker(f.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		// Close cancels loopCtx: it must not wait for a stuck send.
		ctx, cancel := context.WithTimeout(f.loopCtx, f.cfg.Timeout)
		if err := f.paced(ctx); err != nil && f.cfg.Logger != nil {
			f.cfg.Logger.Warn("click flush failed; will retry", "err", err)
		}
		cancel()
	}
}

// Flush drains the counter into new batches and sends every pending batch,
// shards in parallel, each shard's batches in order, stopping at a shard's
// first failure. It returns the failures joined; failed batches stay
// pending. A paced flush of the loop under way sends its remaining batches
// at once first.
func (f *Flusher) Flush(ctx context.Context) error {
	f.hurryMu.Lock()
	f.waiting++
	if f.hurry != nil {
		f.hurry()
	}
	f.hurryMu.Unlock()
	f.flushMu.Lock()
	defer f.flushMu.Unlock()
	f.hurryMu.Lock()
	f.waiting--
	f.hurryMu.Unlock()
	return f.flushLocked(ctx, 0)
}

// paced is the loop's flush: Flush with each shard's batches spread over
// the pace window.
func (f *Flusher) paced(ctx context.Context) error {
	f.flushMu.Lock()
	defer f.flushMu.Unlock()
	return f.flushLocked(ctx, max(f.cfg.PaceWindow, 0))
}

// flushLocked drains and sends, each shard's batches spread over window
// (none when zero; see paceDelay). flushMu must be held.
func (f *Flusher) flushLocked(ctx context.Context, window time.Duration) error {
	var dropped uint64
	for shard, deltas := range f.cfg.Counter.Drain() {
		for _, chunk := range split(deltas, f.cfg.MaxBatchDeltas, f.cfg.MaxBatchBytes-batchOverhead-len(f.cfg.Router)) {
			if len(f.pending[shard]) >= f.cfg.MaxPendingBatches {
				for _, d := range chunk {
					dropped += d.Clicks + d.Bots
				}
				continue
			}
			f.seq++
			f.pending[shard] = append(f.pending[shard], Batch{Router: f.cfg.Router, Seq: f.seq, Deltas: chunk})
		}
	}
	type work struct {
		shard uint64
		queue []Batch
		sent  int
		err   error
	}
	var ws []*work
	for shard, queue := range f.pending {
		if len(queue) == 0 {
			delete(f.pending, shard)
			continue
		}
		ws = append(ws, &work{shard: shard, queue: queue})
	}
	// Shard order: the shards' offsets inside the pace window.
	slices.SortFunc(ws, func(a, b *work) int { return cmp.Compare(a.shard, b.shard) })
	pace := window > 0 && len(ws) > 0
	paceCtx := context.Background()
	if pace {
		var hurry context.CancelFunc
		paceCtx, hurry = context.WithCancel(ctx)
		defer hurry()
		f.hurryMu.Lock()
		f.hurry = hurry
		if f.waiting > 0 {
			hurry()
		}
		f.hurryMu.Unlock()
		defer func() {
			f.hurryMu.Lock()
			f.hurry = nil
			f.hurryMu.Unlock()
		}()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var due func(j int)
			if pace {
				due = func(j int) {
					d := paceDelay(window, j, len(w.queue), i, len(ws)) - time.Since(start)
					if d > 0 && paceCtx.Err() == nil {
						f.wait(paceCtx, d)
					}
				}
			}
			w.sent, w.err = f.send(ctx, w.shard, w.queue, due)
		}()
	}
	wg.Wait()
	var errs []error
	for _, w := range ws {
		if rest := w.queue[w.sent:]; len(rest) > 0 {
			f.pending[w.shard] = rest
		} else {
			delete(f.pending, w.shard)
		}
		if w.err != nil {
			errs = append(errs, w.err)
		}
	}
	f.statsMu.Lock()
	f.stats.DroppedClicks += dropped
	f.stats.Pending = 0
	for _, q := range f.pending {
		f.stats.Pending += len(q)
	}
	f.statsMu.Unlock()
	return errors.Join(errs...)
}

// batchOverhead bounds a batch's encoding without router and deltas.
const batchOverhead = 1 + 2*binary.MaxVarintLen64 + binary.MaxVarintLen32

// split cuts deltas into runs of at most maxN deltas and maxBytes encoded
// bytes (a delta larger than maxBytes alone).
func split(deltas []Delta, maxN, maxBytes int) [][]Delta {
	var out [][]Delta
	start, size := 0, 0
	for i := range deltas {
		n := deltaSize(&deltas[i])
		if i > start && (i-start >= maxN || size+n > maxBytes) {
			out = append(out, deltas[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(deltas) {
		out = append(out, deltas[start:])
	}
	return out
}

// deltaSize bounds the encoded size of d.
func deltaSize(d *Delta) int {
	n := len(d.Code) + len(d.Visitors) + 6*binary.MaxVarintLen64
	for _, t := range [...][]Count{d.Referrers, d.Browsers, d.OSes, d.Devices} {
		n += binary.MaxVarintLen64
		for _, c := range t {
			n += len(c.Key) + 2*binary.MaxVarintLen64
		}
	}
	return n
}

// paceDelay is when, after the start of a flush spread over window, the
// j-th of n batches of the i-th of m shards is due: each shard's batches
// evenly over the window, shard i offset by i/m of one batch's slot, so
// the shards take turns rather than sending together. It is below window
// and grows with j.
func paceDelay(window time.Duration, j, n, i, m int) time.Duration {
	if n <= 0 || m <= 0 {
		return 0
	}
	// (j + i/m) / n of the window, in integer arithmetic.
	return time.Duration(int64(window) / int64(n) * int64(j*m+i) / int64(m))
}

// send sends queue in order and returns how many were acknowledged. When
// pace is not nil, it is called with each batch's index before the batch
// is sent, and waits until the batch is due.
func (f *Flusher) send(ctx context.Context, shard uint64, queue []Batch, pace func(j int)) (int, error) {
	for i, b := range queue {
		if pace != nil {
			pace(i)
		}
		if err := f.cfg.Sink.FlushClicks(ctx, shard, b); err != nil {
			f.statsMu.Lock()
			f.stats.Failed++
			f.statsMu.Unlock()
			return i, fmt.Errorf("clicks: flush to shard %d (seq %d): %w", shard, b.Seq, err)
		}
		f.statsMu.Lock()
		f.stats.Sent++
		f.statsMu.Unlock()
	}
	return len(queue), nil
}

// Stats returns the flusher's counters.
func (f *Flusher) Stats() FlusherStats {
	f.statsMu.Lock()
	defer f.statsMu.Unlock()
	return f.stats
}

// Close stops the loop, waits for it, then flushes until every count is
// acknowledged or ctx ends, retrying failures with a short backoff. It
// returns nil when nothing was lost. Record calls after Close starts are
// not guaranteed to be flushed: stop the redirect traffic first.
func (f *Flusher) Close(ctx context.Context) error {
	f.stopOnce.Do(func() {
		close(f.stop)
		f.cancel()
	})
	f.startOnce.Do(func() {}) // a later Start does nothing
	if f.started {
		<-f.done
	}
	backoff := 20 * time.Millisecond
	for {
		err := f.Flush(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("clicks: close: %d batches not acknowledged: %w", f.Stats().Pending, errors.Join(err, ctx.Err()))
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}
