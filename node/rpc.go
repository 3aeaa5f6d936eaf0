package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shardrpc"
	"github.com/linkraft/linkraft/shortcode"
	"github.com/valyala/fasthttp"
)

// handle serves one internal RPC.
func (n *Node) handle(ctx *fasthttp.RequestCtx) {
	if !n.authorized(ctx.Request.Header.Peek(shardrpc.HeaderSecret)) {
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnauthorized, Message: "missing or wrong " + shardrpc.HeaderSecret})
		return
	}
	if !ctx.IsPost() {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, fasthttp.MethodPost)
		writeJSON(ctx, fasthttp.StatusMethodNotAllowed, shardrpc.ErrorBody{Code: shardrpc.ErrCodeBadRequest, Message: "the internal RPC takes POST only"})
		return
	}
	var op func(*fasthttp.RequestCtx, uint64, *raftstore.Group)
	// whileJoining: the op also runs while this node's replica of the
	// shard is not served (g is then nil).
	whileJoining := false
	switch string(ctx.Path()) {
	case shardrpc.PathCreate:
		op = n.create
	case shardrpc.PathResolveBinary:
		op = n.resolveBinary
	case shardrpc.PathResolveMany:
		op = n.resolveMany
	case shardrpc.PathResolve:
		op = n.resolve
	case shardrpc.PathStatus:
		op = n.status
	case shardrpc.PathClicks:
		op = n.clicks
	case shardrpc.PathStats:
		op = n.stats
	case shardrpc.PathDelete:
		op = n.delete
	case shardrpc.PathGroupState:
		op, whileJoining = n.groupState, true
	case shardrpc.PathGroupJoin:
		op = n.groupJoin
	case shardrpc.PathGroupPromote:
		op = n.groupPromote
	case shardrpc.PathList:
		op = n.list
	case shardrpc.PathBulkCreate:
		op = n.bulkCreate
	case shardrpc.PathBulkCreateBinary:
		op = n.bulkCreateBinary
	case shardrpc.PathEdit:
		op = n.edit
	case shardrpc.PathChanges:
		op = n.changes
	default:
		writeJSON(ctx, fasthttp.StatusNotFound, shardrpc.ErrorBody{Code: shardrpc.ErrCodeBadRequest, Message: fmt.Sprintf("no RPC at %q", ctx.Path())})
		return
	}
	shard, ok := parseShard(ctx.Request.Header.Peek(shardrpc.HeaderShard))
	if !ok {
		badRequest(ctx, fmt.Sprintf("header %s must name a shard (a number > 0)", shardrpc.HeaderShard))
		return
	}
	if _, ok := n.hosted[shard]; !ok {
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnknownShard, Message: fmt.Sprintf("node %s hosts no replica of shard %d", n.self.ID, shard)})
		return
	}
	var g *raftstore.Group
	if r := n.served()[shard]; r != nil {
		g = r.g
	} else if !whileJoining {
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: fmt.Sprintf("node %s's replica of shard %d is joining its group and serves nothing until it caught up; ask another replica", n.self.ID, shard)})
		return
	}
	if leaderOnly(ctx.Path()) && n.diskStalled() {
		n.refuseStalled(ctx, shard)
		return
	}
	op(ctx, shard, g)
}

func badRequest(ctx *fasthttp.RequestCtx, msg string) {
	writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeBadRequest, Message: msg})
}

// requestContext returns the context of one RPC's work.
func (n *Node) requestContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(n.ctx, n.opts.RequestTimeout)
}

// create proposes a Create at the shard's leader.
func (n *Node) create(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group) {
	var req shardrpc.CreateRequest
	if err := decodeBody(ctx, &req); err != nil {
		badRequest(ctx, err.Error())
		return
	}
	if int64(req.Partition) >= int64(n.ring.Partitions()) {
		badRequest(ctx, fmt.Sprintf("partition %d is outside [0, %d)", req.Partition, n.ring.Partitions()))
		return
	}
	if owner := n.ring.ShardOf(req.Partition); owner != shard {
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeWrongShard, Message: fmt.Sprintf("partition %d belongs to shard %d, not %d", req.Partition, owner, shard)})
		return
	}
	switch {
	case req.URL == "":
		badRequest(ctx, "url is required")
		return
	case len(req.URL) > linkstore.MaxURLLength:
		badRequest(ctx, fmt.Sprintf("url of %d bytes is longer than %d", len(req.URL), linkstore.MaxURLLength))
		return
	case len(req.RequestID) > maxRequestID:
		badRequest(ctx, fmt.Sprintf("request_id of %d bytes is longer than %d", len(req.RequestID), maxRequestID))
		return
	case req.ExpiresAtMs < 0:
		badRequest(ctx, "expires_at_ms must not be negative")
		return
	case !linkstore.ValidRedirectStatus(req.RedirectStatus):
		badRequest(ctx, fmt.Sprintf("redirect_status %d is not 0, 301, 302, 307 or 308", req.RedirectStatus))
		return
	}
	for _, check := range []func() error{
		func() error { return linkstore.ValidateOwner(req.Owner) },
		func() error { return linkstore.ValidateTitle(req.Title) },
		func() error { return linkstore.ValidateTags(req.Tags) },
	} {
		if err := check(); err != nil {
			badRequest(ctx, err.Error())
			return
		}
	}
	if req.Alias != "" {
		if err := shortcode.ValidateAlias(req.Alias); err != nil {
			badRequest(ctx, err.Error())
			return
		}
		if p := n.ring.PartitionOfCode(req.Alias); p != req.Partition {
			badRequest(ctx, fmt.Sprintf("alias %q belongs to partition %d, not %d", req.Alias, p, req.Partition))
			return
		}
	}
	if req.Alias != "" && n.aliasHeldElsewhere(g, req.Partition, req.Alias, req.URL) {
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeAliasTaken, Message: fmt.Sprintf("alias %q is taken", req.Alias)})
		return
	}
	cmd := linkstore.EncodeCreate(linkstore.Create{
		Partition:   req.Partition,
		URL:         req.URL,
		Alias:       req.Alias,
		Reuse:       req.Reuse,
		CreatedAtMs: time.Now().UnixMilli(),
		ExpiresAtMs: req.ExpiresAtMs,
		MaxClicks:   req.MaxClicks,

		Owner:          req.Owner,
		Title:          req.Title,
		Tags:           req.Tags,
		RedirectStatus: uint16(req.RedirectStatus),
	})
	rctx, cancel := n.requestContext()
	raw, index, err := n.proposeCreate(rctx, shard, g, cmd, req.RequestID)
	cancel()
	if err != nil {
		n.raftError(ctx, shard, "create", err)
		return
	}
	if raw == nil {
		// The entry was applied before this replica restarted, so its
		// result is not here; the same request ID gets it from the
		// idempotency table.
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: "the create was applied before a restart; retry with the same request_id"})
		return
	}
	res, err := linkstore.DecodeResult(raw)
	if err != nil {
		n.logger.Error("undecodable create result", "shard", shard, "err", err)
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: "internal error: " + err.Error()})
		return
	}
	switch res.Status {
	case linkstore.ResultCreated, linkstore.ResultExisting:
		link := toLink(res.Record)
		link.Created = res.Status == linkstore.ResultCreated
		link.AppliedIndex = index
		writeJSON(ctx, fasthttp.StatusOK, link)
	case linkstore.ResultAliasTaken:
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeAliasTaken, Message: fmt.Sprintf("alias %q is taken", req.Alias)})
	case linkstore.ResultExhausted:
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeExhausted, Message: fmt.Sprintf("partition %d has no free code left", req.Partition)})
	case linkstore.ResultBadRequest:
		badRequest(ctx, res.Reason)
	default:
		n.unknownResult(ctx, shard, "create", res.Status)
	}
}

// aliasHeldElsewhere reports whether the leader's applied state already
// holds alias for another URL, so that a conflicting create is refused
// without a Raft entry. A hit is final: a deleted link leaves a tombstone
// that keeps its code taken (linkstore.ErrDeleted counts as held). A hit
// with the same URL is not answered here: it may be a retry of the create
// that stored it, which the proposal answers from the idempotency table
// (or the machine refuses). Only the leader checks: a follower forwards the
// client to the leader anyway.
func (n *Node) aliasHeldElsewhere(g *raftstore.Group, p uint32, alias, url string) bool {
	if !g.IsLeader() {
		return false
	}
	var rec linkstore.Record
	err := g.Read(n.ctx, raftstore.ReadLocal, func(r raftstore.Reader) error {
		var err error
		rec, err = linkstore.Get(r, p, alias)
		return err
	})
	return errors.Is(err, linkstore.ErrDeleted) || err == nil && rec.URL != url
}

// resolve reads the link of a code.
func (n *Node) resolve(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group) {
	var req shardrpc.ResolveRequest
	if err := decodeBody(ctx, &req); err != nil {
		badRequest(ctx, err.Error())
		return
	}
	if req.Code == "" || len(req.Code) > linkstore.MaxCodeLength {
		badRequest(ctx, fmt.Sprintf("code must be 1 to %d bytes", linkstore.MaxCodeLength))
		return
	}
	p, ok := n.partitionHere(ctx, shard, req.Code)
	if !ok {
		return
	}
	mode := raftstore.ReadLocal
	if req.Linearizable {
		if n.diskStalled() {
			n.refuseStalled(ctx, shard)
			return
		}
		mode = raftstore.ReadLinearizable
	}
	var rec linkstore.Record
	rctx, cancel := n.requestContext()
	err := g.Read(rctx, mode, func(r raftstore.Reader) error {
		var err error
		rec, err = linkstore.Get(r, p, req.Code)
		return err
	})
	cancel()
	switch {
	case err == nil:
		writeJSON(ctx, fasthttp.StatusOK, toLink(rec))
	case errors.Is(err, linkstore.ErrDeleted):
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeGone, Message: fmt.Sprintf("link %q was deleted", req.Code)})
	case errors.Is(err, linkstore.ErrNotFound) && req.Linearizable:
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeNotFound, Message: fmt.Sprintf("no link %q", req.Code)})
	case errors.Is(err, linkstore.ErrNotFound):
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeMaybeStale, Message: fmt.Sprintf("no link %q on this replica; ask the leader", req.Code)})
	default:
		n.raftError(ctx, shard, "resolve", err)
	}
}

// status describes the node's replica of the shard.
func (n *Node) status(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group) {
	st := g.Stats()
	id, rpc := n.leaderRPC(st.LeaderID, st.LeaderAddr)
	state := st.State
	if n.diskStalled() {
		// Raft may still see itself as the leader (it cannot step down
		// before its disk returns), but it serves nothing as one.
		state = shardrpc.StateDiskStalled
		if id == n.self.ID {
			id, rpc = "", ""
		}
	}
	writeJSON(ctx, fasthttp.StatusOK, shardrpc.Status{
		Shard:        shard,
		NodeID:       n.self.ID,
		State:        state,
		LeaderID:     id,
		LeaderRPC:    rpc,
		AppliedIndex: st.AppliedIndex,
		LastIndex:    st.LastIndex,
		Term:         st.Term,
	})
}

// raftError answers the failure of a group operation.
func (n *Node) raftError(ctx *fasthttp.RequestCtx, shard uint64, op string, err error) {
	writeError(ctx, n.raftErrorBody(shard, op, err))
}

// raftErrorBody is the ErrorBody raftError answers for err: also the
// per-item error of a multi-resolve (resolvemany.go).
func (n *Node) raftErrorBody(shard uint64, op string, err error) shardrpc.ErrorBody {
	var nl *raftstore.NotLeaderError
	switch {
	case errors.As(err, &nl):
		id, rpc := n.leaderRPC(nl.LeaderID, nl.LeaderAddr)
		msg := fmt.Sprintf("node %s does not lead shard %d", n.self.ID, shard)
		if id == "" {
			msg += "; no leader is known (an election may be under way)"
		}
		return shardrpc.ErrorBody{Code: shardrpc.ErrCodeNotLeader, Message: msg, LeaderID: id, LeaderRPC: rpc}
	case errors.Is(err, raftstore.ErrClosed), errors.Is(err, context.Canceled):
		return shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: fmt.Sprintf("node %s is shutting down", n.self.ID)}
	case errors.Is(err, context.DeadlineExceeded):
		return shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: fmt.Sprintf("shard %d: %s timed out", shard, op)}
	default:
		n.logger.Warn("rpc failed", "op", op, "shard", shard, "err", err)
		return shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: fmt.Sprintf("shard %d: %s: %v", shard, op, err)}
	}
}

// leaderRPC returns the node ID and RPC address of a leader known by its
// Raft server ID and/or Raft address; empty strings for an unknown leader.
func (n *Node) leaderRPC(id, raftAddr string) (string, string) {
	if id != "" {
		if nd, ok := n.cfg.Node(id); ok {
			return nd.ID, nd.RPCAddr
		}
	}
	if raftAddr != "" {
		if nd, ok := n.cfg.NodeByRaftAddr(raftAddr); ok {
			return nd.ID, nd.RPCAddr
		}
	}
	return id, ""
}

func toLink(r linkstore.Record) shardrpc.Link { return shardrpc.LinkFromRecord(r) }
