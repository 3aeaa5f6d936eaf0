package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/linkraft/linkraft/shardrpc"
)

// Refresh ahead.
//
// It applies to the entries on their own TTL (those the shard's change
// feed cannot vouch for, see feed.go; all of them without feeds). Such an
// entry is served for the cache TTL after its shard last confirmed it; after that a redirect of the code misses and waits for a
// resolve RPC. For a code in use that is a miss every TTL: measured with
// `linkraft bench -workload redirect` (Zipf s=1.1 over 100,000 codes,
// cache_ttl 5s) at 10,000 to 120,000 redirects/s, 20 % to 8 % of the
// "cached" redirects wait for a shard, which puts a resolve's latency in
// the p90 and the p99. So a hit in the last refreshAheadDiv-th of an
// entry's TTL revalidates the code in the background: the redirect is
// answered from the cache at once, and the entry is fresh again before its
// TTL ends. Only codes requested near the end of their TTL are refreshed;
// a code nobody asks for again still ages out and misses.
//
// The bound on staleness does not change: an entry is still served only
// while its shard confirmed it within the TTL; the refresh confirms it
// earlier, never later. A refresh that finds the link deleted or gone drops
// the entry; one that fails (no leader, timeout) leaves it to age out.

// refreshAheadDiv: a hit in the last 1/refreshAheadDiv of the TTL
// refreshes the entry (500 ms of the default 5 s). A code requested all the
// time is then revalidated every 4.5 s instead of every 5 s plus the wait
// for its next request: at most ~11 % more resolves, none of them waited
// for by a client.
const refreshAheadDiv = 10

// maxRefreshes bounds the background refreshes in flight per router; a
// hit that would start one more is answered without a refresh (the entry
// then misses at its TTL, as without refresh ahead).
const maxRefreshes = 64

// refresher runs the background revalidations of cached entries. Each
// refresh is one goroutine, owned by the refresher, that ends within the
// router's RPC timeout; close stops new ones and waits for those running.
type refresher struct {
	mu      sync.Mutex
	pending map[string]struct{} // codes being refreshed
	closed  bool
	wg      sync.WaitGroup
}

// refreshAhead starts a background revalidation of code unless one is
// running, too many are, or the router is shutting down.
func (r *Router) refreshAhead(code []byte) {
	f := &r.refresh
	f.mu.Lock()
	if f.closed || len(f.pending) >= maxRefreshes {
		f.mu.Unlock()
		return
	}
	if _, ok := f.pending[string(code)]; ok {
		f.mu.Unlock()
		return
	}
	if f.pending == nil {
		f.pending = make(map[string]struct{}, maxRefreshes)
	}
	c := string(code)
	f.pending[c] = struct{}{}
	f.wg.Add(1)
	f.mu.Unlock()
	go r.refreshCode(c)
}

// refreshCode revalidates code at its shard: the entry is refreshed (or
// marked expired, as on a miss), or dropped when the link is gone.
func (r *Router) refreshCode(code string) {
	f := &r.refresh
	defer func() {
		f.mu.Lock()
		delete(f.pending, code)
		f.mu.Unlock()
		f.wg.Done()
	}()
	link, err := r.resolve(code)
	switch {
	case err == nil:
		r.admit(code, link, time.Now().UnixMilli())
	case errors.Is(err, shardrpc.ErrNotFound), errors.Is(err, shardrpc.ErrGone):
		r.cache.Invalidate(code)
	default:
		r.log.Debug("refresh of a cached link failed; it ages out", "code", code, "err", err)
	}
}

// closeRefresh stops new refreshes and waits for those running (each ends
// within the RPC timeout), or until ctx ends.
func (r *Router) closeRefresh(ctx context.Context) error {
	f := &r.refresh
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	// The last refresh ends within the RPC timeout.
	if err := waitGroupCtx(ctx, &f.wg); err != nil {
		return fmt.Errorf("router: refreshes of cached links still running: %w", err)
	}
	return nil
}

// waitGroupCtx waits for wg, or until ctx ends (its error). The goroutine
// it starts ends with wg's last member.
func waitGroupCtx(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
