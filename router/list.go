package router

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/shardrpc"
)

// ListClient is what the router needs to list links; *shardrpc.Client
// implements it. Without it GET /api/v1/links answers 404.
type ListClient interface {
	// List reads one page of a shard's links at its leader.
	List(ctx context.Context, shard uint64, req shardrpc.ListRequest) (shardrpc.ListResponse, error)
}

var _ ListClient = (*shardrpc.Client)(nil)

// Defaults and limits of GET /api/v1/links.
const (
	// DefaultListLimit is the page size without ?limit=.
	DefaultListLimit = 50
	// MaxListLimit is the largest ?limit=.
	MaxListLimit = linkstore.MaxListLimit
)

// Error codes of the list.
const (
	codeInvalidCursor = "invalid_cursor"
	codeForbidden     = "forbidden"
)

var allowLinks = "GET, HEAD, POST"

// listResponse is the body of GET /api/v1/links.
type listResponse struct {
	Links []linkResponse `json:"links"`
	// NextCursor continues the list after this page; absent at its end.
	NextCursor string `json:"next_cursor,omitempty"`
}

// listScope is whose links a list shows and how they are filtered; the
// cursor is bound to it.
type listScope struct {
	all        bool
	owner      string
	query, tag string
}

// list answers GET /api/v1/links?q=&tag=&limit=&cursor=&owner=: the
// caller's links (an admin's: every link, or ?owner='s; without API keys:
// every link), newest first, gathered from every shard in parallel and
// merged. A page may hold fewer than limit links while next_cursor is
// present (a shard stopped at its scan budget); the list ends when
// next_cursor is absent.
func (r *Router) list(ctx *fasthttp.RequestCtx) {
	who, ok := r.authenticate(ctx)
	if !ok {
		return
	}
	lc, ok := r.shards.(ListClient)
	if !ok {
		writeError(ctx, fasthttp.StatusNotFound, codeNotFound, "listing links is not enabled on this router")
		return
	}
	scope, limit, after, status, code, msg := r.listParams(ctx.QueryArgs(), who)
	if status != 0 {
		writeError(ctx, status, code, msg)
		return
	}
	req := shardrpc.ListRequest{All: scope.all, Owner: scope.owner, Query: scope.query, Tag: scope.tag, Limit: limit}
	if after != nil {
		req.After = &shardrpc.Position{CreatedAtMs: after.CreatedAtMs, Code: after.Code}
	}
	shards := r.ring.Shards()
	pages := make([]shardrpc.ListResponse, len(shards))
	errs := make([]error, len(shards))
	eachShard(r.opts.RPCTimeout, shards, func(cctx context.Context, i int, s uint64) {
		pages[i], errs[i] = lc.List(cctx, s, req)
	})
	if err := errors.Join(errs...); err != nil {
		r.shardError(ctx, "list", err)
		return
	}
	links, next := mergePages(pages, limit)
	out := listResponse{Links: make([]linkResponse, 0, len(links))}
	for _, l := range links {
		out.Links = append(out.Links, r.linkJSON(l, true))
	}
	if next != nil {
		out.NextCursor = r.encodeCursor(*next, scope)
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// mergePages merges the shards' pages into one of at most limit links in
// list order, and returns where the next page starts (nil at the end). A
// shard that stopped early (at limit links, or at its scan budget) has
// covered the list only up to its bound; links after the earliest such
// bound wait for the next page, so none is skipped or shown twice.
func mergePages(pages []shardrpc.ListResponse, limit int) ([]shardrpc.Link, *linkstore.Position) {
	var bound *linkstore.Position
	lower := func(p linkstore.Position) {
		if bound == nil || p.Before(*bound) {
			bound = &p
		}
	}
	var all []shardrpc.Link
	for _, pg := range pages {
		all = append(all, pg.Links...)
		switch {
		case pg.Frontier != nil:
			lower(linkstore.Position{CreatedAtMs: pg.Frontier.CreatedAtMs, Code: pg.Frontier.Code})
		case pg.More && len(pg.Links) > 0:
			last := pg.Links[len(pg.Links)-1]
			lower(linkstore.Position{CreatedAtMs: last.CreatedAtMs, Code: last.Code})
		}
	}
	posOf := func(l shardrpc.Link) linkstore.Position {
		return linkstore.Position{CreatedAtMs: l.CreatedAtMs, Code: l.Code}
	}
	if bound != nil {
		all = slices.DeleteFunc(all, func(l shardrpc.Link) bool { return bound.Before(posOf(l)) })
	}
	slices.SortFunc(all, func(a, b shardrpc.Link) int { return posOf(a).Compare(posOf(b)) })
	all = slices.CompactFunc(all, func(a, b shardrpc.Link) bool { return a.Code == b.Code })
	if len(all) > limit {
		p := posOf(all[limit-1])
		return all[:limit], &p
	}
	return all, bound
}

// listParams reads the query of a list. A non-zero status is the error to
// answer.
func (r *Router) listParams(args *fasthttp.Args, who caller) (scope listScope, limit int, after *linkstore.Position, status int, code, msg string) {
	bad := fasthttp.StatusBadRequest
	seen := map[string]int{}
	var unknown string
	for k := range args.All() {
		switch key := string(k); key {
		case "q", "tag", "limit", "cursor", "owner":
			seen[key]++
		default:
			if unknown == "" {
				unknown = key
			}
		}
	}
	if unknown != "" {
		return scope, 0, nil, bad, codeInvalidRequest, fmt.Sprintf("unknown query parameter %q; allowed: q, tag, limit, cursor, owner", unknown)
	}
	for k, n := range seen {
		if n > 1 {
			return scope, 0, nil, bad, codeInvalidRequest, fmt.Sprintf("query parameter %q is given %d times", k, n)
		}
	}
	limit = DefaultListLimit
	if v := args.Peek("limit"); seen["limit"] > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > MaxListLimit {
			return scope, 0, nil, bad, codeInvalidRequest, fmt.Sprintf("limit must be an integer from 1 to %d", MaxListLimit)
		}
		limit = n
	}
	scope.query = string(args.Peek("q"))
	if len(scope.query) > linkstore.MaxListQuery || !utf8.ValidString(scope.query) {
		return scope, 0, nil, bad, codeInvalidRequest, fmt.Sprintf("q must be UTF-8 text of at most %d bytes", linkstore.MaxListQuery)
	}
	scope.tag = string(args.Peek("tag"))
	if seen["tag"] > 0 && !linkstore.ValidTag(scope.tag) {
		return scope, 0, nil, bad, codeInvalidTags, fmt.Sprintf("tag must be 1 to %d characters of [A-Za-z0-9_-:.]", linkstore.MaxTagLength)
	}
	owner := string(args.Peek("owner"))
	switch {
	case who.open:
		if seen["owner"] > 0 {
			return scope, 0, nil, bad, codeInvalidRequest, "owner needs API keys; this cluster has none, so links have no owner"
		}
		scope.all = true
	case seen["owner"] == 0 && who.admin:
		scope.all = true
	case seen["owner"] == 0:
		scope.owner = who.owner
	case owner != who.owner && !who.admin:
		return scope, 0, nil, fasthttp.StatusForbidden, codeForbidden, "owner is for admin keys; other keys list their own links"
	default:
		if err := linkstore.ValidateOwner(owner); err != nil || owner == "" {
			return scope, 0, nil, bad, codeInvalidRequest, "owner must be an API key ID"
		}
		scope.owner = owner
	}
	if seen["cursor"] > 0 {
		p, err := r.decodeCursor(string(args.Peek("cursor")), scope)
		if err != nil {
			return scope, 0, nil, bad, codeInvalidCursor, err.Error()
		}
		after = &p
	}
	return scope, limit, after, 0, "", ""
}

// Cursors: base64url(payload | mac) with
//
//	payload = 0x01 | created_at_ms zigzag varint | code length u8 | code
//	mac     = the first 16 bytes of HMAC-SHA256(cursorKey, scope | payload)
//
// so a cursor is opaque, any router of the cluster accepts it (the key
// derives from the code secret), and one that was altered or belongs to
// another query (owner, q, tag) is refused.
const (
	cursorVersion = 0x01
	cursorMACSize = 16
)

// errBadCursor is the answer to any cursor that does not verify.
var errBadCursor = errors.New("cursor is not one this API gave out for this query (start again without cursor)")

func (r *Router) cursorMAC(payload []byte, s listScope) []byte {
	key := sha256.Sum256([]byte("linkraft list cursor v1\x00" + r.codeSecret))
	m := hmac.New(sha256.New, key[:])
	var scope []byte
	if s.all {
		scope = append(scope, 'a')
	} else {
		scope = append(scope, 'o')
	}
	for _, f := range []string{s.owner, s.query, s.tag} {
		scope = binary.AppendUvarint(scope, uint64(len(f)))
		scope = append(scope, f...)
	}
	m.Write(scope)
	m.Write(payload)
	return m.Sum(nil)[:cursorMACSize]
}

func (r *Router) encodeCursor(p linkstore.Position, s listScope) string {
	b := []byte{cursorVersion}
	b = binary.AppendVarint(b, p.CreatedAtMs)
	b = append(b, byte(len(p.Code)))
	b = append(b, p.Code...)
	return base64.RawURLEncoding.EncodeToString(append(b, r.cursorMAC(b, s)...))
}

func (r *Router) decodeCursor(c string, s listScope) (linkstore.Position, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(raw) < 1+1+1+cursorMACSize {
		return linkstore.Position{}, errBadCursor
	}
	payload, mac := raw[:len(raw)-cursorMACSize], raw[len(raw)-cursorMACSize:]
	if !hmac.Equal(mac, r.cursorMAC(payload, s)) || payload[0] != cursorVersion {
		return linkstore.Position{}, errBadCursor
	}
	created, n := binary.Varint(payload[1:])
	if n <= 0 {
		return linkstore.Position{}, errBadCursor
	}
	rest := payload[1+n:]
	if len(rest) < 2 || int(rest[0]) != len(rest)-1 || len(rest)-1 > linkstore.MaxCodeLength {
		return linkstore.Position{}, errBadCursor
	}
	return linkstore.Position{CreatedAtMs: created, Code: string(rest[1:])}, nil
}
