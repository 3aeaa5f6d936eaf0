package router

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/shardrpc"
)

// Authentication headers: Authorization: Bearer <key>, or X-API-Key: <key>.
const (
	headerAPIKey          = "X-API-Key"
	headerWWWAuthenticate = "WWW-Authenticate"
	codeUnauthorized      = "unauthorized"
)

var bearerPrefix = []byte("bearer ")

// apiKeys is the router's table of API keys by the SHA-256 of the key. A
// nil *apiKeys means the cluster has no keys: the API is open.
//
// A request's key is hashed and the digest looked up; the lookup can take
// a time that depends on the digest, but learning about a digest says
// nothing about a key that hashes to it (SHA-256 is preimage-resistant),
// and the final comparison of the stored and computed digests is constant
// time. Keys are random 256-bit tokens, so one fast hash is enough.
type apiKeys struct {
	byDigest map[[sha256.Size]byte]apiKey
}

type apiKey struct {
	id     string
	admin  bool
	digest [sha256.Size]byte
}

// newAPIKeys builds the table from a validated config, or returns nil
// when it configures no key.
func newAPIKeys(keys []config.APIKey) *apiKeys {
	if len(keys) == 0 {
		return nil
	}
	t := &apiKeys{byDigest: make(map[[sha256.Size]byte]apiKey, len(keys))}
	for _, k := range keys {
		d, ok := k.Digest()
		if !ok {
			continue // Validate refuses it; never match a malformed hash
		}
		t.byDigest[d] = apiKey{id: k.ID, admin: k.Admin, digest: d}
	}
	return t
}

// caller is who makes an API request.
type caller struct {
	// open: the cluster has no keys; everyone may do everything and
	// links have no owner.
	open bool
	// owner is the ID of the caller's key ("" when open).
	owner string
	// admin keys may access every link.
	admin bool
}

// mayAccess reports whether the caller may read, edit or delete link.
func (c caller) mayAccess(link shardrpc.Link) bool {
	return c.open || c.admin || link.Owner == c.owner
}

// authenticate returns the caller of an API request. With keys
// configured, a request without a valid key is answered 401 (JSON, with
// WWW-Authenticate) here, and ok is false.
func (r *Router) authenticate(ctx *fasthttp.RequestCtx) (caller, bool) {
	if r.keys == nil {
		return caller{open: true}, true
	}
	key, presented := presentedKey(ctx)
	if presented {
		d := sha256.Sum256(key)
		if k, ok := r.keys.byDigest[d]; ok && subtle.ConstantTimeCompare(k.digest[:], d[:]) == 1 {
			return caller{owner: k.id, admin: k.admin}, true
		}
	}
	challenge := `Bearer realm="linkraft"`
	msg := "an API key is required: Authorization: Bearer <key> or X-API-Key: <key>"
	if presented {
		challenge += `, error="invalid_token"`
		msg = "the API key is not valid"
	}
	ctx.Response.Header.Set(headerWWWAuthenticate, challenge)
	writeError(ctx, fasthttp.StatusUnauthorized, codeUnauthorized, msg)
	return caller{}, false
}

// presentedKey returns the key a request carries: from Authorization
// (scheme Bearer, any case) or, without that header, from X-API-Key.
// presented is true when either header is there, even with a malformed
// or empty value (which then matches no key).
func presentedKey(ctx *fasthttp.RequestCtx) (key []byte, presented bool) {
	if auth := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization); len(auth) > 0 {
		if len(auth) < len(bearerPrefix) || !bytes.EqualFold(auth[:len(bearerPrefix)], bearerPrefix) {
			return nil, true
		}
		return bytes.TrimSpace(auth[len(bearerPrefix):]), true
	}
	if k := ctx.Request.Header.Peek(headerAPIKey); len(k) > 0 {
		return bytes.TrimSpace(k), true
	}
	return nil, false
}
