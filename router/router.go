// Package router is linkraft's public HTTP API on fasthttp: it creates short
// links, redirects short codes to their targets and reports health.
//
// # Endpoints
//
//	POST /api/v1/links        {"url", "alias"?, "reuse"?, "expires_at"?, "ttl"?, "max_clicks"?,
//	                          "title"?, "tags"?, "redirect_status"?}
//	                          -> 201 {"code","short_url","url","created_at","expires_at"?,"max_clicks"?,
//	                          "title"?, "tags"?, "redirect_status"?}
//	                          (200 with the existing link when reuse found one)
//	GET|HEAD /api/v1/links?q=&tag=&limit=&cursor=&owner=
//	                          the caller's links newest first, {"links", "next_cursor"?} (list.go)
//	POST /api/v1/links/bulk   {"links": [create, ...]} (1..1000) -> 200 {"succeeded",
//	                          "failed","results":[{"status","link"|"error"}]}, one result per
//	                          item in order; one Raft entry per shard (bulk.go)
//	GET|HEAD /{code}          the link's redirect_status, else the cluster's (301 by default), with Location
//	GET|HEAD /api/v1/links/{code}  the link record, with "clicks": its all-time human clicks
//	DELETE /api/v1/links/{code}    204; 404 unknown; 410 deleted before. The code
//	                          keeps a tombstone and is never issued again
//	GET|HEAD /api/v1/links/{code}/stats?from=YYYY-MM-DD&to=YYYY-MM-DD
//	                          click statistics (clicks.Stats); default the last 30
//	                          days, at most 366; a bad date or range is a 400
//	GET|HEAD /api/v1/links/{code}/qr?format=png|svg&size=256
//	                          the QR code of the link's short URL (qr.go); no
//	                          key needed; 404/410 exactly when the redirect
//	                          gives them; a bad format or size is a 400
//	GET|HEAD /api/v1/openapi.json  the OpenAPI 3 document (openapi.json, embedded)
//	GET|HEAD /healthz         200 while the process is up
//	GET|HEAD /readyz          200 when every shard has a reachable leader, else 503
//
// With API keys in the cluster's configuration (see auth.go), every /api/v1
// request other than the OpenAPI document and QR codes needs a key
// (Authorization: Bearer or X-API-Key; 401 otherwise) and sees only its own
// links (another key's link is a 404), unless the key is an admin key.
// Without keys the API is open.
//
// Every error is JSON, {"error": {"code": "...", "message": "..."}}, except
// the 404 or 410 of a redirect asked by a browser (Accept holds
// text/html), which is a small HTML page. A deleted link answers 410 Gone
// everywhere (redirect, record, stats, delete). Bad input is always a 4xx and never reaches a shard:
// 400 for malformed JSON, unknown fields, a bad URL (package linkurl) or a
// bad alias (shortcode.ValidateAlias); 413 for a body over MaxBodySize; 415
// for a content type other than application/json; 405 with Allow for a
// wrong method. 409 is a taken alias, 503 a shard without a reachable
// leader, 507 a full partition.
//
// # Placement
//
// A new link goes to a partition (package ring): an alias of the generated
// code shape to the partition its decoded ID belongs to, any other alias to
// the hash of the alias, a link without alias to the hash of its normalized
// URL. The partition's shard stores it through the ShardClient. Creates
// that arrive while their shard already has 8 create RPCs in flight are
// coalesced into one bulk create when the ShardClient is a BulkClient
// (createbatch.go); a create on an idle shard goes alone, at once.
//
// # Redirects and the cache
//
// The router caches code -> target in a bounded CLOCK cache (cluster.yaml's
// cache_size per router; 0 disables it). A cache hit answers at once and
// allocates nothing. Links can be edited or deleted, so an entry is served
// only while its shard vouches for it: with a ShardClient that is a
// FeedClient (*shardrpc.Client is), the router long-polls each shard's
// change feed and keeps an entry while the feed answers within the cache
// TTL (cluster.yaml's cache_ttl, default 5 s; Options.CacheTTL overrides
// it), dropping the codes the feed reports deleted, edited or purged
// (feed.go); entries the feed cannot vouch for are served for at most the
// cache TTL after the shard answered them, then the next request asks the
// shard again. The router that serves a DELETE or PATCH drops the entry at
// once. An entry also
// keeps the link's expiry: a hit at or after it answers 410 (one more
// integer compare, no allocation). max_clicks is checked against the
// shard's click total whenever a redirect (re)validates the link. A miss asks the owning
// shard (ShardClient.Resolve, which only reports "not found" once the
// shard's leader confirmed it). A path that cannot be a code (neither the
// generated shape nor an alias) is a 404 without any call.
//
// Browsers cache redirects too: a 301 or 308 carries Cache-Control
// "private, max-age=60" (PermanentRedirectMaxAge) and a 302 or 307
// "no-store", so a delete or an edit reaches a browser within CacheTTL plus
// that max-age (redirectcache.go).
//
// # Clicks
//
// Every redirect, cache hit or miss, is counted in memory (package clicks:
// referrer host, user agent class, bot flag, a keyed visitor hash; no IP is
// kept) without allocating, and flushed to the owning shards every
// click_flush_interval as one batch per shard, keyed (router ID, sequence)
// so that a retried flush is never counted twice. A HEAD counts as a bot
// click. Shutdown flushes after the last request was answered, so a
// graceful stop loses no click. Counting needs a ShardClient that is also
// a ClickClient (*shardrpc.Client is); Options.DisableClicks turns it off.
package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/ring"
	"github.com/linkraft/linkraft/shardrpc"
	"github.com/linkraft/linkraft/shortcode"
)

// MaxBodySize is the largest request body the API accepts, in bytes.
const MaxBodySize = 8 << 10

// Defaults of Options.
const (
	DefaultRPCTimeout   = 5 * time.Second
	DefaultReadyTimeout = time.Second
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown.
var ErrServerClosed = errors.New("router: server closed")

// ShardClient is what the router needs from the internal RPC client;
// *shardrpc.Client implements it. Errors wrap the shardrpc sentinels
// (ErrNotFound, ErrAliasTaken, ErrPartitionFull, ErrUnavailable, ...).
type ShardClient interface {
	// Create stores a new link in the shard, at its leader.
	Create(ctx context.Context, shard uint64, req shardrpc.CreateRequest) (shardrpc.Link, error)
	// Resolve returns the link of code; ErrNotFound only when the
	// shard's leader confirmed it does not exist.
	Resolve(ctx context.Context, shard uint64, code string) (shardrpc.Link, error)
	// Status returns the status of the shard's leader; an error when no
	// replica leads.
	Status(ctx context.Context, shard uint64) (shardrpc.Status, error)
	// Delete deletes the link of code at the shard's leader; ErrNotFound
	// for a code that never held a link, ErrGone for one deleted before.
	Delete(ctx context.Context, shard uint64, code string) (shardrpc.DeleteResult, error)
}

// Options tunes a Router. The zero value is a production default.
type Options struct {
	// Logger receives the router's logs (default slog.Default()).
	Logger *slog.Logger
	// Listen overrides the listen address of the router's cluster.yaml
	// entry for ListenAndServe.
	Listen string
	// RPCTimeout bounds the shard calls of one request (default 5 s).
	RPCTimeout time.Duration
	// ReadyTimeout bounds the status calls of one /readyz (default 1 s).
	ReadyTimeout time.Duration
	// IdleWorkerTimeout is how long an idle fasthttp worker goroutine
	// lives (default 2 s); the server's worker cleaner stops within this
	// long after Shutdown.
	IdleWorkerTimeout time.Duration
	// CacheTTL bounds how long a cached link is served without its shard
	// vouching for it: a link deleted through another router stops
	// redirecting here normally within a change feed round trip, at worst
	// within CacheTTL plus the replication lag of the replica asked (see
	// feed.go). Zero: cluster.yaml's cache_ttl (Cluster.CacheTTL), else
	// DefaultCacheTTL.
	CacheTTL time.Duration
	// DisableClicks turns click counting off (benchmarks compare the
	// redirect path with and without it). Counting is also off when the
	// ShardClient is not a ClickClient.
	DisableClicks bool
}

// Router serves the public API of one router of the cluster.
type Router struct {
	id             string
	listen         string
	baseURL        string
	bases          []string
	redirectStatus int
	ring           *ring.Ring
	codec          *shortcode.Codec
	shards         ShardClient
	cache          *targetCache
	log            *slog.Logger
	opts           Options
	srv            *fasthttp.Server
	clicks         *clickState // nil: counting off
	refresh        refresher   // background revalidation of cached entries
	feeds          *feeds      // the shards' change feeds (feed.go)
	keys           *apiKeys    // nil: no API keys, the API is open
	codeSecret     string      // keys the list cursors' MAC

	lingering *lingerSet     // the connections closing lingering after an error answer
	creates   *createBatcher // coalesces concurrent creates per shard (createbatch.go)

	mu     sync.Mutex
	lns    []net.Listener
	closed atomic.Bool
}

// New returns the router routerID of cfg (a validated config), reaching the
// shards through shards.
func New(cfg *config.Config, routerID string, shards ShardClient, opts Options) (*Router, error) {
	rc, ok := cfg.Router(routerID)
	if !ok {
		return nil, fmt.Errorf("router: no router %q in the cluster configuration", routerID)
	}
	if shards == nil {
		return nil, errors.New("router: nil shard client")
	}
	rg, err := cfg.Ring()
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.RPCTimeout <= 0 {
		opts.RPCTimeout = DefaultRPCTimeout
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = DefaultReadyTimeout
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = cfg.Cluster.CacheTTL
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	if opts.IdleWorkerTimeout <= 0 {
		opts.IdleWorkerTimeout = 2 * time.Second
	}
	status := cfg.Cluster.RedirectStatus
	switch status {
	case 0:
		status = fasthttp.StatusMovedPermanently
	case 301, 302, 307, 308:
	default:
		return nil, fmt.Errorf("router: redirect status %d is not 301, 302, 307 or 308", status)
	}
	r := &Router{
		id:             routerID,
		listen:         rc.Listen,
		baseURL:        trimSlash(rc.BaseURL),
		redirectStatus: status,
		ring:           rg,
		codec:          rg.Codec(),
		shards:         shards,
		cache:          newTargetCache(rc.CacheEntries(), opts.CacheTTL),
		keys:           newAPIKeys(cfg.APIKeys),
		codeSecret:     cfg.Cluster.CodeSecret,
		log:            opts.Logger,
		opts:           opts,
		lingering:      newLingerSet(),
		creates:        newCreateBatcher(shards),
	}
	if opts.Listen != "" {
		r.listen = opts.Listen
	}
	ids := make([]uint64, 0, len(cfg.Shards))
	for _, sh := range cfg.Shards {
		ids = append(ids, sh.ID)
	}
	fc, _ := shards.(FeedClient)
	r.feeds = newFeeds(fc, ids)
	if fc != nil {
		r.cache.withFeeds(len(ids))
	}
	if r.clicks, err = newClickState(cfg, routerID, r, shards, opts); err != nil {
		return nil, err
	}
	for _, other := range cfg.Routers {
		if other.BaseURL != "" {
			r.bases = append(r.bases, other.BaseURL)
		}
	}
	r.srv = &fasthttp.Server{
		Handler:      r.handle,
		ErrorHandler: r.handleParseError,
		Name:         "linkraft",
		// Above MaxBulkBodySize (the largest body a route takes), so
		// that a body a little too large is read and answered with a
		// JSON 413 by the handler; larger ones get the same answer from
		// handleParseError.
		MaxRequestBodySize:           2 * MaxBulkBodySize,
		ReadTimeout:                  10 * time.Second,
		WriteTimeout:                 10 * time.Second,
		IdleTimeout:                  60 * time.Second,
		MaxIdleWorkerDuration:        opts.IdleWorkerTimeout,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		Logger:                       fasthttpLogger{opts.Logger},
	}
	return r, nil
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// Handler returns the router's request handler, for serving it on a
// fasthttp.Server of the caller's own.
// Call Shutdown when done: it flushes the counted clicks.
func (r *Router) Handler() fasthttp.RequestHandler {
	r.startClicks()
	r.startFeeds()
	return r.handle
}

// Serve serves the API on ln until Shutdown; it then returns
// ErrServerClosed. It closes ln.
func (r *Router) Serve(ln net.Listener) error {
	r.mu.Lock()
	if r.closed.Load() {
		r.mu.Unlock()
		_ = ln.Close()
		return ErrServerClosed
	}
	r.lns = append(r.lns, ln)
	r.mu.Unlock()
	r.startClicks()
	r.startFeeds()
	err := r.srv.Serve(lingerListener{Listener: ln, set: r.lingering})
	if r.closed.Load() {
		return ErrServerClosed
	}
	if err == nil {
		return fmt.Errorf("router: listener %s closed", ln.Addr())
	}
	return fmt.Errorf("router: serve: %w", err)
}

// ListenAndServe listens on the router's address and serves the API until
// Shutdown; it then returns ErrServerClosed.
func (r *Router) ListenAndServe() error {
	ln, err := net.Listen("tcp", r.listen)
	if err != nil {
		return fmt.Errorf("router: listen: %w", err)
	}
	r.log.Info("router listening", "addr", ln.Addr().String(), "base_url", r.baseURL, "cache_ttl", r.opts.CacheTTL)
	return r.Serve(ln)
}

// Shutdown stops accepting connections and waits until the requests in
// flight are answered or ctx ends, then flushes the counted clicks until
// the shards acknowledged them or ctx ends. Serve returns ErrServerClosed.
func (r *Router) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closed.Store(true)
	lns := r.lns
	r.lns = nil
	r.mu.Unlock()
	err := r.srv.ShutdownWithContext(ctx)
	// A Serve that had not yet handed its listener to the server is not
	// stopped by ShutdownWithContext; closing the listener stops it.
	for _, ln := range lns {
		_ = ln.Close()
	}
	r.lingering.close()
	cerr := errors.Join(r.closeFeeds(ctx), r.closeRefresh(ctx), r.closeClicks(ctx))
	if err != nil {
		return fmt.Errorf("router: shutdown: %w", errors.Join(err, cerr))
	}
	return cerr
}

// CacheLen returns the number of cached code -> target entries.
func (r *Router) CacheLen() int { return r.cache.Len() }

// fasthttpLogger sends fasthttp's own messages to slog.
type fasthttpLogger struct{ l *slog.Logger }

func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Warn("fasthttp: " + fmt.Sprintf(format, args...))
}

var _ ShardClient = (*shardrpc.Client)(nil)
