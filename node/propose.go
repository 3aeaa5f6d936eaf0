package node

import (
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shardrpc"
)

// partitionHere returns the partition of code when it belongs to shard.
// Otherwise it answers ctx with 421 wrong_shard and returns false.
func (n *Node) partitionHere(ctx *fasthttp.RequestCtx, shard uint64, code string) (uint32, bool) {
	p := n.ring.PartitionOfCode(code)
	if owner := n.ring.ShardOf(p); owner != shard {
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeWrongShard, Message: fmt.Sprintf("code %q belongs to shard %d, not %d", code, owner, shard)})
		return 0, false
	}
	return p, true
}

// proposeResult proposes cmd at the shard's leader under idemKey and
// decodes the machine's linkstore result. When it returns false it has
// answered ctx: a Raft error, a command applied before this replica
// restarted (its result is only in the idempotency table, which the same
// request ID reaches), or an undecodable result. op names the command in
// messages and logs.
func (n *Node) proposeResult(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group, op string, cmd, idemKey []byte) (linkstore.Result, bool) {
	rctx, cancel := n.requestContext()
	raw, err := g.Propose(rctx, cmd, idemKey)
	cancel()
	if err != nil {
		n.raftError(ctx, shard, op, err)
		return linkstore.Result{}, false
	}
	if raw == nil {
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: "the " + op + " was applied before a restart; retry with the same request_id"})
		return linkstore.Result{}, false
	}
	res, err := linkstore.DecodeResult(raw)
	if err != nil {
		n.logger.Error("undecodable "+op+" result", "shard", shard, "err", err)
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: "internal error: " + err.Error()})
		return linkstore.Result{}, false
	}
	return res, true
}

// unknownResult answers a result status the handler of op does not expect.
func (n *Node) unknownResult(ctx *fasthttp.RequestCtx, shard uint64, op string, status linkstore.Status) {
	n.logger.Error("unknown "+op+" result", "shard", shard, "status", status)
	writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: "internal error: unknown result " + status.String()})
}
