package router

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/linkurl"
	"github.com/linkraft/linkraft/shardrpc"
	"github.com/linkraft/linkraft/shortcode"
)

// pathBulk creates many links in one request. "bulk" is a reserved word,
// so no alias shadows it.
const pathBulk = "/api/v1/links/bulk"

// Limits of a bulk create.
const (
	// MaxBulkLinks bounds the links of one bulk create; more is a 413.
	MaxBulkLinks = 1000
	// MaxBulkBodySize bounds the body of a bulk create, in bytes.
	MaxBulkBodySize = 1 << 20
	// maxIdempotencyKey bounds the Idempotency-Key header of a bulk
	// create.
	maxIdempotencyKey = 128
)

// allowBulk is the Allow header of the bulk route.
var allowBulk = "POST"

// codeTooManyLinks: a bulk create with more than MaxBulkLinks links (413).
const codeTooManyLinks = "too_many_links"

// headerIdempotencyKey makes a retried bulk create return the first
// request's results.
const headerIdempotencyKey = "Idempotency-Key"

// BulkClient is what a bulk create needs beyond ShardClient:
// *shardrpc.Client implements it. With a ShardClient that is not a
// BulkClient, a bulk create sends its items one Create at a time.
type BulkClient interface {
	// BulkCreate stores items in the shard as one Raft entry and
	// returns one result per item, in order.
	BulkCreate(ctx context.Context, shard uint64, items []shardrpc.CreateRequest) ([]shardrpc.BulkItemResult, error)
}

var _ BulkClient = (*shardrpc.Client)(nil)

// bulkResult is one item's answer in a bulk create: Status as a single
// create would answer (201 created, 200 an existing link found by reuse,
// else the error's status) and either Link or Error.
type bulkResult struct {
	Status int           `json:"status"`
	Link   *linkResponse `json:"link,omitempty"`
	Error  *apiError     `json:"error,omitempty"`
}

// bulkResponse is the body of a bulk create's 200.
type bulkResponse struct {
	// Succeeded counts the items with a link (201 or 200), Failed the
	// others.
	Succeeded int          `json:"succeeded"`
	Failed    int          `json:"failed"`
	Results   []bulkResult `json:"results"`
}

// bulkItem is a valid item on its way to its shard.
type bulkItem struct {
	index int
	reuse bool
	req   shardrpc.CreateRequest
}

// bulkCreate answers POST /api/v1/links/bulk: {"links": [create, ...]}
// with 1 to MaxBulkLinks creates, each as POST /api/v1/links takes it.
// The router checks every item; a bad one gets its own 4xx in its result
// slot and the others proceed. The valid items are grouped by shard, and
// each shard gets one bulk create RPC, applied as one Raft entry. The
// answer is 200 with one result per item in request order; a request that
// is bad as a whole (not JSON, no links, too many) is a 4xx and nothing is
// stored.
//
// With API keys the request needs one (401 otherwise), as a create does,
// and every link records the key's ID as its owner.
//
// Every item carries a request ID, so the shard applies it at most once
// however often the RPC is retried. With an Idempotency-Key header the IDs
// derive from the key, the item's position and its bytes, so a client
// that resends the same request with the same key gets the first
// request's links back (within linkstore.RequestWindow later creates of
// the shard) instead of new ones.
func (r *Router) bulkCreate(ctx *fasthttp.RequestCtx) {
	who, ok := r.authenticate(ctx)
	if !ok {
		return
	}
	body, ok := jsonBody(ctx, MaxBulkBodySize)
	if !ok {
		return
	}
	key := ctx.Request.Header.Peek(headerIdempotencyKey)
	if len(key) > maxIdempotencyKey || !printableASCII(key) {
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest,
			fmt.Sprintf("%s must be 1 to %d printable ASCII characters", headerIdempotencyKey, maxIdempotencyKey))
		return
	}
	raws, status, code, msg := decodeBulk(body)
	if status != 0 {
		writeError(ctx, status, code, msg)
		return
	}

	now := time.Now()
	out := bulkResponse{Results: make([]bulkResult, len(raws))}
	byShard := map[uint64][]bulkItem{}
	var shards []uint64
	for i, raw := range raws {
		req, st, c, m := r.checkBulkItem(raw, now)
		if st != 0 {
			out.Results[i] = bulkResult{Status: st, Error: &apiError{Code: c, Message: m}}
			continue
		}
		req.Owner = who.owner
		if len(key) > 0 {
			req.RequestID = bulkRequestID(who.owner, key, i, raw)
		} else {
			req.RequestID = shardrpc.NewRequestID()
		}
		shard := r.ring.ShardOf(req.Partition)
		if byShard[shard] == nil {
			shards = append(shards, shard)
		}
		byShard[shard] = append(byShard[shard], bulkItem{index: i, reuse: req.Reuse, req: req})
	}

	eachShard(r.opts.RPCTimeout, shards, func(cctx context.Context, _ int, shard uint64) {
		// Each call writes only its own items' slots.
		r.bulkShard(cctx, shard, byShard[shard], out.Results)
	})
	for _, res := range out.Results {
		if res.Link != nil {
			out.Succeeded++
		} else {
			out.Failed++
		}
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// bulkShard creates one shard's items and fills their result slots.
func (r *Router) bulkShard(ctx context.Context, shard uint64, items []bulkItem, results []bulkResult) {
	reqs := make([]shardrpc.CreateRequest, len(items))
	for i, it := range items {
		reqs[i] = it.req
	}
	var got []shardrpc.BulkItemResult
	var err error
	if bc, ok := r.shards.(BulkClient); ok {
		got, err = bc.BulkCreate(ctx, shard, reqs)
	} else {
		got = make([]shardrpc.BulkItemResult, len(reqs))
		for i, req := range reqs {
			link, err := r.shards.Create(ctx, shard, req)
			if err != nil {
				var re *shardrpc.RemoteError
				if errors.As(err, &re) {
					got[i].Error = &re.Body
				} else {
					got[i].Error = &shardrpc.ErrorBody{Code: codeOf(err), Message: err.Error()}
				}
				continue
			}
			got[i].Link = &link
		}
	}
	if err == nil && len(got) != len(items) {
		err = fmt.Errorf("%w: shard %d answered %d results for %d items", shardrpc.ErrProtocol, shard, len(got), len(items))
	}
	if err != nil {
		st, code, msg := r.errorOf("bulk create", err)
		for _, it := range items {
			results[it.index] = bulkResult{Status: st, Error: &apiError{Code: code, Message: msg}}
		}
		return
	}
	for i, it := range items {
		g := got[i]
		if g.Link == nil || g.Link.Code == "" || g.Link.URL == "" {
			var err error = fmt.Errorf("%w: shard %d returned an incomplete link", shardrpc.ErrProtocol, shard)
			if g.Error != nil {
				err = &shardrpc.RemoteError{Node: "shard " + strconv.FormatUint(shard, 10), Status: g.Error.Code.HTTPStatus(), Body: *g.Error}
			}
			st, code, msg := r.errorOf("bulk create", err)
			results[it.index] = bulkResult{Status: st, Error: &apiError{Code: code, Message: msg}}
			continue
		}
		r.cacheLink(g.Link.Code, *g.Link)
		link := r.linkJSON(*g.Link, false)
		st := fasthttp.StatusCreated
		if it.reuse && !g.Link.Created {
			st = fasthttp.StatusOK
		}
		results[it.index] = bulkResult{Status: st, Link: &link}
	}
}

// codeOf returns the wire code of a client error, for the one-at-a-time
// path.
func codeOf(err error) shardrpc.Code {
	switch {
	case errors.Is(err, shardrpc.ErrAliasTaken):
		return shardrpc.ErrCodeAliasTaken
	case errors.Is(err, shardrpc.ErrPartitionFull):
		return shardrpc.ErrCodeExhausted
	case errors.Is(err, shardrpc.ErrBadRequest):
		return shardrpc.ErrCodeBadRequest
	}
	return shardrpc.ErrCodeUnavailable
}

// errorOf is shardError's mapping as a value: the status, API code and
// message of a failed shard call.
func (r *Router) errorOf(op string, err error) (int, string, string) {
	var re *shardrpc.RemoteError
	switch {
	case errors.Is(err, shardrpc.ErrAliasTaken):
		return fasthttp.StatusConflict, codeAliasTaken, "alias is already taken"
	case errors.Is(err, shardrpc.ErrPartitionFull):
		return fasthttp.StatusInsufficientStorage, codePartitionFull, "no more codes can be created in this partition"
	case errors.Is(err, shardrpc.ErrBadRequest) && errors.As(err, &re):
		return fasthttp.StatusBadRequest, codeInvalidRequest, re.Body.Message
	case errors.Is(err, shardrpc.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		r.log.Warn("shard unavailable", "op", op, "err", err)
		return fasthttp.StatusServiceUnavailable, codeUnavailable, "the shard is unavailable, try again shortly"
	default:
		r.log.Error("shard call failed", "op", op, "err", err)
		return fasthttp.StatusBadGateway, codeUpstream, "the storage layer failed to answer"
	}
}

// checkBulkItem checks one item as create checks its body and returns
// the request for its shard, or the item's error.
func (r *Router) checkBulkItem(raw []byte, now time.Time) (shardrpc.CreateRequest, int, string, string) {
	bad := fasthttp.StatusBadRequest
	req, status, code, msg := decodeCreate(raw)
	if status != 0 {
		return shardrpc.CreateRequest{}, status, code, strings.Replace(msg, "request body", "link", 1)
	}
	target, err := linkurl.Normalize(req.URL)
	if err == nil {
		err = linkurl.NotOwnDomain(target, r.bases)
	}
	if err != nil {
		return shardrpc.CreateRequest{}, bad, codeInvalidURL, err.Error()
	}
	expiresAt, msg := createLimits(req, now)
	if msg != "" {
		return shardrpc.CreateRequest{}, bad, codeInvalidLimits, msg
	}
	if code, msg := createFields(req); msg != "" {
		return shardrpc.CreateRequest{}, bad, code, msg
	}
	var partition uint32
	if req.Alias != "" {
		if err := shortcode.ValidateAlias(req.Alias); err != nil {
			return shardrpc.CreateRequest{}, bad, codeInvalidAlias, err.Error()
		}
		partition = r.ring.PartitionOfCode(req.Alias)
	} else {
		partition = r.ring.PartitionOfURL(target)
	}
	return shardrpc.CreateRequest{
		Partition:   partition,
		URL:         target,
		Alias:       req.Alias,
		Reuse:       req.Reuse,
		ExpiresAtMs: expiresAt,
		MaxClicks:   req.MaxClicks,

		Title:          req.Title,
		Tags:           req.Tags,
		RedirectStatus: req.RedirectStatus,
	}, 0, "", ""
}

// decodeBulk parses a bulk body strictly: one JSON object with exactly
// the key "links", an array of 1 to MaxBulkLinks values (each checked
// later as a create body). A non-zero status is the error to answer.
func decodeBulk(body []byte) (links []json.RawMessage, status int, code, msg string) {
	bad := fasthttp.StatusBadRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil {
		var syntaxErr *json.SyntaxError
		switch {
		case errors.As(err, &syntaxErr):
			return nil, bad, codeInvalidJSON, fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, err)
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil, bad, codeInvalidJSON, `request body must be a JSON object {"links": [...]}`
		default:
			return nil, bad, codeInvalidJSON, `request body must be a JSON object {"links": [...]}`
		}
	}
	if fields == nil {
		return nil, bad, codeInvalidJSON, `request body must be a JSON object {"links": [...]}, not null`
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, bad, codeInvalidJSON, "request body must hold exactly one JSON object"
	}
	for k := range fields {
		if k != "links" {
			return nil, bad, codeUnknownField, fmt.Sprintf("unknown field %q; allowed: links", k)
		}
	}
	raw, ok := fields["links"]
	if !ok {
		return nil, bad, codeInvalidRequest, `field "links" is required`
	}
	if err := json.Unmarshal(raw, &links); err != nil || links == nil {
		return nil, bad, codeInvalidJSON, `field "links" must be an array of links`
	}
	switch {
	case len(links) == 0:
		return nil, bad, codeInvalidRequest, fmt.Sprintf(`field "links" must hold 1 to %d links`, MaxBulkLinks)
	case len(links) > MaxBulkLinks:
		return nil, fasthttp.StatusRequestEntityTooLarge, codeTooManyLinks,
			fmt.Sprintf("a bulk create takes at most %d links, not %d", MaxBulkLinks, len(links))
	}
	return links, 0, "", ""
}

// bulkRequestID derives an item's request ID from the caller (its API
// key's ID), the request's Idempotency-Key, the item's position and its
// bytes: the same caller, key and item give the same ID; another caller,
// key or item another, so callers never see each other's results.
func bulkRequestID(owner string, key []byte, index int, item []byte) string {
	h := sha256.New()
	h.Write([]byte("linkraft bulk\x00"))
	h.Write([]byte(owner))
	h.Write([]byte{0})
	h.Write(key)
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, int64(index), 10))
	h.Write([]byte{0})
	h.Write(item)
	return "bulk-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// printableASCII reports whether b is printable ASCII (space excluded).
func printableASCII(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}
