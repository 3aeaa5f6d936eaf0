package node

import (
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shardrpc"
)

// bulkCreate proposes the items of a bulk create as one linkstore create
// batch, one Raft entry, at the shard's leader, and answers one result per
// item. It checks only what concerns the whole request (the items' shard
// and request IDs); the machine checks each item as it would a single
// create, so a bad item gets its own bad_request and changes nothing.
// Each item carries its request ID into the batch: the machine's request
// table answers a retried item with its first result.
func (n *Node) bulkCreate(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group) {
	var req shardrpc.BulkCreateRequest
	if err := decodeBody(ctx, &req); err != nil {
		badRequest(ctx, err.Error())
		return
	}
	if len(req.Items) == 0 || len(req.Items) > linkstore.MaxBatchItems {
		badRequest(ctx, fmt.Sprintf("a bulk create takes 1 to %d items, not %d", linkstore.MaxBatchItems, len(req.Items)))
		return
	}
	now := time.Now().UnixMilli()
	size := 16
	for _, it := range req.Items {
		size += 2*10 + len(it.RequestID) + 3 + 4 + 5*10 + len(it.Alias) + len(it.URL) + len(it.Owner) + len(it.Title) + 33*len(it.Tags)
	}
	cmd := linkstore.AppendBatchHeader(make([]byte, 0, size), len(req.Items))
	var create []byte
	for i, it := range req.Items {
		if int64(it.Partition) >= int64(n.ring.Partitions()) {
			badRequest(ctx, fmt.Sprintf("item %d: partition %d is outside [0, %d)", i, it.Partition, n.ring.Partitions()))
			return
		}
		if owner := n.ring.ShardOf(it.Partition); owner != shard {
			writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeWrongShard, Message: fmt.Sprintf("item %d: partition %d belongs to shard %d, not %d", i, it.Partition, owner, shard)})
			return
		}
		if len(it.RequestID) > maxRequestID {
			badRequest(ctx, fmt.Sprintf("item %d: request_id of %d bytes is longer than %d", i, len(it.RequestID), maxRequestID))
			return
		}
		if !linkstore.ValidRedirectStatus(it.RedirectStatus) {
			// Checked here: the command carries it as a u16.
			badRequest(ctx, fmt.Sprintf("item %d: redirect_status %d is not 0, 301, 302, 307 or 308", i, it.RedirectStatus))
			return
		}
		create = linkstore.AppendCreate(create[:0], linkstore.Create{
			Partition:   it.Partition,
			URL:         it.URL,
			Alias:       it.Alias,
			Reuse:       it.Reuse,
			CreatedAtMs: now,
			ExpiresAtMs: it.ExpiresAtMs,
			MaxClicks:   it.MaxClicks,

			Owner:          it.Owner,
			Title:          it.Title,
			Tags:           it.Tags,
			RedirectStatus: uint16(it.RedirectStatus),
		})
		cmd = linkstore.AppendBatchItem(cmd, it.RequestID, create)
	}
	rctx, cancel := n.requestContext()
	raw, err := g.Propose(rctx, cmd, nil)
	cancel()
	if err != nil {
		n.raftError(ctx, shard, "bulk create", err)
		return
	}
	if raw == nil {
		// Applied before this replica restarted: the items' results are
		// in the request table, which a retry with the same IDs reads.
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: "the bulk create was applied before a restart; retry with the same request IDs"})
		return
	}
	results, err := linkstore.DecodeBatchResult(raw)
	if err == nil && len(results) != len(req.Items) {
		err = fmt.Errorf("%w: %d results for %d items", linkstore.ErrMalformed, len(results), len(req.Items))
	}
	if err != nil {
		n.logger.Error("undecodable bulk create result", "shard", shard, "items", len(req.Items), "err", err)
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: "internal error: " + err.Error()})
		return
	}
	out := shardrpc.BulkCreateResult{Results: make([]shardrpc.BulkItemResult, len(results))}
	for i, r := range results {
		out.Results[i] = n.bulkItemResult(shard, req.Items[i], r)
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// bulkItemResult turns one item's encoded linkstore result into its RPC
// result.
func (n *Node) bulkItemResult(shard uint64, it shardrpc.CreateRequest, raw []byte) shardrpc.BulkItemResult {
	fail := func(code shardrpc.Code, msg string) shardrpc.BulkItemResult {
		return shardrpc.BulkItemResult{Error: &shardrpc.ErrorBody{Code: code, Message: msg}}
	}
	res, err := linkstore.DecodeResult(raw)
	if err != nil {
		n.logger.Error("undecodable bulk item result", "shard", shard, "err", err)
		return fail(shardrpc.ErrCodeUnavailable, "internal error: "+err.Error())
	}
	switch res.Status {
	case linkstore.ResultCreated, linkstore.ResultExisting:
		link := toLink(res.Record)
		link.Created = res.Status == linkstore.ResultCreated
		return shardrpc.BulkItemResult{Link: &link}
	case linkstore.ResultAliasTaken:
		return fail(shardrpc.ErrCodeAliasTaken, fmt.Sprintf("alias %q is taken", it.Alias))
	case linkstore.ResultExhausted:
		return fail(shardrpc.ErrCodeExhausted, fmt.Sprintf("partition %d has no free code left", it.Partition))
	case linkstore.ResultBadRequest:
		return fail(shardrpc.ErrCodeBadRequest, res.Reason)
	default:
		n.logger.Error("unknown bulk item result", "shard", shard, "status", res.Status)
		return fail(shardrpc.ErrCodeUnavailable, "internal error: unknown result "+res.Status.String())
	}
}
