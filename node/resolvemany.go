package node

import (
	"errors"
	"fmt"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shardrpc"
	"github.com/valyala/fasthttp"
)

// resolveMany serves the multi-resolve RPC (shardrpc.PathResolveMany): a
// local read of each code of the request, in order, each answered as
// resolveBinary answers a local read of that code alone: the stored record
// with the applied index read before it; gone for a tombstone;
// maybe_stale for a code this replica does not hold (the client asks the
// leader); wrong_shard for a code of another shard; the group's error
// (unavailable, ...) when the read fails. One Pebble Get per code, its
// value copied straight into the response buffer.
func (n *Node) resolveMany(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group) {
	var arr [shardrpc.MaxResolveMany][]byte
	codes, err := shardrpc.DecodeResolveManyRequest(ctx.PostBody(), arr[:0])
	if err != nil {
		badRequest(ctx, err.Error())
		return
	}
	resp := &ctx.Response
	resp.ResetBody()
	var hb [16]byte
	resp.AppendBody(shardrpc.AppendResolveManyResponseHeader(hb[:0], len(codes)))
	for _, code := range codes {
		n.resolveManyItem(resp, shard, g, code)
	}
	resp.SetStatusCode(fasthttp.StatusOK)
	resp.Header.SetContentType(shardrpc.ContentTypeResolveMany)
}

// resolveManyItem appends the answer of one code's local read to resp.
func (n *Node) resolveManyItem(resp *fasthttp.Response, shard uint64, g *raftstore.Group, code []byte) {
	var kb [5 + linkstore.MaxCodeLength]byte
	key, wrong, ok := n.shardLinkKey(kb[:0], shard, code)
	if !ok {
		appendItemError(resp, wrong)
		return
	}

	var applied uint64
	deleted, tooBig := false, 0
	err := g.ReadValueAt(n.ctx, raftstore.ReadLocal, key, &applied, func(v []byte) {
		switch {
		case linkstore.IsTombstone(v):
			deleted = true
		case len(v) == 0 || len(v) > shardrpc.MaxResolveManyRecord:
			tooBig = len(v)
		default:
			var hb [16]byte
			resp.AppendBody(shardrpc.AppendResolveManyRecordHeader(hb[:0], applied, len(v)))
			resp.AppendBody(v)
		}
	})
	var e shardrpc.ErrorBody
	switch {
	case err == nil && deleted:
		e = shardrpc.ErrorBody{Code: shardrpc.ErrCodeGone, Message: fmt.Sprintf("link %q was deleted", code)}
	case err == nil && tooBig != 0:
		// Not a record linkstore writes; refuse it rather than send
		// what the client must refuse as malformed.
		e = shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: fmt.Sprintf("link %q: stored record of %d bytes does not fit a multi-resolve answer", code, tooBig)}
	case err == nil:
		return
	case errors.Is(err, raftstore.ErrNotFound):
		e = shardrpc.ErrorBody{Code: shardrpc.ErrCodeMaybeStale, Message: fmt.Sprintf("no link %q on this replica; ask the leader", code)}
	default:
		e = n.raftErrorBody(shard, "resolve", err)
	}
	appendItemError(resp, e)
}

// appendItemError appends an item answered with the error e to resp.
func appendItemError(resp *fasthttp.Response, e shardrpc.ErrorBody) {
	var b [256]byte
	resp.AppendBody(shardrpc.AppendResolveManyError(b[:0], e))
}
