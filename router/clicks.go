package router

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/clicks"
	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/shardrpc"
)

// ClickClient is what the router needs from the internal RPC client for
// click analytics; *shardrpc.Client implements it. A ShardClient that does
// not implement it turns click counting off.
type ClickClient interface {
	// FlushClicks sends one click batch to the shard's leader; nil once
	// the shard applied it (or had applied it before).
	FlushClicks(ctx context.Context, shard uint64, batch clicks.Batch) error
	// Stats returns a code's click statistics from its shard's leader.
	Stats(ctx context.Context, shard uint64, req shardrpc.StatsRequest) (clicks.Stats, error)
}

var _ ClickClient = (*shardrpc.Client)(nil)

// clickState counts the router's redirects and flushes them to the shards.
type clickState struct {
	client     ClickClient
	counter    *clicks.Counter
	classifier *clicks.Classifier
	hasher     *clicks.VisitorHasher
	flusher    *clicks.Flusher
	startOnce  sync.Once
}

// newClickState returns the click counting of router id, or nil when
// shards cannot take clicks or opts turn counting off.
func newClickState(cfg *config.Config, id string, r *Router, shards ShardClient, opts Options) (*clickState, error) {
	cc, ok := shards.(ClickClient)
	if !ok || opts.DisableClicks {
		return nil, nil
	}
	cs := &clickState{
		client:     cc,
		counter:    clicks.NewCounter(r.ring.ShardOfCodeBytes),
		classifier: clicks.NewClassifier(0),
		hasher:     clicks.NewVisitorHasher(clicks.VisitorKey(cfg.Cluster.CodeSecret)),
	}
	f, err := clicks.NewFlusher(clicks.FlusherConfig{
		Router:   id,
		Counter:  cs.counter,
		Sink:     cc,
		Interval: cfg.Cluster.ClickFlushInterval,
		Logger:   opts.Logger.With(slog.String("component", "clicks")),
	})
	if err != nil {
		return nil, fmt.Errorf("router: clicks: %w", err)
	}
	cs.flusher = f
	return cs, nil
}

// startClicks starts the flusher (Serve and Handler call it); Shutdown
// stops it.
func (r *Router) startClicks() {
	if r.clicks != nil && !r.closed.Load() {
		r.clicks.startOnce.Do(r.clicks.flusher.Start)
	}
}

// closeClicks flushes every counted click; Shutdown calls it once the
// server stopped answering.
func (r *Router) closeClicks(ctx context.Context) error {
	if r.clicks == nil {
		return nil
	}
	if err := r.clicks.flusher.Close(ctx); err != nil {
		return fmt.Errorf("router: flush clicks: %w", err)
	}
	return nil
}

// countClick counts a redirect of code. It allocates nothing for a code,
// referrer host, user agent and visitor it counted in the last two flush
// intervals. A HEAD request counts as a bot click: browsers follow links
// with GET, link checkers probe with HEAD.
func (r *Router) countClick(ctx *fasthttp.RequestCtx, code []byte) {
	cs := r.clicks
	if cs == nil {
		return
	}
	ua := ctx.Request.Header.UserAgent()
	var host [clicks.MaxHostLen]byte
	agent := cs.classifier.Classify(ua)
	info := clicks.ClickInfo{
		Day:      clicks.DayOf(ctx.Time()),
		Referrer: clicks.AppendReferrerHost(host[:0], ctx.Request.Header.Referer()),
		Agent:    agent,
		Visitor:  cs.hasher.SumHash(ctx.RemoteIP(), agent.UAHash),
	}
	if ctx.IsHead() {
		info.Agent.Bot = true
	}
	cs.counter.Record(code, info)
}

// FlushClicks flushes the clicks counted so far and waits until the shards
// acknowledged them or ctx ends. Tests and admin tools use it; the flusher
// does the same every click_flush_interval.
func (r *Router) FlushClicks(ctx context.Context) error {
	if r.clicks == nil {
		return nil
	}
	return r.clicks.flusher.Flush(ctx)
}

// ClickStats returns the flusher's counters; zero when counting is off.
func (r *Router) ClickStats() clicks.FlusherStats {
	if r.clicks == nil {
		return clicks.FlusherStats{}
	}
	return r.clicks.flusher.Stats()
}

// today is the current UTC day.
func today() clicks.Day { return clicks.DayOf(time.Now()) }
