package node

import (
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shardrpc"
)

// editIdemKey is the raftstore idempotency key of an edit, apart from
// those of creates and deletes.
func editIdemKey(requestID string) []byte {
	if requestID == "" {
		return nil
	}
	return append([]byte("edit/"), requestID...)
}

// edit proposes an Edit at the shard's leader and answers the edited
// link. The machine checks every value (a bad one changes nothing); the
// node checks only what the command cannot carry.
func (n *Node) edit(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group) {
	var req shardrpc.EditRequest
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
	case len(req.Owner) > linkstore.MaxOwnerLength:
		badRequest(ctx, fmt.Sprintf("owner of %d bytes is longer than %d", len(req.Owner), linkstore.MaxOwnerLength))
		return
	case req.URL != nil && len(*req.URL) > linkstore.MaxURLLength:
		badRequest(ctx, fmt.Sprintf("url of %d bytes is longer than %d", len(*req.URL), linkstore.MaxURLLength))
		return
	case req.Title != nil && len(*req.Title) > linkstore.MaxTitleLength:
		badRequest(ctx, fmt.Sprintf("title of %d bytes is longer than %d", len(*req.Title), linkstore.MaxTitleLength))
		return
	case req.Tags != nil && len(*req.Tags) > linkstore.MaxTags:
		badRequest(ctx, fmt.Sprintf("%d tags, at most %d are allowed", len(*req.Tags), linkstore.MaxTags))
		return
	case req.RedirectStatus != nil && !linkstore.ValidRedirectStatus(*req.RedirectStatus):
		// Checked here: the command carries it as a u16.
		badRequest(ctx, fmt.Sprintf("redirect_status %d is not 0, 301, 302, 307 or 308", *req.RedirectStatus))
		return
	}
	p, ok := n.partitionHere(ctx, shard, req.Code)
	if !ok {
		return
	}
	e := linkstore.Edit{Partition: p, Code: req.Code, Owner: req.Owner, UpdatedAtMs: time.Now().UnixMilli()}
	if req.URL != nil {
		e.Fields |= linkstore.EditURL
		e.URL = *req.URL
	}
	if req.ExpiresAtMs != nil {
		e.Fields |= linkstore.EditExpiry
		e.ExpiresAtMs = *req.ExpiresAtMs
	}
	if req.MaxClicks != nil {
		e.Fields |= linkstore.EditMaxClicks
		e.MaxClicks = *req.MaxClicks
	}
	if req.Title != nil {
		e.Fields |= linkstore.EditTitle
		e.Title = *req.Title
	}
	if req.Tags != nil {
		e.Fields |= linkstore.EditTags
		e.Tags = *req.Tags
	}
	if req.RedirectStatus != nil {
		e.Fields |= linkstore.EditRedirectStatus
		e.RedirectStatus = uint16(*req.RedirectStatus)
	}
	if e.Fields == 0 {
		badRequest(ctx, "the edit changes no field")
		return
	}
	res, ok := n.proposeResult(ctx, shard, g, "edit", linkstore.AppendEdit(nil, e), editIdemKey(req.RequestID))
	if !ok {
		return
	}
	switch res.Status {
	case linkstore.ResultEdited:
		writeJSON(ctx, fasthttp.StatusOK, toLink(res.Record))
	case linkstore.ResultNotFound:
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeNotFound, Message: fmt.Sprintf("no link %q", req.Code)})
	case linkstore.ResultGone:
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeGone, Message: fmt.Sprintf("link %q was deleted or purged", req.Code)})
	case linkstore.ResultBadRequest:
		badRequest(ctx, res.Reason)
	default:
		n.unknownResult(ctx, shard, "edit", res.Status)
	}
}
