package node

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/clicks"
	"github.com/linkraft/linkraft/clickstore"
	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shardrpc"
)

// clickIdemKey is the raftstore idempotency key of a click batch.
func clickIdemKey(router string, seq uint64) []byte {
	k := make([]byte, 0, 4+len(router)+1+20)
	k = append(k, "clk/"...)
	k = append(k, router...)
	k = append(k, '/')
	return strconv.AppendUint(k, seq, 10)
}

// clicks proposes a router's click batch at the shard's leader.
func (n *Node) clicks(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group) {
	body := ctx.PostBody()
	batch, err := clicks.DecodeBatch(body)
	if err != nil {
		badRequest(ctx, err.Error())
		return
	}
	if batch.Router == "" || batch.Seq == 0 {
		badRequest(ctx, "a click batch needs a router ID and a sequence > 0")
		return
	}
	partitions := make([]uint32, len(batch.Deltas))
	for i := range batch.Deltas {
		d := &batch.Deltas[i]
		if !clickstore.ValidCode(d.Code) {
			badRequest(ctx, fmt.Sprintf("click batch: bad code %q", d.Code))
			return
		}
		partitions[i] = n.ring.PartitionOfCode(d.Code)
		if owner := n.ring.ShardOf(partitions[i]); owner != shard {
			writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeWrongShard, Message: fmt.Sprintf("code %q belongs to shard %d, not %d", d.Code, owner, shard)})
			return
		}
	}
	// Proposed in the order the apply merges the deltas, so that no
	// replica sorts the batch again (clickstore.OrderDeltas): one sort
	// here instead of one on each replica.
	batch.Deltas = clickstore.OrderDeltas(batch.Deltas, partitions)
	rctx, cancel := n.requestContext()
	// The command is the body re-encoded behind a 2-byte header: sized
	// once rather than grown from nothing.
	cmd := linkstore.AppendClickBatch(make([]byte, 0, len(body)+2), batch)
	raw, err := g.Propose(rctx, cmd, clickIdemKey(batch.Router, batch.Seq))
	cancel()
	if err != nil {
		n.raftError(ctx, shard, "clicks", err)
		return
	}
	if raw == nil {
		// Applied before this replica restarted: counted once, done.
		writeJSON(ctx, fasthttp.StatusOK, shardrpc.ClicksResult{Duplicate: true})
		return
	}
	res, err := linkstore.DecodeResult(raw)
	if err != nil {
		n.logger.Error("undecodable clicks result", "shard", shard, "err", err)
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: "internal error: " + err.Error()})
		return
	}
	switch res.Status {
	case linkstore.ResultClicksApplied:
		writeJSON(ctx, fasthttp.StatusOK, shardrpc.ClicksResult{})
	case linkstore.ResultClicksDuplicate:
		writeJSON(ctx, fasthttp.StatusOK, shardrpc.ClicksResult{Duplicate: true})
	case linkstore.ResultBadRequest:
		badRequest(ctx, res.Reason)
	default:
		n.unknownResult(ctx, shard, "clicks", res.Status)
	}
}

// stats answers a code's click statistics from the leader's state.
func (n *Node) stats(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group) {
	var req shardrpc.StatsRequest
	if err := decodeBody(ctx, &req); err != nil {
		badRequest(ctx, err.Error())
		return
	}
	if !clickstore.ValidCode(req.Code) {
		badRequest(ctx, fmt.Sprintf("code must be 1 to %d of [A-Za-z0-9_-]", clicks.MaxCodeLen))
		return
	}
	from, err := clicks.ParseDay(req.From)
	if err != nil {
		badRequest(ctx, "from: "+err.Error())
		return
	}
	to, err := clicks.ParseDay(req.To)
	if err != nil {
		badRequest(ctx, "to: "+err.Error())
		return
	}
	p, ok := n.partitionHere(ctx, shard, req.Code)
	if !ok {
		return
	}
	var st clicks.Stats
	rctx, cancel := n.requestContext()
	err = g.Read(rctx, raftstore.ReadLinearizable, func(r raftstore.Reader) error {
		var err error
		st, err = clickstore.Query(r, p, req.Code, from, to)
		return err
	})
	cancel()
	switch {
	case err == nil:
		writeJSON(ctx, fasthttp.StatusOK, st)
	case errors.Is(err, clickstore.ErrRange), errors.Is(err, clickstore.ErrInvalid):
		badRequest(ctx, err.Error())
	default:
		n.raftError(ctx, shard, "stats", err)
	}
}
