package node

import (
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shardrpc"
)

// bulkCreate answers the JSON bulk create RPC (shardrpc.PathBulkCreate):
// see proposeBulk.
func (n *Node) bulkCreate(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group) {
	var req shardrpc.BulkCreateRequest
	if err := decodeBody(ctx, &req); err != nil {
		badRequest(ctx, err.Error())
		return
	}
	results, _, _, ok := n.proposeBulk(ctx, shard, g, req.Items)
	if !ok {
		return
	}
	out := shardrpc.BulkCreateResult{Results: make([]shardrpc.BulkItemResult, len(results))}
	for i, r := range results {
		out.Results[i] = n.bulkItemResult(shard, req.Items[i], r)
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

// bulkCreateBinary answers the binary bulk create RPC
// (shardrpc.PathBulkCreateBinary, shardrpc/bulkwire.go): the same creates
// as bulkCreate, and the machine's batch result passed through as the
// answer, without a per-item encoding.
func (n *Node) bulkCreateBinary(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group) {
	items, version, err := shardrpc.DecodeBulkCreateRequest(ctx.PostBody())
	if err != nil {
		badRequest(ctx, err.Error())
		return
	}
	_, raw, index, ok := n.proposeBulk(ctx, shard, g, items)
	if !ok {
		return
	}
	body, err := shardrpc.AppendBulkCreateResponse(make([]byte, 0, 9+len(raw)), version, index, raw)
	if err != nil {
		// proposeBulk decoded raw already: this does not happen.
		n.logger.Error("bulk create answer", "shard", shard, "err", err)
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: "internal error: " + err.Error()})
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(shardrpc.ContentTypeBulkCreate)
	ctx.Response.SetBodyRaw(body)
}

// proposeBulk proposes items as one linkstore create batch, one Raft
// entry, at the shard's leader, and returns the machine's batch result
// (raw), each item's encoded result in it, and the entry's index. It checks only what concerns
// the whole request (the items' shard and request IDs); the machine checks
// each item as it would a single create, so a bad item gets its own
// bad_request and changes nothing. Each item carries its request ID into
// the batch: the machine's request table answers a retried item with its
// first result. When it returns false it has answered ctx.
func (n *Node) proposeBulk(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group, items []shardrpc.CreateRequest) (results [][]byte, raw []byte, index uint64, ok bool) {
	if len(items) == 0 || len(items) > linkstore.MaxBatchItems {
		badRequest(ctx, fmt.Sprintf("a bulk create takes 1 to %d items, not %d", linkstore.MaxBatchItems, len(items)))
		return nil, nil, 0, false
	}
	now := time.Now().UnixMilli()
	size := 16
	for i := range items {
		it := &items[i]
		size += 2*10 + len(it.RequestID) + 3 + 4 + 5*10 + len(it.Alias) + len(it.URL) + len(it.Owner) + len(it.Title) + 33*len(it.Tags)
	}
	cmd := linkstore.AppendBatchHeader(make([]byte, 0, size), len(items))
	var create []byte
	for i := range items {
		it := &items[i]
		if int64(it.Partition) >= int64(n.ring.Partitions()) {
			badRequest(ctx, fmt.Sprintf("item %d: partition %d is outside [0, %d)", i, it.Partition, n.ring.Partitions()))
			return nil, nil, 0, false
		}
		if owner := n.ring.ShardOf(it.Partition); owner != shard {
			writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeWrongShard, Message: fmt.Sprintf("item %d: partition %d belongs to shard %d, not %d", i, it.Partition, owner, shard)})
			return nil, nil, 0, false
		}
		if len(it.RequestID) > maxRequestID {
			badRequest(ctx, fmt.Sprintf("item %d: request_id of %d bytes is longer than %d", i, len(it.RequestID), maxRequestID))
			return nil, nil, 0, false
		}
		if !linkstore.ValidRedirectStatus(it.RedirectStatus) {
			// Checked here: the command carries it as a u16.
			badRequest(ctx, fmt.Sprintf("item %d: redirect_status %d is not 0, 301, 302, 307 or 308", i, it.RedirectStatus))
			return nil, nil, 0, false
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
	raw, index, err := g.ProposeAt(rctx, cmd, nil)
	cancel()
	if err != nil {
		n.raftError(ctx, shard, "bulk create", err)
		return nil, nil, 0, false
	}
	if raw == nil {
		// Applied before this replica restarted: the items' results are
		// in the request table, which a retry with the same IDs reads.
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: "the bulk create was applied before a restart; retry with the same request IDs"})
		return nil, nil, 0, false
	}
	results, err = linkstore.DecodeBatchResult(raw)
	if err == nil && len(results) != len(items) {
		err = fmt.Errorf("%w: %d results for %d items", linkstore.ErrMalformed, len(results), len(items))
	}
	if err != nil {
		n.logger.Error("undecodable bulk create result", "shard", shard, "items", len(items), "err", err)
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: "internal error: " + err.Error()})
		return nil, nil, 0, false
	}
	return results, raw, index, true
}

// bulkItemResult turns one item's encoded linkstore result into its RPC
// result (shardrpc.BulkItemResultOf); an undecodable or unknown result is
// logged and answered as unavailable.
func (n *Node) bulkItemResult(shard uint64, it shardrpc.CreateRequest, raw []byte) shardrpc.BulkItemResult {
	fail := func(msg string) shardrpc.BulkItemResult {
		return shardrpc.BulkItemResult{Error: &shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: "internal error: " + msg}}
	}
	res, err := linkstore.DecodeResult(raw)
	if err != nil {
		n.logger.Error("undecodable bulk item result", "shard", shard, "err", err)
		return fail(err.Error())
	}
	out, err := shardrpc.BulkItemResultOf(it, res)
	if err != nil {
		n.logger.Error("unknown bulk item result", "shard", shard, "status", res.Status)
		return fail(err.Error())
	}
	return out
}
