package node

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/raftstore"
)

// Creates are coalesced per shard: the creates that arrive at a leader
// while its proposals are in flight (at most maxInFlight) go into the next
// Raft entry together, as one linkstore.CreateBatch. One entry then pays once for what
// a Raft entry costs (the log append, the envelope, the future and its
// waiter, the replication message, the FSM's bookkeeping) however many
// links it carries. A lone create waits for nothing: it is proposed at once
// as a batch of one. When a proposal ends, the batcher waits up to
// batchLinger for the clients it just answered to send their next creates
// (only as many as have not yet), so that they join the next entry rather
// than the one after it.
//
// Idempotency stays per request: each item carries its request ID, and
// linkstore keeps the request table (see linkstore.RequestWindow), so a
// retried create (same request ID, in any later batch or in the same one)
// is answered with its first result and never creates a second link.
const (
	// maxBatchItems bounds the creates of one entry the batcher makes
	// (linkstore.MaxBatchItems is the bound of the format, which bulk
	// creates use).
	maxBatchItems = 256
	// maxBatchBytes bounds the encoded size of one entry's batch. A single
	// create (at most an 8 KiB URL, an alias and a request ID) always fits.
	maxBatchBytes = 256 << 10
	// batchQueue is the capacity of a batcher's queue: creates waiting
	// for the next proposal beyond it wait to be queued.
	batchQueue = 4 * maxBatchItems
)

// maxInFlight bounds a shard's proposals in flight at once. One is
// classic group commit: while an entry replicates and applies, the next
// one fills. On the 2-core benchmark machine it measured as good as or
// better than 2, 4 or 16 at 16 and at 256 concurrent creates, with raft's
// pipelined replication and without it (docs/BENCHMARKS.md); the shards'
// groups still replicate side by side. Without batchLinger a closed loop
// of many clients settles into two cohorts that take turns (batches of
// 33, 31, 33, 31 … at 64 connections): one cohort's round replicates while
// the other's answers go out and its next requests arrive; more slots
// fragment the cohorts into batches of one (docs/BENCHMARKS.md, "Shorten
// (this session)"). A variable for the benchmarks (export_test.go).
var maxInFlight = 1

// batchLinger is how long a batcher waits, when a slot is free, for the
// creates of the clients it expects back (see batcher.run) before it
// proposes without them. 0 turns the wait off. A variable for the
// benchmarks (export_test.go).
var batchLinger = 2 * time.Millisecond

// createBatching is whether New starts a batcher per shard. Tests and
// benchmarks turn it off to measure the previous path (one Raft entry per
// create, idempotency in raftstore's table); see export_test.go.
var createBatching = true

// createCall is one create waiting in a batcher.
type createCall struct {
	requestID string
	cmd       []byte // linkstore.AppendCreate encoding
	queued    int64  // when it was queued (UnixNano)
	done      chan createOutcome
}

// createOutcome is a create's result: the encoded linkstore.Result, nil
// when the entry had been applied before a restart (see Node.create), or
// the proposal's error.
type createOutcome struct {
	raw []byte
	// index is the Raft index of the entry that applied the create; 0
	// when that entry did not (a retry answered from the request table).
	index uint64
	err   error
}

// batcher owns the create queue of one shard's group. Its goroutine
// (run) collects the queued creates, proposes them as one entry, and hands
// every caller its own result; it stops on stop and closes done.
type batcher struct {
	n        *Node
	shard    uint64
	g        *raftstore.Group
	queue    chan *createCall
	inFlight int // maxInFlight when the batcher started
	linger   time.Duration
	// answered is the size of the last proposal that ended, and ended its
	// time (UnixNano): its clients are likely to send their next creates
	// soon (see run).
	answered atomic.Int64
	ended    atomic.Int64
	stop     chan struct{}
	done     chan struct{}

	stopOnce sync.Once
}

// startBatcher starts the batcher of one shard's group, or returns nil
// when batching is off.
func (n *Node) startBatcher(id uint64, g *raftstore.Group) *batcher {
	if !createBatching {
		return nil
	}
	b := &batcher{
		n:        n,
		shard:    id,
		g:        g,
		queue:    make(chan *createCall, batchQueue),
		inFlight: maxInFlight,
		linger:   batchLinger,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go b.run()
	return b
}

// stopBatchers stops serving every replica (serve refuses new ones from
// now on), stops every batcher and waits for them; it is safe to call
// twice. A proposal in flight ends with the node's context (cancelled
// before this runs in Close); creates still queued fail with
// raftstore.ErrClosed.
func (n *Node) stopBatchers() {
	n.servedMu.Lock()
	n.stopServing = true
	n.servedMu.Unlock()
	reps := n.served()
	for _, r := range reps {
		if r.b != nil {
			r.b.stopOnce.Do(func() { close(r.b.stop) })
		}
	}
	for _, r := range reps {
		if r.b != nil {
			<-r.b.done
		}
	}
}

// proposeCreate proposes an encoded create at g and returns its encoded
// linkstore.Result, as Group.Propose would for the create alone: through
// the shard's batcher, or, with batching off, as its own entry with the
// request ID as raftstore's idempotency key. index is the Raft index of
// the entry that applied the create, 0 when unknown: a retry answered
// with an earlier entry's result, or batching off (raftstore's
// idempotency table does not tell a retry).
func (n *Node) proposeCreate(ctx context.Context, shard uint64, g *raftstore.Group, cmd []byte, requestID string) (raw []byte, index uint64, err error) {
	var b *batcher
	if r := n.served()[shard]; r != nil {
		b = r.b
	}
	if b == nil {
		var idem []byte
		if requestID != "" {
			idem = []byte(requestID)
		}
		raw, err := g.Propose(ctx, cmd, idem)
		return raw, 0, err
	}
	call := &createCall{requestID: requestID, cmd: cmd, done: make(chan createOutcome, 1), queued: time.Now().UnixNano()}
	select {
	case b.queue <- call:
	case <-b.stop:
		return nil, 0, raftstore.ErrClosed
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	select {
	case o := <-call.done:
		return o.raw, o.index, o.err
	case <-ctx.Done():
		// The create may still be proposed: the outcome is unknown, and
		// a retry with the same request ID is safe.
		return nil, 0, fmt.Errorf("node: shard %d: create: outcome unknown: %w", shard, ctx.Err())
	case <-b.done:
		// Queued after the batcher drained its queue for the last time.
		select {
		case o := <-call.done:
			return o.raw, o.index, o.err
		default:
			return nil, 0, raftstore.ErrClosed
		}
	}
}

// run is the batcher's goroutine. It keeps at most maxInFlight proposals
// in flight, each in a goroutine it owns and waits for; the creates that
// arrive while every slot is busy go into the next proposal together.
func (b *batcher) run() {
	defer close(b.done)
	var (
		wg    sync.WaitGroup
		slots = make(chan struct{}, b.inFlight)
		next  *createCall // did not fit in the previous entry
	)
	defer wg.Wait()
	for {
		select {
		case slots <- struct{}{}:
		case <-b.stop:
			b.fail(next, raftstore.ErrClosed)
			return
		}
		if next == nil {
			select {
			case next = <-b.queue:
			case <-b.stop:
				b.fail(nil, raftstore.ErrClosed)
				return
			}
		}
		calls := []*createCall{next}
		size := itemSize(next)
		next = nil
		// add takes c into this proposal, or keeps it for the next one
		// (false) when it would make this one too large.
		add := func(c *createCall) bool {
			if size+itemSize(c) > maxBatchBytes {
				next = c
				return false
			}
			calls = append(calls, c)
			size += itemSize(c)
			return true
		}
	collect:
		for len(calls) < maxBatchItems {
			select {
			case c := <-b.queue:
				if !add(c) {
					break collect
				}
			default:
				break collect
			}
		}
		// The clients of the proposal that just ended are on their way
		// back: wait a little for them to join this proposal, so that
		// the clients do not settle into two cohorts that take turns
		// (see maxInFlight). A lone client never waits: it is the one
		// answered.
		want := len(calls)
		if back := int(b.answered.Swap(0)); back > 0 {
			// The calls queued since that proposal ended are some
			// of its clients already back.
			end := b.ended.Load()
			for _, c := range calls {
				if c.queued >= end {
					back--
				}
			}
			want = min(want+max(back, 0), maxBatchItems)
		}
		if b.linger > 0 && next == nil && len(calls) < want {
			timer := time.NewTimer(b.linger)
		wait:
			for len(calls) < want {
				select {
				case c := <-b.queue:
					if !add(c) {
						break wait
					}
				case <-timer.C:
					break wait
				case <-b.stop:
					break wait
				}
			}
			timer.Stop()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			b.propose(calls, size)
		}()
	}
}

// itemSize is an upper bound on the encoded size of c in a batch.
func itemSize(c *createCall) int { return 2*10 + len(c.requestID) + len(c.cmd) }

// propose proposes calls (size bytes at most, see itemSize) as one entry
// and answers each.
func (b *batcher) propose(calls []*createCall, size int) {
	buf := linkstore.AppendBatchHeader(make([]byte, 0, 16+size), len(calls))
	for _, c := range calls {
		buf = linkstore.AppendBatchItem(buf, c.requestID, c.cmd)
	}
	ctx, cancel := context.WithTimeout(b.n.ctx, b.n.opts.RequestTimeout)
	raw, index, err := b.g.ProposeAt(ctx, buf, nil)
	cancel()
	switch {
	case err != nil:
		answerAll(calls, createOutcome{err: err})
		return
	case raw == nil:
		// Applied before a restart: the results are in the request table.
		answerAll(calls, createOutcome{})
		return
	}
	results, replayed, _, err := linkstore.DecodeBatchResultReplays(raw)
	if err == nil && len(results) != len(calls) {
		err = fmt.Errorf("%w: %d results for %d creates", linkstore.ErrMalformed, len(results), len(calls))
	}
	if err != nil {
		b.n.logger.Error("undecodable create batch result", "shard", b.shard, "creates", len(calls), "err", err)
		answerAll(calls, createOutcome{err: fmt.Errorf("node: shard %d: create batch: %w", b.shard, err)})
		return
	}
	// Recorded before the answers go out, so that every create a client
	// sends after its answer counts as back (run).
	b.ended.Store(time.Now().UnixNano())
	for i, c := range calls {
		o := createOutcome{raw: results[i], index: index}
		if replayed[i] {
			o.index = 0
		}
		c.done <- o
	}
	b.answered.Add(int64(len(calls)))
}

func answerAll(calls []*createCall, o createOutcome) {
	for _, c := range calls {
		c.done <- o
	}
}

// fail answers next (if not nil) and every queued create with err.
func (b *batcher) fail(next *createCall, err error) {
	if next != nil {
		next.done <- createOutcome{err: err}
	}
	for {
		select {
		case c := <-b.queue:
			c.done <- createOutcome{err: err}
		default:
			return
		}
	}
}
