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
	p, ok := n.partitionHere(ctx, shard, req.Code)
	if !ok {
		return
	}
	cmd := linkstore.AppendDelete(nil, linkstore.Delete{Partition: p, Code: req.Code, DeletedAtMs: time.Now().UnixMilli()})
	res, ok := n.proposeResult(ctx, shard, g, "delete", cmd, deleteIdemKey(req.RequestID))
	if !ok {
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
		n.unknownResult(ctx, shard, "delete", res.Status)
	}
}
