package node

import (
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shardrpc"
)

// maxListBytes bounds the links of one list answer (their URLs, titles,
// tags and codes, plus a per-link allowance for the JSON around them),
// under the client's 1 MiB answer limit. A page cut by it ends with More.
const maxListBytes = 768 << 10

// list answers one page of the shard's links from a linearizable read at
// the leader (a follower answers not_leader).
func (n *Node) list(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group) {
	var req shardrpc.ListRequest
	if err := decodeBody(ctx, &req); err != nil {
		badRequest(ctx, err.Error())
		return
	}
	switch {
	case req.Limit < 1 || req.Limit > linkstore.MaxListLimit:
		badRequest(ctx, fmt.Sprintf("limit %d is outside [1, %d]", req.Limit, linkstore.MaxListLimit))
		return
	case !req.All && req.Owner == "":
		badRequest(ctx, "name an owner, or ask for all links")
		return
	case len(req.Query) > linkstore.MaxListQuery:
		badRequest(ctx, fmt.Sprintf("q of %d bytes is longer than %d", len(req.Query), linkstore.MaxListQuery))
		return
	case req.Tag != "" && !linkstore.ValidTag(req.Tag):
		badRequest(ctx, fmt.Sprintf("tag %q is not a valid tag", req.Tag))
		return
	case req.After != nil && (req.After.Code == "" || len(req.After.Code) > linkstore.MaxCodeLength):
		badRequest(ctx, fmt.Sprintf("after.code must be 1 to %d bytes", linkstore.MaxCodeLength))
		return
	}
	if err := linkstore.ValidateOwner(req.Owner); err != nil {
		badRequest(ctx, err.Error())
		return
	}
	q := linkstore.ListQuery{
		Partitions: n.ring.PartitionsOf(shard),
		All:        req.All,
		Owner:      req.Owner,
		Query:      req.Query,
		Tag:        req.Tag,
		Limit:      req.Limit,
	}
	if req.After != nil {
		q.After = &linkstore.Position{CreatedAtMs: req.After.CreatedAtMs, Code: req.After.Code}
	}
	var page linkstore.ListPage
	rctx, cancel := n.requestContext()
	err := g.Read(rctx, raftstore.ReadLinearizable, func(r raftstore.Reader) error {
		var err error
		page, err = linkstore.List(r, q)
		return err
	})
	cancel()
	if err != nil {
		if errors.Is(err, linkstore.ErrMalformed) {
			n.logger.Error("list index", "shard", shard, "err", err)
		}
		n.raftError(ctx, shard, "list", err)
		return
	}
	res := shardrpc.ListResponse{Links: make([]shardrpc.Link, 0, len(page.Records)), More: page.More}
	if page.Frontier != nil {
		res.Frontier = &shardrpc.Position{CreatedAtMs: page.Frontier.CreatedAtMs, Code: page.Frontier.Code}
	}
	size := 0
	for _, rec := range page.Records {
		size += 256 + 6*(len(rec.URL)+len(rec.Title)) + len(rec.Code) + len(rec.Owner)
		for _, t := range rec.Tags {
			size += len(t) + 3
		}
		if size > maxListBytes && len(res.Links) > 0 {
			// The last link sent is a valid place to go on from.
			res.More, res.Frontier = true, nil
			break
		}
		res.Links = append(res.Links, toLink(rec))
	}
	writeJSON(ctx, fasthttp.StatusOK, res)
}
