package node

import (
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shardrpc"
)

// deleteIdemKey is the raftstore idempotency key of a delete, apart from
// those of creates (which use the bare request ID).
func deleteIdemKey(requestID string) []byte {
	if requestID == "" {
		return nil
	}
	return append([]byte("del/"), requestID...)
}

// delete proposes a Delete at the shard's leader.
func (n *Node) delete(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group) {
	var req shardrpc.DeleteRequest
	if err := decodeBody(ctx, &req); err != nil {
		badRequest(ctx, err.Error())
		return
	}
	switch {
	case req.Code == "" || len(req.Code) > linkstore.MaxCodeLength:
		badRequest(ctx, fmt.Sprintf("code must be 1 to %d bytes", linkstore.MaxCodeLength))
		return
	case len(req.RequestID) > maxRequestID:
		badRequest(ctx, fmt.Sprintf("request_id of %d bytes is longer than %d", len(req.RequestID), maxRequestID))
		return
	}
	p := n.ring.PartitionOfCode(req.Code)
	if owner := n.ring.ShardOf(p); owner != shard {
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeWrongShard, Message: fmt.Sprintf("code %q belongs to shard %d, not %d", req.Code, owner, shard)})
		return
	}
	cmd := linkstore.AppendDelete(nil, linkstore.Delete{Partition: p, Code: req.Code, DeletedAtMs: time.Now().UnixMilli()})
	rctx, cancel := n.requestContext()
	raw, err := g.Propose(rctx, cmd, deleteIdemKey(req.RequestID))
	cancel()
	if err != nil {
		n.raftError(ctx, shard, "delete", err)
		return
	}
	if raw == nil {
		// Applied before this replica restarted: the result is not here;
		// the same request ID gets it from the idempotency table.
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: "the delete was applied before a restart; retry with the same request_id"})
		return
	}
	res, err := linkstore.DecodeResult(raw)
	if err != nil {
		n.logger.Error("undecodable delete result", "shard", shard, "err", err)
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: "internal error: " + err.Error()})
		return
	}
	switch res.Status {
	case linkstore.ResultDeleted:
		writeJSON(ctx, fasthttp.StatusOK, shardrpc.DeleteResult{})
	case linkstore.ResultNotFound:
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeNotFound, Message: fmt.Sprintf("no link %q", req.Code)})
	case linkstore.ResultGone:
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeGone, Message: fmt.Sprintf("link %q was deleted before", req.Code)})
	case linkstore.ResultBadRequest:
		badRequest(ctx, res.Reason)
	default:
		n.logger.Error("unknown delete result", "shard", shard, "status", res.Status)
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: "internal error: unknown result " + res.Status.String()})
	}
}
