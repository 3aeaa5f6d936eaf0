package router

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/shardrpc"
)

// DefaultCacheTTL is how long a router serves a cached link before it asks
// the link's shard again when neither Options.CacheTTL nor cluster.yaml's
// cache_ttl says otherwise: the bound within which a link deleted through
// another router stops redirecting here.
const DefaultCacheTTL = config.DefaultCacheTTL

// MaxLinkTTL bounds a link's lifetime given at create: ttl, or expires_at
// minus now.
const MaxLinkTTL = 10 * 365 * 24 * time.Hour

// minLinkTTL is the shortest ttl a create may ask for.
const minLinkTTL = time.Second

// Error codes of the lifecycle.
const (
	// codeGone: the link was deleted or has expired (410).
	codeGone = "gone"
	// codeInvalidLimits: a bad expires_at, ttl or max_clicks (400).
	codeInvalidLimits = "invalid_limits"
)

var allowLink = "GET, HEAD, PATCH, DELETE"

// createLimits checks the limits of a create and returns the link's
// expiry in Unix ms (0 for none), or why the request is bad.
func createLimits(req createRequest, now time.Time) (expiresAt int64, msg string) {
	if req.HasMaxClicks && req.MaxClicks == 0 {
		return 0, "max_clicks must be a positive integer"
	}
	switch {
	case req.ExpiresAt != "" && req.TTL != "":
		return 0, "give expires_at or ttl, not both"
	case req.ExpiresAt != "":
		t, err := time.Parse(time.RFC3339, req.ExpiresAt)
		if err != nil {
			return 0, "expires_at must be an RFC 3339 time, e.g. 2027-01-31T12:00:00Z"
		}
		if !t.After(now) {
			return 0, "expires_at must be in the future"
		}
		if t.Sub(now) > MaxLinkTTL {
			return 0, "expires_at must be at most 10 years ahead"
		}
		expiresAt = t.UnixMilli()
		if expiresAt <= now.UnixMilli() {
			return 0, "expires_at must be in the future"
		}
	case req.TTL != "":
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			return 0, `ttl must be a duration such as "72h" or "90m"`
		}
		if d < minLinkTTL || d > MaxLinkTTL {
			return 0, "ttl must be at least 1s and at most 10 years (87600h)"
		}
		expiresAt = now.Add(d).UnixMilli()
	}
	if req.Reuse && (expiresAt != 0 || req.HasMaxClicks) {
		return 0, "reuse cannot be combined with expires_at, ttl or max_clicks"
	}
	return expiresAt, ""
}

// cacheLink caches the target of a link just read from its shard (record,
// stats and create answers). A link with a click limit is cached only by
// admit, which checks the limit.
func (r *Router) cacheLink(code string, link shardrpc.Link) {
	if link.MaxClicks != 0 {
		return
	}
	r.cache.PutAt(code, link.URL, uint16(link.RedirectStatus), link.ExpiresAtMs, time.Now().UnixMilli(),
		r.shardIndex(code), link.AppliedIndex)
}

// admit caches a link that a redirect read from its shard and reports
// whether it redirects at now (Unix ms): not once its expiry passed, and
// not once the shard counted MaxClicks human clicks. The click count lags
// by up to one click_flush_interval, and a cached link is rechecked every
// CacheTTL, so a link may redirect a few more times than its limit. When
// the count cannot be read (counting off, shard unreachable) the link
// redirects.
func (r *Router) admit(code string, link shardrpc.Link, now int64) bool {
	exp := link.ExpiresAtMs
	live := exp == 0 || now < exp
	if live && link.MaxClicks != 0 {
		if total := r.totalClicks(code); total != nil && *total >= link.MaxClicks {
			// Clicks never go down: the link is used up for good.
			exp, live = now, false
		}
	}
	applied := link.AppliedIndex
	if link.MaxClicks != 0 {
		// The click limit is checked here, so the entry must come back
		// within the TTL: it stays on its own TTL.
		applied = 0
	}
	r.cache.PutAt(code, link.URL, uint16(link.RedirectStatus), exp, now, r.shardIndex(code), applied)
	return live
}

// deleteLink answers DELETE /api/v1/links/{code}: 204 once the shard's
// leader stored the tombstone, 404 for a code that never held a link, 410
// for one deleted before. The router drops the code from its own cache at
// once; other routers stop serving it within their cache TTL.
func (r *Router) deleteLink(ctx *fasthttp.RequestCtx, code []byte) {
	if isSubresource(code) {
		methodNotAllowed(ctx, allowGetHead)
		return
	}
	var c string
	if r.keys == nil {
		var ok bool
		if c, ok = r.apiCode(ctx, code); !ok {
			return
		}
	} else {
		// Only the owner or an admin may delete: look the link up first
		// (its owner never changes, so the check stays true).
		var ok bool
		if c, _, ok = r.lookupForAPI(ctx, code); !ok {
			return
		}
	}
	cctx, cancel := context.WithTimeout(context.Background(), r.opts.RPCTimeout)
	defer cancel()
	_, err := r.shards.Delete(cctx, r.ring.ShardOf(r.ring.PartitionOfCode(c)), c)
	// Dropped whatever the answer: after an unknown outcome the next
	// redirect asks the shard.
	r.cache.Invalidate(c)
	switch {
	case err == nil:
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	case errors.Is(err, shardrpc.ErrNotFound):
		r.notFound(ctx, false)
	default:
		r.shardError(ctx, "delete", err)
	}
}

// gone answers 410 for a deleted or expired link: a small HTML page for a
// browser asking for a redirect, JSON otherwise. It allocates nothing (an
// expired link is answered from the cache).
func (r *Router) gone(ctx *fasthttp.RequestCtx, page bool) {
	ctx.SetStatusCode(fasthttp.StatusGone)
	if page && bytes.Contains(ctx.Request.Header.Peek(fasthttp.HeaderAccept), bytesTextHTML) {
		ctx.SetContentType(contentHTML)
		ctx.SetBodyString(gonePage)
		return
	}
	ctx.SetContentType(contentJSON)
	ctx.SetBodyString(goneJSON)
}

// goneJSON is what writeError writes for codeGone, rendered once.
const goneJSON = `{"error":{"code":"gone","message":"this link was deleted or has expired"}}` + "\n"

const gonePage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Link gone</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 4em auto;">
<h1>Link gone</h1>
<p>This short link was deleted or has expired.</p>
</body></html>
`
