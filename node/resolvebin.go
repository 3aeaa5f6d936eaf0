package node

import (
	"errors"
	"fmt"
	"math"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shardrpc"
	"github.com/valyala/fasthttp"
)

// parseShard parses the shard header: a decimal number > 0 that fits in a
// uint64, without allocating.
func parseShard(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, v != 0
}

// shardLinkKey appends to dst the link key of code when code belongs to
// shard; when it belongs to another shard it returns the wrong_shard error
// the resolve RPCs answer, and false.
func (n *Node) shardLinkKey(dst []byte, shard uint64, code []byte) ([]byte, shardrpc.ErrorBody, bool) {
	p := n.ring.PartitionOfCodeBytes(code)
	if owner := n.ring.ShardOf(p); owner != shard {
		return dst, shardrpc.ErrorBody{Code: shardrpc.ErrCodeWrongShard, Message: fmt.Sprintf("code %q belongs to shard %d, not %d", code, owner, shard)}, false
	}
	return linkstore.AppendLinkKey(dst, p, code), shardrpc.ErrorBody{}, true
}

// resolveBinary serves the binary resolve RPC (shardrpc.PathResolveBinary):
// the answer is the link record as it is stored, read with one Pebble Get
// straight into the response buffer. A successful local read allocates
// nothing; the error answers are the JSON ErrorBody of every call, with the
// same meaning as resolve's.
func (n *Node) resolveBinary(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group) {
	code, linearizable, version, err := shardrpc.DecodeResolveRequest(ctx.PostBody())
	if err != nil {
		badRequest(ctx, err.Error())
		return
	}
	var kb [5 + linkstore.MaxCodeLength]byte
	key, wrong, ok := n.shardLinkKey(kb[:0], shard, code)
	if !ok {
		writeError(ctx, wrong)
		return
	}

	deleted := false
	var applied uint64
	resp := &ctx.Response
	resp.ResetBody()
	read := func(v []byte) {
		if linkstore.IsTombstone(v) {
			deleted = true
			return
		}
		var hb [9]byte
		resp.AppendBody(shardrpc.AppendResolveResponseHeader(hb[:0], version, applied))
		resp.AppendBody(v)
	}
	if linearizable {
		if n.diskStalled() {
			n.refuseStalled(ctx, shard)
			return
		}
		rctx, cancel := n.requestContext()
		err = g.ReadValueAt(rctx, raftstore.ReadLinearizable, key, &applied, read)
		cancel()
	} else {
		err = g.ReadValueAt(n.ctx, raftstore.ReadLocal, key, &applied, read)
	}
	switch {
	case err == nil && !deleted:
		resp.SetStatusCode(fasthttp.StatusOK)
		resp.Header.SetContentType(shardrpc.ContentTypeResolve)
	case err == nil:
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeGone, Message: fmt.Sprintf("link %q was deleted", code)})
	case errors.Is(err, raftstore.ErrNotFound) && linearizable:
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeNotFound, Message: fmt.Sprintf("no link %q", code)})
	case errors.Is(err, raftstore.ErrNotFound):
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeMaybeStale, Message: fmt.Sprintf("no link %q on this replica; ask the leader", code)})
	default:
		n.raftError(ctx, shard, "resolve", err)
	}
}
