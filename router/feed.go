package router

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/linkraft/linkraft/shardrpc"
)

// Change feeds: cached links stay valid while their shard keeps confirming
// that nothing changed them.
//
// Without feeds, a cached link is served for the cache TTL after its shard
// answered it, then the next redirect of the code waits for the shard
// again: under a Zipf load a large share of the "cached" redirects does.
// The TTL only bounds how long a delete or an edit made through another
// router (or a purge) takes to reach this one. With a feed per shard the
// router hears of those changes within a long poll, and a cached link
// stays valid as long as the feed keeps answering.
//
// Per shard the router runs one feed goroutine that long-polls the shard's
// leader (shardrpc.Client.Changes) from its position P: each answer lists
// the changed codes in (P, A] (or a reset) and the goroutine
//
//  1. stores P = A (on a reset: P = A, then a new generation, which turns
//     every feed-backed entry of the shard into a miss at once),
//  2. drops each listed code from the cache,
//  3. stores confirmedAt = the time the request was sent.
//
// A feed-backed entry is served while its generation is the shard's and
// now - confirmedAt < cache TTL. The leader answers after a linearizable
// read barrier, so an answer covers every change acknowledged before the
// request was sent: a change acknowledged at time T is either dropped
// from the cache by an answer to a request sent after T, or (no answer)
// the entries stop being served at the latest cache TTL after the last
// request sent before T. That is the bound of the TTL-only cache, kept in
// the worst case; normally a change arrives within one round trip.
//
// The race closed by P: a resolve answer reflects the replica's state at
// its applied index R (shardrpc.Link.AppliedIndex). It may be stored
// feed-backed only if R >= P, since the changes in (R, P] were already
// handed out and might concern its code; targetCache.PutAt checks this
// under the entry's lock, and step 1 precedes step 2, so a change after R
// is either dropped after the entry was stored or already counted in P.
// Answers without an index (older nodes, creates, other reads), links
// with a click limit (checked at admit) and answers while the feed is
// down are stored on their own TTL, as before.

// FeedClient is a ShardClient that can long-poll a shard's change feed
// (*shardrpc.Client can). Without it the router caches on the TTL alone.
type FeedClient interface {
	Changes(ctx context.Context, shard, since uint64, wait time.Duration) (shardrpc.Changes, error)
}

var _ FeedClient = (*shardrpc.Client)(nil)

// maxFeedWait bounds one long poll; a quarter of the cache TTL when that
// is shorter, so that a healthy feed confirms several times per TTL.
const maxFeedWait = time.Second

// Feed backoff after failed polls: doubled per failure, capped.
const (
	feedBackoffBase = 20 * time.Millisecond
	feedBackoffMax  = time.Second
)

// feedLogEvery rate-limits a shard's feed error logs.
const feedLogEvery = 10 * time.Second

// feeds runs the change feed goroutines of a router.
type feeds struct {
	client FeedClient
	ids    []uint64       // shard IDs by index
	index  map[uint64]int // shard ID -> index
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// newFeeds returns the feeds of shards ids through client; nil client: no
// feeds (shard indexes still name the shards).
func newFeeds(client FeedClient, ids []uint64) *feeds {
	f := &feeds{client: client, ids: ids, index: make(map[uint64]int, len(ids))}
	for i, id := range ids {
		f.index[id] = i
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f
}

// shardIndex returns the index of the shard of code in the cache's feed
// states, -1 when the router runs no feeds.
func (r *Router) shardIndex(code string) int {
	if r.feeds.client == nil {
		return -1
	}
	i, ok := r.feeds.index[r.ring.ShardOf(r.ring.PartitionOfCode(code))]
	if !ok {
		return -1
	}
	return i
}

// startFeeds starts the feed goroutines once (Serve and Handler call it).
func (r *Router) startFeeds() {
	f := r.feeds
	if f.client == nil || r.cache == nil || r.closed.Load() {
		return
	}
	f.once.Do(func() {
		for i, id := range f.ids {
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				r.runFeed(i, id)
			}()
		}
	})
}

// closeFeeds stops the feed goroutines and waits for them, or until ctx
// ends. A goroutine between polls stops at once; one waiting for a long
// poll's answer stops when it comes, within the poll's wait (at most
// maxFeedWait) plus a round trip, or the client's attempt timeout when the
// node does not answer.
func (r *Router) closeFeeds(ctx context.Context) error {
	f := r.feeds
	f.once.Do(func() {}) // none start after this
	f.cancel()
	if err := waitGroupCtx(ctx, &f.wg); err != nil {
		return fmt.Errorf("router: change feeds still running: %w", err)
	}
	return nil
}

// feedWait is the wait of one long poll.
func (r *Router) feedWait() time.Duration { return min(maxFeedWait, r.opts.CacheTTL/4) }

// runFeed follows the change feed of shard id (index i) until the router
// closes.
func (r *Router) runFeed(i int, id uint64) {
	f := r.feeds
	st := r.cache.feed(i)
	wait := r.feedWait()
	var pos uint64
	failures, suppressed := 0, 0
	var lastLog time.Time
	for f.ctx.Err() == nil {
		sent := time.Now()
		cctx, cancel := context.WithTimeout(f.ctx, wait+r.opts.RPCTimeout)
		ch, err := f.client.Changes(cctx, id, pos, wait)
		cancel()
		if err != nil {
			if f.ctx.Err() != nil {
				return
			}
			failures++
			if time.Since(lastLog) >= feedLogEvery {
				r.log.Warn("change feed of a shard failed; its cached links stop being served one cache TTL after the last answer",
					"shard", id, "failures", failures, "suppressed_logs", suppressed, "err", err)
				lastLog, suppressed = time.Now(), 0
			} else {
				suppressed++
			}
			if !sleepCtx(f.ctx, min(feedBackoffBase<<min(failures-1, 10), feedBackoffMax)) {
				return
			}
			continue
		}
		failures = 0
		applyChanges(r.cache, st, ch)
		switch {
		case ch.Reset && pos == 0:
			r.log.Debug("change feed started", "shard", id, "at", ch.Index)
		case ch.Reset:
			// The shard's leader cannot list the changes after pos (it
			// restarted, restored a snapshot, or pos fell out of its ring).
			r.log.Info("change feed reset: the shard's cached links are dropped", "shard", id, "from", pos, "to", ch.Index)
		}
		pos = ch.Index
		st.confirmedAt.Store(sent.UnixMilli())
	}
}

// applyChanges applies a feed answer to the cache (steps 1 and 2 of the
// package comment above): the position first, then a new generation on a
// reset, then the changed codes.
func applyChanges(c *targetCache, st *feedState, ch shardrpc.Changes) {
	st.pos.Store(ch.Index)
	if ch.Reset {
		st.gen.Add(1)
		st.resets.Add(1)
		return
	}
	for _, e := range ch.Events {
		c.Invalidate(e.Code)
	}
}

// sleepCtx sleeps for d or until ctx ends; false when ctx ended.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// FeedStatus is the state of one shard's change feed at a router.
type FeedStatus struct {
	Shard uint64
	// Position is the Raft index up to which the shard's changes reached
	// the router's cache.
	Position uint64
	// Lag is how long ago the last answered poll was sent; the shard's
	// feed-backed entries are served while it is below the cache TTL.
	// Negative: never answered.
	Lag time.Duration
	// Resets counts the resets the feed answered (each drops the shard's
	// cached links).
	Resets uint64
}

// FeedStatus returns the state of each shard's change feed, nil when the
// router runs none.
func (r *Router) FeedStatus() []FeedStatus {
	if r.feeds.client == nil || r.cache == nil {
		return nil
	}
	now := time.Now().UnixMilli()
	out := make([]FeedStatus, len(r.feeds.ids))
	for i, id := range r.feeds.ids {
		st := r.cache.feed(i)
		out[i] = FeedStatus{Shard: id, Position: st.pos.Load(), Resets: st.resets.Load(), Lag: -1}
		if at := st.confirmedAt.Load(); at != 0 {
			out[i].Lag = time.Duration(now-at) * time.Millisecond
		}
	}
	return out
}
