package router

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/shardrpc"
)

// QR code images of short links: GET /api/v1/links/{code}/qr.
//
// The image encodes the link's short URL at this router (its base_url plus
// the code), with error correction level M (15 % of the symbol may be
// damaged) and the standard 4-module quiet zone. skip2/go-qrcode computes the
// module matrix (data encoding, Reed-Solomon, mask choice); the router draws
// it itself, as a 1-bit PNG whose modules are all the same whole number of
// pixels wide, centred in the requested size, or as an SVG of one path.
//
// Like a redirect it needs no key: it shows only the public short URL. It
// answers 404 for an unknown code and 410 for a deleted, expired or used-up
// link, exactly when the redirect would.
const (
	pathQRSuffix = "/qr"
	// DefaultQRSize is the width and height of a QR image without size, in
	// pixels.
	DefaultQRSize = 256
	// MinQRSize and MaxQRSize bound the size parameter, in pixels. A size
	// must also give every module at least one pixel (a short URL of a
	// long host name needs up to about 120 modules).
	MinQRSize = 64
	MaxQRSize = 2048
	// QRMaxAge is the Cache-Control max-age of a QR image. The image of a
	// code never changes (the short URL is fixed), so a browser or a shared
	// cache may keep it for a day; after a delete a stale image only points
	// at a short link that answers 410.
	QRMaxAge = 24 * time.Hour
)

// qrRenderVersion is part of every QR ETag: bump it when the drawing
// changes, so no cache keeps an old image under a new tag.
const qrRenderVersion = 1

var (
	contentPNG      = "image/png"
	contentSVG      = "image/svg+xml"
	qrCacheControl  = "public, max-age=" + strconv.Itoa(int(QRMaxAge/time.Second))
	strETag         = "ETag"
	strCacheControl = "Cache-Control"
)

// qrFormat is the image format of a QR request.
type qrFormat uint8

const (
	qrPNG qrFormat = iota
	qrSVG
)

func (f qrFormat) String() string {
	if f == qrSVG {
		return "svg"
	}
	return "png"
}

// qrParams is a parsed QR request.
type qrParams struct {
	format qrFormat
	size   int
}

// parseQRArgs reads format (png or svg, default png) and size (pixels,
// MinQRSize..MaxQRSize, default DefaultQRSize) from a QR request's query.
// Any other parameter, a repeated one or an empty one is refused: msg says
// why.
func parseQRArgs(args *fasthttp.Args) (p qrParams, msg string) {
	p.size = DefaultQRSize
	var seenFormat, seenSize bool
	for key, value := range args.All() {
		switch string(key) {
		case "format":
			if seenFormat {
				return p, "format is given more than once"
			}
			seenFormat = true
			switch string(value) {
			case "png":
				p.format = qrPNG
			case "svg":
				p.format = qrSVG
			default:
				return p, fmt.Sprintf("format must be png or svg, not %q", clip(value))
			}
		case "size":
			if seenSize {
				return p, "size is given more than once"
			}
			seenSize = true
			n, err := strconv.Atoi(string(value))
			if err != nil || n < MinQRSize || n > MaxQRSize {
				return p, fmt.Sprintf("size must be a whole number of pixels from %d to %d, not %q", MinQRSize, MaxQRSize, clip(value))
			}
			p.size = n
		default:
			return p, fmt.Sprintf("unknown query parameter %q; allowed: format, size", clip(key))
		}
	}
	return p, ""
}

// clip shortens a client's value for an error message.
func clip(b []byte) string {
	const limit = 32
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}

// qr answers GET /api/v1/links/{code}/qr?format=png|svg&size=N.
func (r *Router) qr(ctx *fasthttp.RequestCtx, code []byte) {
	p, msg := parseQRArgs(ctx.QueryArgs())
	if msg != "" {
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, msg)
		return
	}
	c, ok := r.apiCode(ctx, code)
	if !ok {
		return
	}
	if !r.qrLinkLive(ctx, c) {
		return
	}
	shortURL := r.baseURL + "/" + c
	etag := qrETag(shortURL, p)
	ctx.Response.Header.Set(strCacheControl, qrCacheControl)
	ctx.Response.Header.Set(strETag, etag)
	if etagMatches(ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch), etag) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	bits, err := qrModules(shortURL)
	if err != nil {
		// A short URL is at most a few hundred bytes; version 40 holds
		// 2331 bytes at level M.
		r.log.Error("qr code", "code", c, "err", err)
		writeError(ctx, fasthttp.StatusInternalServerError, codeInternal, "cannot encode the QR code")
		return
	}
	if n := len(bits); n > p.size {
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest,
			fmt.Sprintf("size must be at least %d for this link: its QR code has %d modules, quiet zone included", n, n))
		return
	}
	var body []byte
	switch p.format {
	case qrSVG:
		body = qrSVGImage(bits, p.size, shortURL)
		ctx.SetContentType(contentSVG)
	default:
		body, err = qrPNGImage(bits, p.size)
		if err != nil {
			r.log.Error("qr png", "code", c, "err", err)
			writeError(ctx, fasthttp.StatusInternalServerError, codeInternal, "cannot encode the QR image")
			return
		}
		ctx.SetContentType(contentPNG)
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.SetBodyRaw(body)
}

// qrLinkLive checks that code names a live link, as a redirect would: from
// the cache when it holds the code, else at the shard (which caches it). It
// answers 404 or 410 itself and returns false then.
func (r *Router) qrLinkLive(ctx *fasthttp.RequestCtx, code string) bool {
	now := time.Now().UnixMilli()
	switch _, _, st := r.cache.Get([]byte(code), now); st {
	case cacheHit, cacheHitRefresh:
		return true
	case cacheExpired:
		r.gone(ctx, false)
		return false
	}
	link, err := r.resolve(code)
	if err != nil {
		if errors.Is(err, shardrpc.ErrNotFound) {
			r.notFound(ctx, false)
		} else {
			r.shardError(ctx, "resolve", err)
		}
		return false
	}
	if !r.admit(code, link, now) {
		r.gone(ctx, false)
		return false
	}
	return true
}

// qrETag is the strong entity tag of the QR image of shortURL with p: the
// image is a pure function of them and of qrRenderVersion.
func qrETag(shortURL string, p qrParams) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d\x00%s\x00%s\x00%d", qrRenderVersion, shortURL, p.format, p.size)
	return `"qr` + strconv.FormatUint(h.Sum64(), 16) + `"`
}

// etagMatches reports whether an If-None-Match header names etag (weak
// comparison, as RFC 9110 asks for If-None-Match) or is "*".
func etagMatches(header []byte, etag string) bool {
	for len(header) > 0 {
		var tag []byte
		tag, header, _ = bytes.Cut(header, []byte(","))
		tag = bytes.TrimSpace(tag)
		if string(tag) == "*" {
			return true
		}
		tag = bytes.TrimPrefix(tag, []byte("W/"))
		if string(tag) == etag {
			return true
		}
	}
	return false
}

// isSubresource reports whether a path under /api/v1/links/ names a
// read-only subresource of a link (its stats or its QR code), which answers
// GET and HEAD only.
func isSubresource(path []byte) bool {
	return bytes.HasSuffix(path, []byte(pathStatsSuffix)) || bytes.HasSuffix(path, []byte(pathQRSuffix))
}
