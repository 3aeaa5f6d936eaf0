package router

import (
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
)

// Browser caching of redirects.
//
// A browser keeps a 301 or 308 without an explicit lifetime for as long as
// it likes (RFC 9111 lets it guess one; Chrome and Firefox keep permanent
// redirects until the cache is cleared), so a deleted or edited link would
// keep sending people to the old target from their own cache, and the
// router would never see those clicks. Every redirect therefore carries a
// Cache-Control chosen by its status:
//
//   - 301 and 308: "private, max-age=60". A browser reuses the redirect for
//     at most PermanentRedirectMaxAge without asking; "private" keeps shared
//     caches (proxies, CDNs) from serving one stored answer to many people.
//     A delete or an edit reaches every browser within the router cache's
//     TTL plus PermanentRedirectMaxAge (65 s with the defaults); repeat
//     clicks of one browser within that minute are not counted.
//   - 302 and 307: "no-store". Nothing stores the redirect, so every click,
//     even a back-button navigation, reaches a router and is counted, and a
//     delete or an edit takes effect within the router cache's TTL.
//
// The values are constants, so setting them allocates nothing on the
// cached redirect path.

// PermanentRedirectMaxAge is how long a browser may reuse a 301 or 308
// redirect without asking a router again: the browser's share of the bound
// within which a delete or an edit takes effect. One minute keeps repeat
// clicks fast (Bitly sends 90 s on its 301s, Shlink 30 s by default) while
// "edit the link" still means "within about a minute" to a user.
const PermanentRedirectMaxAge = 60 * time.Second

// Cache-Control values of redirects; TestRedirectCacheControlValues checks
// the permanent one against PermanentRedirectMaxAge.
const (
	cacheControlPermanent = "private, max-age=60"
	cacheControlTemporary = "no-store"
)

// The header names and Cache-Control values of a redirect as bytes, in
// canonical form, for ResponseHeader.SetCanonical: Set would copy and
// normalize the name on every redirect.
var (
	headerLocation        = []byte("Location")
	headerCacheControl    = []byte("Cache-Control")
	bytesControlPermanent = []byte(cacheControlPermanent)
	bytesControlTemporary = []byte(cacheControlTemporary)
)

// redirectCacheControl returns the Cache-Control of a redirect with
// status, which the caller must not modify.
func redirectCacheControl(status int) []byte {
	switch status {
	case fasthttp.StatusMovedPermanently, fasthttp.StatusPermanentRedirect:
		return bytesControlPermanent
	default:
		return bytesControlTemporary
	}
}

// writeRedirect answers a redirect to target with status (301, 302, 307 or
// 308) and the status's Cache-Control. It allocates nothing.
//
// SetCanonical copies the value into the response (and blanks any CR or
// LF in the copy), so passing the target's bytes without a copy of our own
// is safe: fasthttp never writes through them.
func writeRedirect(ctx *fasthttp.RequestCtx, status int, target string) {
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetCanonical(headerLocation, unsafe.Slice(unsafe.StringData(target), len(target)))
	ctx.Response.Header.SetCanonical(headerCacheControl, redirectCacheControl(status))
}
