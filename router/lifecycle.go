package router

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/shardrpc"
	"github.com/linkraft/linkraft/shortcode"
)

// DefaultCacheTTL is how long a router serves a cached link before it asks
// the link's shard again (Options.CacheTTL): the bound within which a link
// deleted through another router stops redirecting here.
const DefaultCacheTTL = 5 * time.Second

// codeGone is the error code of a deleted (or expired) link.
const codeGone = "gone"

var allowLink = "GET, HEAD, DELETE"

// cacheLink caches the target of a link just read from its shard.
func (r *Router) cacheLink(code string, link shardrpc.Link) {
	r.cache.Put(code, link.URL, 0, time.Now().UnixMilli())
}

// deleteLink answers DELETE /api/v1/links/{code}: 204 once the shard's
// leader stored the tombstone, 404 for a code that never held a link, 410
// for one deleted before. The router drops the code from its own cache at
// once; other routers stop serving it within their cache TTL.
func (r *Router) deleteLink(ctx *fasthttp.RequestCtx, code []byte) {
	if bytes.HasSuffix(code, []byte(pathStatsSuffix)) {
		methodNotAllowed(ctx, allowGetHead)
		return
	}
	if !r.codeShape(code) {
		r.notFound(ctx, false)
		return
	}
	c := string(code)
	if !r.codec.IsGeneratedShape(c) && shortcode.IsReserved(c) {
		r.notFound(ctx, false)
		return
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
// browser asking for a redirect, JSON otherwise.
func (r *Router) gone(ctx *fasthttp.RequestCtx, page bool) {
	if page && bytes.Contains(ctx.Request.Header.Peek(fasthttp.HeaderAccept), bytesTextHTML) {
		ctx.SetStatusCode(fasthttp.StatusGone)
		ctx.SetContentType(contentHTML)
		ctx.SetBodyString(gonePage)
		return
	}
	writeError(ctx, fasthttp.StatusGone, codeGone, "this link was deleted or has expired")
}

const gonePage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Link gone</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 4em auto;">
<h1>Link gone</h1>
<p>This short link was deleted or has expired.</p>
</body></html>
`
