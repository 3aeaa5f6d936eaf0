package router

import (
	"context"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/clicks"
	"github.com/linkraft/linkraft/shardrpc"
)

// Stats ranges.
const (
	// DefaultStatsDays is the range of a stats request without from: the
	// last 30 days up to to.
	DefaultStatsDays = 30
	// MaxStatsDays is the longest range a stats request may ask for.
	MaxStatsDays = 366
)

const pathStatsSuffix = "/stats"

// healthBody is the answer of GET /healthz: the process is up, and what its
// code -> target cache holds (so an operator, or scripts/bench-memory.sh,
// can tell a warm router from a cold one without a profiler).
type healthBody struct {
	Status string      `json:"status"`
	Router string      `json:"router"`
	Cache  cacheCounts `json:"cache"`
}

// cacheCounts are the cache's entries and the most it holds (both 0 when
// the router runs without a cache).
type cacheCounts struct {
	Entries  int `json:"entries"`
	Capacity int `json:"capacity"`
}

// health answers GET /healthz. Counting the entries takes each cache
// part's read lock once: cheap enough for a probe, and it never waits
// for a shard.
func (r *Router) health(ctx *fasthttp.RequestCtx) {
	writeJSON(ctx, fasthttp.StatusOK, healthBody{
		Status: "ok",
		Router: r.id,
		Cache:  cacheCounts{Entries: r.cache.Len(), Capacity: r.cache.capacity()},
	})
}

// capacity returns the most entries c holds: the sum of its parts' limits
// (the configured size rounded up to a multiple of the parts), 0 for a nil
// (disabled) cache.
func (c *targetCache) capacity() int {
	if c == nil {
		return 0
	}
	n := 0
	for i := range c.parts {
		n += c.parts[i].limit
	}
	return n
}

// stats answers GET /api/v1/links/{code}/stats?from=YYYY-MM-DD&to=YYYY-MM-DD.
func (r *Router) stats(ctx *fasthttp.RequestCtx, code []byte) {
	// With API keys, a request without a valid key learns nothing, not
	// even whether its range is valid (lookupForAPI checks the owner).
	if _, ok := r.authenticate(ctx); !ok {
		return
	}
	if r.clicks == nil {
		writeError(ctx, fasthttp.StatusNotFound, codeNotFound, "click statistics are not enabled on this router")
		return
	}
	from, to, msg := statsRange(ctx.QueryArgs())
	if msg != "" {
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, msg)
		return
	}
	// Only a link that exists has stats.
	c, _, ok := r.lookupForAPI(ctx, code)
	if !ok {
		return
	}
	st, err := r.codeStats(c, from, to)
	if err != nil {
		r.shardError(ctx, "stats", err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, st)
}

// statsRange reads from and to; msg explains a bad range.
func statsRange(args *fasthttp.Args) (from, to clicks.Day, msg string) {
	to = today()
	if v := args.Peek("to"); len(v) > 0 {
		d, err := clicks.ParseDay(string(v))
		if err != nil {
			return 0, 0, "to must be a date YYYY-MM-DD"
		}
		to = d
	}
	if to < DefaultStatsDays-1 {
		from = 0
	} else {
		from = to - (DefaultStatsDays - 1)
	}
	if v := args.Peek("from"); len(v) > 0 {
		d, err := clicks.ParseDay(string(v))
		if err != nil {
			return 0, 0, "from must be a date YYYY-MM-DD"
		}
		from = d
	}
	if from > to {
		return 0, 0, fmt.Sprintf("from %s is after to %s", from, to)
	}
	if to-from >= MaxStatsDays {
		return 0, 0, fmt.Sprintf("the range %s to %s is longer than %d days", from, to, MaxStatsDays)
	}
	return from, to, ""
}

// codeStats asks the code's shard for its stats.
func (r *Router) codeStats(code string, from, to clicks.Day) (clicks.Stats, error) {
	cctx, cancel := context.WithTimeout(context.Background(), r.opts.RPCTimeout)
	defer cancel()
	shard := r.ring.ShardOf(r.ring.PartitionOfCode(code))
	return r.clicks.client.Stats(cctx, shard, shardrpc.StatsRequest{Code: code, From: from.String(), To: to.String()})
}

// totalClicks returns the all-time human clicks of code, or nil when
// counting is off or the shard did not answer (the link record is shown
// without them rather than not at all).
func (r *Router) totalClicks(code string) *uint64 {
	if r.clicks == nil {
		return nil
	}
	d := today()
	st, err := r.codeStats(code, d, d)
	if err != nil {
		r.log.Warn("click total unavailable", "code", code, "err", err)
		return nil
	}
	return &st.TotalClicks
}
