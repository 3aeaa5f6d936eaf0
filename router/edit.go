package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/linkurl"
	"github.com/linkraft/linkraft/shardrpc"
)

// EditClient is what PATCH /api/v1/links/{code} needs beyond ShardClient;
// *shardrpc.Client implements it. Without it the router answers 501.
type EditClient interface {
	// Edit changes fields of a link at its shard's leader and returns the
	// link as it is afterwards.
	Edit(ctx context.Context, shard uint64, req shardrpc.EditRequest) (shardrpc.Link, error)
}

var _ EditClient = (*shardrpc.Client)(nil)

// codeNotImplemented: the storage client cannot edit links (501).
const codeNotImplemented = "not_implemented"

// editFieldList names the fields a PATCH body may hold.
const editFieldList = "url, title, tags, expires_at, ttl, max_clicks, redirect_status"

// editLink answers PATCH /api/v1/links/{code}: a JSON merge patch of the
// link's url, title, tags, expiry (expires_at or ttl), max_clicks and
// redirect_status. A field left out keeps its value; null (or 0 for
// max_clicks and redirect_status) clears an optional one. Each value is
// checked as a create checks it (400, nothing changed); 404 for an unknown
// code, 410 for a deleted or purged link. An expired link can be edited:
// a later expiry (or none) makes it redirect again. The answer is the
// edited link. With API keys, only the link's owner or an admin key may
// edit it (401 without a valid key; another key's link is a 404). This
// router drops the code from its cache at once; every other router serves
// the new fields within its CacheTTL, as for a delete.
func (r *Router) editLink(ctx *fasthttp.RequestCtx, code []byte) {
	if isSubresource(code) {
		methodNotAllowed(ctx, allowGetHead)
		return
	}
	who, ok := r.authenticate(ctx)
	if !ok {
		return
	}
	c, ok := r.apiCode(ctx, code)
	if !ok {
		return
	}
	ec, ok := r.shards.(EditClient)
	if !ok {
		writeError(ctx, fasthttp.StatusNotImplemented, codeNotImplemented, "this router's storage client cannot edit links")
		return
	}
	body, ok := jsonBody(ctx, MaxBodySize)
	if !ok {
		return
	}
	req, status, errCode, msg := decodeEdit(body, time.Now(), r.bases)
	if status != 0 {
		writeError(ctx, status, errCode, msg)
		return
	}
	req.Code = c
	if !who.open && !who.admin {
		// The shard checks the owner in the same apply as the edit: a
		// link of another key is a 404, as if it did not exist.
		req.Owner = who.owner
	}
	cctx, cancel := context.WithTimeout(context.Background(), r.opts.RPCTimeout)
	defer cancel()
	link, err := ec.Edit(cctx, r.ring.ShardOf(r.ring.PartitionOfCode(c)), req)
	// Dropped whatever the answer: after an unknown outcome the next
	// redirect asks the shard.
	r.cache.Invalidate(c)
	switch {
	case err == nil:
	case errors.Is(err, shardrpc.ErrNotFound):
		r.notFound(ctx, false)
		return
	default:
		r.shardError(ctx, "edit", err)
		return
	}
	if link.Code == "" {
		link.Code = c
	}
	writeJSON(ctx, fasthttp.StatusOK, r.linkJSON(link, true))
}

// decodeEdit parses and checks a PATCH body: one JSON object of the
// fields in editFieldList (at least one). A non-zero status is the error
// to answer.
func decodeEdit(body []byte, now time.Time, bases []string) (req shardrpc.EditRequest, status int, code, msg string) {
	bad := fasthttp.StatusBadRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil {
		var syntaxErr *json.SyntaxError
		if errors.As(err, &syntaxErr) {
			return req, bad, codeInvalidJSON, fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, err)
		}
		return req, bad, codeInvalidJSON, "request body must be a JSON object of the fields to change"
	}
	if fields == nil {
		return req, bad, codeInvalidJSON, "request body must be a JSON object of the fields to change, not null"
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return req, bad, codeInvalidJSON, "request body must hold exactly one JSON object"
	}
	if len(fields) == 0 {
		return req, bad, codeInvalidRequest, "nothing to change; give at least one of " + editFieldList
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys) // report the same field first every time
	isNull := func(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }
	var limits createRequest
	_, hasExpiresAt := fields["expires_at"]
	_, hasTTL := fields["ttl"]
	if hasExpiresAt && hasTTL {
		return req, bad, codeInvalidLimits, "give expires_at or ttl, not both"
	}
	for _, k := range keys {
		raw := fields[k]
		switch k {
		case "url":
			var u string
			if isNull(raw) || json.Unmarshal(raw, &u) != nil {
				return req, bad, codeInvalidURL, `field "url" must be a string; a link always has one`
			}
			target, err := linkurl.Normalize(u)
			if err == nil {
				err = linkurl.NotOwnDomain(target, bases)
			}
			if err != nil {
				return req, bad, codeInvalidURL, err.Error()
			}
			req.URL = &target
		case "title":
			var t string
			if !isNull(raw) && json.Unmarshal(raw, &t) != nil {
				return req, bad, codeInvalidTitle, `field "title" must be a string or null`
			}
			if err := linkstore.ValidateTitle(t); err != nil {
				return req, bad, codeInvalidTitle, err.Error()
			}
			req.Title = &t
		case "tags":
			tags := []string{}
			if !isNull(raw) && json.Unmarshal(raw, &tags) != nil {
				return req, bad, codeInvalidTags, `field "tags" must be an array of strings or null`
			}
			if tags == nil {
				tags = []string{}
			}
			if err := linkstore.ValidateTags(tags); err != nil {
				return req, bad, codeInvalidTags, err.Error()
			}
			req.Tags = &tags
		case "expires_at", "ttl":
			zero := int64(0)
			req.ExpiresAtMs = &zero
			if isNull(raw) {
				continue
			}
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return req, bad, codeInvalidLimits, fmt.Sprintf("field %q must be a string or null", k)
			}
			if k == "ttl" {
				limits.TTL = s
			} else {
				limits.ExpiresAt = s
			}
			exp, msg := createLimits(limits, now)
			if msg != "" {
				return req, bad, codeInvalidLimits, msg
			}
			req.ExpiresAtMs = &exp
		case "max_clicks":
			var n uint64
			if !isNull(raw) && json.Unmarshal(raw, &n) != nil {
				return req, bad, codeInvalidLimits, `field "max_clicks" must be a positive integer, or 0 or null to remove the limit`
			}
			req.MaxClicks = &n
		case "redirect_status":
			var s int
			if !isNull(raw) && json.Unmarshal(raw, &s) != nil || !linkstore.ValidRedirectStatus(s) {
				return req, bad, codeInvalidRedirectStatus, `field "redirect_status" must be 301, 302, 307 or 308, or 0 or null for the cluster's default`
			}
			req.RedirectStatus = &s
		default:
			return req, bad, codeUnknownField, fmt.Sprintf("unknown or read-only field %q; editable: %s", k, editFieldList)
		}
	}
	return req, 0, "", ""
}
