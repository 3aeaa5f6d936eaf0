package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/linkurl"
	"github.com/linkraft/linkraft/shardrpc"
	"github.com/linkraft/linkraft/shortcode"
)

// Paths.
const (
	pathLinks       = "/api/v1/links"
	pathLinksPrefix = "/api/v1/links/"
	pathAPIPrefix   = "/api/"
	pathHealth      = "/healthz"
	pathReady       = "/readyz"
)

// Error codes of the API's JSON errors.
const (
	codeInvalidJSON      = "invalid_json"
	codeUnknownField     = "unknown_field"
	codeInvalidURL       = "invalid_url"
	codeInvalidAlias     = "invalid_alias"
	codeInvalidRequest   = "invalid_request"
	codeAliasTaken       = "alias_taken"
	codeBodyTooLarge     = "body_too_large"
	codeUnsupportedMedia = "unsupported_media_type"
	codeMethodNotAllowed = "method_not_allowed"
	codeNotFound         = "not_found"
	codeUnavailable      = "unavailable"
	codeNotReady         = "not_ready"
	codePartitionFull    = "partition_full"
	codeUpstream         = "upstream_error"
	codeInternal         = "internal"
	codeHeaderTooLarge   = "header_too_large"
	codeTimeout          = "request_timeout"
)

var (
	strAllow      = "Allow"
	allowGetHead  = "GET, HEAD"
	contentJSON   = "application/json"
	contentHTML   = "text/html; charset=utf-8"
	bytesTextHTML = []byte("text/html")
)

// handle is the request handler: it routes by path and method. The
// redirect of a cached code, the hot path, allocates nothing.
func (r *Router) handle(ctx *fasthttp.RequestCtx) {
	defer func() {
		if rec := recover(); rec != nil {
			r.log.Error("panic while serving a request", "method", string(ctx.Method()),
				"path", string(ctx.Path()), "panic", fmt.Sprint(rec), "stack", string(debug.Stack()))
			ctx.Response.Reset()
			writeError(ctx, fasthttp.StatusInternalServerError, codeInternal, "internal error")
		}
	}()
	path := ctx.Path()
	switch {
	case len(path) > 1 && path[0] == '/' && bytes.IndexByte(path[1:], '/') < 0 &&
		string(path) != pathHealth && string(path) != pathReady:
		if !ctx.IsGet() && !ctx.IsHead() {
			methodNotAllowed(ctx, allowGetHead)
			return
		}
		r.redirect(ctx, path[1:])
	case string(path) == pathOpenAPI:
		r.openAPI(ctx)
	case string(path) == pathLinks:
		switch {
		case ctx.IsPost():
			r.create(ctx)
		case ctx.IsGet() || ctx.IsHead():
			r.list(ctx)
		default:
			methodNotAllowed(ctx, allowLinks)
		}
	case string(path) == pathBulk:
		if !ctx.IsPost() {
			methodNotAllowed(ctx, allowBulk)
			return
		}
		r.bulkCreate(ctx)
	case bytes.HasPrefix(path, []byte(pathLinksPrefix)):
		if ctx.IsDelete() {
			r.deleteLink(ctx, path[len(pathLinksPrefix):])
			return
		}
		if ctx.IsPatch() {
			r.editLink(ctx, path[len(pathLinksPrefix):])
			return
		}
		if !ctx.IsGet() && !ctx.IsHead() {
			allow := allowLink
			if isSubresource(path) {
				allow = allowGetHead
			}
			methodNotAllowed(ctx, allow)
			return
		}
		r.info(ctx, path[len(pathLinksPrefix):])
	case string(path) == pathHealth:
		if !ctx.IsGet() && !ctx.IsHead() {
			methodNotAllowed(ctx, allowGetHead)
			return
		}
		r.health(ctx)
	case string(path) == pathReady:
		if !ctx.IsGet() && !ctx.IsHead() {
			methodNotAllowed(ctx, allowGetHead)
			return
		}
		r.ready(ctx)
	default:
		writeError(ctx, fasthttp.StatusNotFound, codeNotFound, "no such resource")
	}
}

// codeShape reports whether s can be a code: the generated shape, or an
// alias's length and characters. It does not allocate.
func (r *Router) codeShape(s []byte) bool {
	if r.codec.IsGeneratedShapeBytes(s) {
		return true
	}
	if len(s) < shortcode.MinAliasLength || len(s) > shortcode.MaxAliasLength {
		return false
	}
	for _, b := range s {
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-') {
			return false
		}
	}
	return true
}

// redirect answers GET or HEAD /{code}.
func (r *Router) redirect(ctx *fasthttp.RequestCtx, code []byte) {
	now := requestTime(ctx).UnixMilli()
	switch target, status, st := r.cache.Get(code, now); st {
	case cacheHit:
		writeRedirect(ctx, r.statusOf(status), target)
		r.countClick(ctx, code)
		return
	case cacheHitRefresh:
		writeRedirect(ctx, r.statusOf(status), target)
		r.countClick(ctx, code)
		r.refreshAhead(code)
		return
	case cacheExpired:
		r.gone(ctx, true)
		return
	}
	if !r.codeShape(code) {
		r.notFound(ctx, true)
		return
	}
	c := string(code)
	if !r.codec.IsGeneratedShape(c) && shortcode.IsReserved(c) {
		r.notFound(ctx, true)
		return
	}
	link, err := r.resolve(c)
	if err != nil {
		if errors.Is(err, shardrpc.ErrNotFound) {
			r.notFound(ctx, true)
			return
		}
		if errors.Is(err, shardrpc.ErrGone) {
			r.gone(ctx, true)
			return
		}
		r.shardError(ctx, "resolve", err)
		return
	}
	if !r.admit(c, link, now) {
		r.gone(ctx, true)
		return
	}
	writeRedirect(ctx, r.statusOf(uint16(link.RedirectStatus)), link.URL)
	r.countClick(ctx, code)
}

// requestTime is the time the server started handling the request: the
// clock fasthttp read right before calling the handler, so a redirect does
// not read it again. A RequestCtx that no server handed to the handler
// (tests) has none; the clock then.
func requestTime(ctx *fasthttp.RequestCtx) time.Time {
	if t := ctx.Time(); !t.IsZero() {
		return t
	}
	return time.Now()
}

// statusOf returns the redirect status of a link whose own status is
// status: the cluster's default when it is 0.
func (r *Router) statusOf(status uint16) int {
	if status == 0 {
		return r.redirectStatus
	}
	return int(status)
}

func (r *Router) resolve(code string) (shardrpc.Link, error) {
	shard := r.ring.ShardOf(r.ring.PartitionOfCode(code))
	var link shardrpc.Link
	var err error
	if dr, ok := r.shards.(deadlineResolver); ok {
		// No context, hence no timer, per cache miss.
		link, err = dr.ResolveDeadline(time.Now().Add(r.opts.RPCTimeout), shard, code)
	} else {
		cctx, cancel := context.WithTimeout(context.Background(), r.opts.RPCTimeout)
		link, err = r.shards.Resolve(cctx, shard, code)
		cancel()
	}
	if err != nil {
		return shardrpc.Link{}, err
	}
	if link.URL == "" {
		return shardrpc.Link{}, fmt.Errorf("%w: shard %d returned a link without URL for %q", shardrpc.ErrProtocol, shard, code)
	}
	return link, nil
}

// deadlineResolver is a ShardClient that can resolve bounded by a deadline
// instead of a context (*shardrpc.Client can).
type deadlineResolver interface {
	ResolveDeadline(deadline time.Time, shard uint64, code string) (shardrpc.Link, error)
}

// notFound answers 404: a small HTML page for a browser asking for a
// redirect, JSON otherwise.
func (r *Router) notFound(ctx *fasthttp.RequestCtx, page bool) {
	if page && bytes.Contains(ctx.Request.Header.Peek(fasthttp.HeaderAccept), bytesTextHTML) {
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetContentType(contentHTML)
		ctx.SetBodyString(notFoundPage)
		return
	}
	writeError(ctx, fasthttp.StatusNotFound, codeNotFound, "no link with this code")
}

const notFoundPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Link not found</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 32em; margin: 4em auto;">
<h1>Link not found</h1>
<p>This short link does not exist. Check that it was copied completely.</p>
</body></html>
`

// createRequest is the body of POST /api/v1/links.
type createRequest struct {
	URL   string
	Alias string
	Reuse bool
	// ExpiresAt (RFC 3339), TTL (a Go duration) and MaxClicks are the
	// link's limits as given; createLimits checks them.
	ExpiresAt    string
	TTL          string
	MaxClicks    uint64
	HasMaxClicks bool
	// Title, Tags and RedirectStatus are the link's fields as given;
	// createFields checks them.
	Title             string
	Tags              []string
	RedirectStatus    int
	HasRedirectStatus bool
}

// linkResponse is a link as the API shows it.
type linkResponse struct {
	Code      string `json:"code"`
	ShortURL  string `json:"short_url"`
	URL       string `json:"url"`
	CreatedAt string `json:"created_at"`
	Alias     *bool  `json:"alias,omitempty"`
	// Clicks is the link's all-time human clicks (GET of the link only;
	// absent when click counting is off or the shard did not answer).
	Clicks *uint64 `json:"clicks,omitempty"`
	// ExpiresAt (RFC 3339, UTC) and MaxClicks are the link's limits,
	// absent when it has none; Expired is true once its expiry passed.
	ExpiresAt string `json:"expires_at,omitempty"`
	MaxClicks uint64 `json:"max_clicks,omitempty"`
	Expired   bool   `json:"expired,omitempty"`
	// Title, Tags and RedirectStatus are absent when not set (a link
	// without redirect_status redirects with the cluster's default);
	// UpdatedAt is the last edit's time (RFC 3339, UTC), absent if none.
	Title          string   `json:"title,omitempty"`
	Tags           []string `json:"tags,omitempty"`
	RedirectStatus int      `json:"redirect_status,omitempty"`
	UpdatedAt      string   `json:"updated_at,omitempty"`
	// Owner is the ID of the API key that created the link (absent when
	// the cluster has no keys).
	Owner string `json:"owner,omitempty"`
}

// jsonBody returns the request's body when it is declared JSON and at
// most limit bytes; otherwise it answers 415 or 413 and returns false.
func jsonBody(ctx *fasthttp.RequestCtx, limit int) ([]byte, bool) {
	if !isJSON(ctx.Request.Header.ContentType()) {
		writeError(ctx, fasthttp.StatusUnsupportedMediaType, codeUnsupportedMedia,
			"Content-Type must be application/json")
		return nil, false
	}
	body := ctx.PostBody()
	if len(body) > limit {
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, codeBodyTooLarge,
			fmt.Sprintf("request body must be at most %d bytes", limit))
		return nil, false
	}
	return body, true
}

// create answers POST /api/v1/links.
func (r *Router) create(ctx *fasthttp.RequestCtx) {
	who, ok := r.authenticate(ctx)
	if !ok {
		return
	}
	body, ok := jsonBody(ctx, MaxBodySize)
	if !ok {
		return
	}
	req, status, code, msg := decodeCreate(body)
	if status != 0 {
		writeError(ctx, status, code, msg)
		return
	}
	target, err := linkurl.Normalize(req.URL)
	if err == nil {
		err = linkurl.NotOwnDomain(target, r.bases)
	}
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidURL, err.Error())
		return
	}
	expiresAt, msg := createLimits(req, time.Now())
	if msg != "" {
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidLimits, msg)
		return
	}
	if code, msg := createFields(req); msg != "" {
		writeError(ctx, fasthttp.StatusBadRequest, code, msg)
		return
	}
	var partition uint32
	if req.Alias != "" {
		if err := shortcode.ValidateAlias(req.Alias); err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, codeInvalidAlias, err.Error())
			return
		}
		partition = r.ring.PartitionOfCode(req.Alias)
	} else {
		partition = r.ring.PartitionOfURL(target)
	}
	shard := r.ring.ShardOf(partition)
	cctx, cancel := context.WithTimeout(context.Background(), r.opts.RPCTimeout)
	defer cancel()
	link, err := r.creates.create(cctx, shard, shardrpc.CreateRequest{
		Partition:   partition,
		URL:         target,
		Alias:       req.Alias,
		Reuse:       req.Reuse,
		RequestID:   shardrpc.NewRequestID(),
		ExpiresAtMs: expiresAt,
		MaxClicks:   req.MaxClicks,

		Owner:          who.owner,
		Title:          req.Title,
		Tags:           req.Tags,
		RedirectStatus: req.RedirectStatus,
	})
	if err != nil {
		r.shardError(ctx, "create", err)
		return
	}
	if link.Code == "" || link.URL == "" {
		r.shardError(ctx, "create", fmt.Errorf("%w: shard %d returned an incomplete link", shardrpc.ErrProtocol, shard))
		return
	}
	r.cacheLink(link.Code, link)
	status = fasthttp.StatusCreated
	if req.Reuse && !link.Created {
		status = fasthttp.StatusOK
	}
	r.writeCreated(ctx, status, link)
}

// decodeCreate parses a create body strictly: one JSON object whose keys
// are create fields (createFieldList; "url", a string, required), matched
// case-sensitively. A non-zero status is the error to answer. The common
// shape takes parseCreatePlain's path; everything else, every error
// included, decodeCreateJSON's.
func decodeCreate(body []byte) (req createRequest, status int, code, msg string) {
	if req, ok := parseCreatePlain(body); ok {
		return req, 0, "", ""
	}
	return decodeCreateJSON(body)
}

// decodeCreateJSON is decodeCreate with encoding/json, for any body.
func decodeCreateJSON(body []byte) (req createRequest, status int, code, msg string) {
	bad := fasthttp.StatusBadRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil {
		var typeErr *json.UnmarshalTypeError
		var syntaxErr *json.SyntaxError
		switch {
		case errors.Is(err, io.EOF):
			return req, bad, codeInvalidJSON, "request body must be a JSON object"
		case errors.As(err, &typeErr):
			return req, bad, codeInvalidJSON, "request body must be a JSON object, not " + typeErr.Value
		case errors.As(err, &syntaxErr):
			return req, bad, codeInvalidJSON, fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, err)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return req, bad, codeInvalidJSON, "malformed JSON: unexpected end of input"
		default:
			return req, bad, codeInvalidJSON, fmt.Sprintf("malformed JSON: %v", err)
		}
	}
	if fields == nil {
		return req, bad, codeInvalidJSON, "request body must be a JSON object, not null"
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, bad, codeInvalidJSON, "request body must hold exactly one JSON object"
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys) // report the same field first every time
	for _, k := range keys {
		raw := fields[k]
		var err error
		switch k {
		case "url":
			err = json.Unmarshal(raw, &req.URL)
		case "alias":
			err = json.Unmarshal(raw, &req.Alias)
		case "reuse":
			err = json.Unmarshal(raw, &req.Reuse)
		case "expires_at":
			err = json.Unmarshal(raw, &req.ExpiresAt)
		case "ttl":
			err = json.Unmarshal(raw, &req.TTL)
		case "max_clicks":
			err = json.Unmarshal(raw, &req.MaxClicks)
			req.HasMaxClicks = true
		case "title":
			err = json.Unmarshal(raw, &req.Title)
		case "tags":
			err = json.Unmarshal(raw, &req.Tags)
		case "redirect_status":
			err = json.Unmarshal(raw, &req.RedirectStatus)
			req.HasRedirectStatus = true
		default:
			return req, bad, codeUnknownField, fmt.Sprintf("unknown field %q; allowed: %s", k, createFieldList)
		}
		if err != nil {
			kind := "string"
			switch k {
			case "reuse":
				kind = "boolean"
			case "max_clicks":
				kind = "positive integer"
			case "tags":
				kind = "array of strings"
			case "redirect_status":
				kind = "number: 301, 302, 307 or 308"
			}
			return req, bad, codeInvalidJSON, fmt.Sprintf("field %q must be a %s", k, kind)
		}
	}
	if req.URL == "" {
		return req, bad, codeInvalidURL, linkurl.ErrEmpty.Error()
	}
	return req, 0, "", ""
}

// isJSON reports whether a Content-Type is application/json, with or
// without parameters.
func isJSON(ct []byte) bool {
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return bytes.EqualFold(bytes.TrimSpace(ct), []byte(contentJSON))
}

func (r *Router) linkJSON(link shardrpc.Link, withAlias bool) linkResponse {
	out := linkResponse{
		Code:      link.Code,
		ShortURL:  r.baseURL + "/" + link.Code,
		URL:       link.URL,
		CreatedAt: time.UnixMilli(link.CreatedAtMs).UTC().Format(time.RFC3339),
	}
	if withAlias {
		alias := link.Alias
		out.Alias = &alias
	}
	if link.ExpiresAtMs != 0 {
		out.ExpiresAt = time.UnixMilli(link.ExpiresAtMs).UTC().Format(time.RFC3339Nano)
		out.Expired = time.Now().UnixMilli() >= link.ExpiresAtMs
	}
	out.MaxClicks = link.MaxClicks
	out.Title, out.Tags, out.RedirectStatus, out.Owner = link.Title, link.Tags, link.RedirectStatus, link.Owner
	if link.UpdatedAtMs != 0 {
		out.UpdatedAt = time.UnixMilli(link.UpdatedAtMs).UTC().Format(time.RFC3339Nano)
	}
	return out
}

// apiCode checks that code can name a link (the shape of a generated code or
// an alias, not a reserved word) and answers 404 itself when it cannot.
func (r *Router) apiCode(ctx *fasthttp.RequestCtx, code []byte) (string, bool) {
	if !r.codeShape(code) {
		r.notFound(ctx, false)
		return "", false
	}
	c := string(code)
	if !r.codec.IsGeneratedShape(c) && shortcode.IsReserved(c) {
		r.notFound(ctx, false)
		return "", false
	}
	return c, true
}

// lookupForAPI resolves code for an API request about an existing link,
// for a caller who must own it (or hold an admin key) when the cluster has
// API keys. It answers the request itself (401 without a valid key; 404
// for a code that cannot exist, is unknown or is someone else's link,
// exactly alike; the shard's error otherwise) and returns ok=false then.
func (r *Router) lookupForAPI(ctx *fasthttp.RequestCtx, code []byte) (string, shardrpc.Link, bool) {
	who, ok := r.authenticate(ctx)
	if !ok {
		return "", shardrpc.Link{}, false
	}
	c, ok := r.apiCode(ctx, code)
	if !ok {
		return "", shardrpc.Link{}, false
	}
	link, err := r.resolve(c)
	if err != nil {
		if errors.Is(err, shardrpc.ErrNotFound) {
			r.notFound(ctx, false)
		} else {
			r.shardError(ctx, "resolve", err)
		}
		return "", shardrpc.Link{}, false
	}
	r.cacheLink(c, link)
	if !who.mayAccess(link) {
		r.notFound(ctx, false)
		return "", shardrpc.Link{}, false
	}
	return c, link, true
}

// info answers GET /api/v1/links/{code}.
func (r *Router) info(ctx *fasthttp.RequestCtx, code []byte) {
	if c, ok := bytes.CutSuffix(code, []byte(pathStatsSuffix)); ok {
		r.stats(ctx, c)
		return
	}
	if c, ok := bytes.CutSuffix(code, []byte(pathQRSuffix)); ok {
		r.qr(ctx, c)
		return
	}
	c, link, ok := r.lookupForAPI(ctx, code)
	if !ok {
		return
	}
	if link.Code == "" {
		link.Code = c
	}
	out := r.linkJSON(link, true)
	out.Clicks = r.totalClicks(c)
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// ready answers /readyz: every shard must have a leader that answers.
func (r *Router) ready(ctx *fasthttp.RequestCtx) {
	shards := r.ring.Shards()
	type result struct {
		shard  uint64
		leader string
		err    error
	}
	results := make([]result, len(shards))
	eachShard(r.opts.ReadyTimeout, shards, func(cctx context.Context, i int, s uint64) {
		st, err := r.shards.Status(cctx, s)
		results[i] = result{shard: s, leader: st.NodeID, err: err}
	})
	leaders := make(map[string]string, len(shards))
	var notReady []uint64
	var problems []string
	for _, res := range results {
		key := strconv.FormatUint(res.shard, 10)
		if res.err != nil {
			notReady = append(notReady, res.shard)
			problems = append(problems, key+": "+res.err.Error())
			continue
		}
		leaders[key] = res.leader
	}
	if len(notReady) > 0 {
		slices.Sort(notReady)
		writeJSON(ctx, fasthttp.StatusServiceUnavailable, map[string]any{
			"error": apiError{
				Code:    codeNotReady,
				Message: "shards without a reachable leader: " + strings.Join(problems, "; "),
			},
			"not_ready": notReady,
			"leaders":   leaders,
		})
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{"status": "ready", "leaders": leaders})
}

// shardError answers a failed shard call.
func (r *Router) shardError(ctx *fasthttp.RequestCtx, op string, err error) {
	var re *shardrpc.RemoteError
	switch {
	case errors.Is(err, shardrpc.ErrAliasTaken):
		writeError(ctx, fasthttp.StatusConflict, codeAliasTaken, "alias is already taken")
	case errors.Is(err, shardrpc.ErrPartitionFull):
		writeError(ctx, fasthttp.StatusInsufficientStorage, codePartitionFull,
			"no more codes can be created in this partition")
	case errors.Is(err, shardrpc.ErrNotFound):
		writeError(ctx, fasthttp.StatusNotFound, codeNotFound, "no link with this code")
	case errors.Is(err, shardrpc.ErrGone):
		writeError(ctx, fasthttp.StatusGone, codeGone, "this link was deleted")
	case errors.Is(err, shardrpc.ErrBadRequest) && errors.As(err, &re):
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, re.Body.Message)
	case errors.Is(err, shardrpc.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		r.log.Warn("shard unavailable", "op", op, "err", err)
		ctx.Response.Header.Set(fasthttp.HeaderRetryAfter, "1")
		writeError(ctx, fasthttp.StatusServiceUnavailable, codeUnavailable,
			"the shard is unavailable, try again shortly")
	default:
		r.log.Error("shard call failed", "op", op, "err", err)
		writeError(ctx, fasthttp.StatusBadGateway, codeUpstream, "the storage layer failed to answer")
	}
}

// handleParseError answers requests fasthttp could not read: a body over
// the server's limit, headers too large, a read timeout, garbage.
//
// The server closes the connection after this answer, possibly with the
// client still sending; the connection lingers so that the client reads
// the answer instead of a reset (see lingerListener).
func (r *Router) handleParseError(ctx *fasthttp.RequestCtx, err error) {
	markLinger(ctx.Conn())
	var small *fasthttp.ErrSmallBuffer
	var timeout interface{ Timeout() bool }
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		limit := MaxBodySize
		if string(ctx.Path()) == pathBulk {
			limit = MaxBulkBodySize
		}
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, codeBodyTooLarge,
			fmt.Sprintf("request body must be at most %d bytes", limit))
	case errors.As(err, &small):
		writeError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, codeHeaderTooLarge, "request headers are too large")
	case errors.As(err, &timeout) && timeout.Timeout():
		writeError(ctx, fasthttp.StatusRequestTimeout, codeTimeout, "request timed out")
	default:
		writeError(ctx, fasthttp.StatusBadRequest, codeInvalidRequest, "malformed HTTP request")
	}
}

func methodNotAllowed(ctx *fasthttp.RequestCtx, allow string) {
	ctx.Response.Header.Set(strAllow, allow)
	writeError(ctx, fasthttp.StatusMethodNotAllowed, codeMethodNotAllowed,
		"method "+string(ctx.Method())+" is not allowed here; allowed: "+allow)
}

// apiError is the body of every error answer, under "error".
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	writeJSON(ctx, status, struct {
		Error apiError `json:"error"`
	}{apiError{Code: code, Message: msg}})
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	raw, err := json.Marshal(v)
	if err != nil {
		status = fasthttp.StatusInternalServerError
		raw = []byte(`{"error":{"code":"internal","message":"cannot encode the answer"}}`)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType(contentJSON)
	ctx.Response.SetBodyRaw(append(raw, '\n'))
}
