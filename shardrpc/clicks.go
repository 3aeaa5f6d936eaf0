package shardrpc

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/clicks"
)

// Click analytics paths.
const (
	// PathClicks takes one click flush of a router: the body is the
	// clicks.AppendBatch encoding (ContentTypeClicks), the answer a
	// ClicksResult. The node proposes it with the idempotency key
	// "clk/<router>/<seq>", and the shard applies a (router, seq) at most
	// once, so a retry is always safe.
	PathClicks = "/rpc/v1/clicks"
	// PathStats answers a StatsRequest with a clicks.Stats, read
	// linearizably at the shard's leader.
	PathStats = "/rpc/v1/stats"
)

// ContentTypeClicks is the content type of a PathClicks body.
const ContentTypeClicks = "application/x-linkraft-clicks"

// ClicksResult is the answer to a click flush.
type ClicksResult struct {
	// Duplicate is true when the shard had applied this (router, seq)
	// before; the batch was not counted again.
	Duplicate bool `json:"duplicate,omitempty"`
}

// StatsRequest asks for the click statistics of a code.
type StatsRequest struct {
	Code string `json:"code"`
	// From and To are the first and last UTC day, YYYY-MM-DD, at most
	// clickstore.MaxRangeDays apart.
	From string `json:"from"`
	To   string `json:"to"`
}

// FlushClicks sends one click batch to the shard's leader, retrying
// (not_leader, a lost connection, a timeout) with the same bytes until the
// shard answers or ctx ends. It implements clicks.Sink. Errors wrap
// ErrBadRequest, ErrWrongShard, ErrUnauthorized, ErrUnknownShard or
// ErrUnavailable.
func (c *Client) FlushClicks(ctx context.Context, shard uint64, batch clicks.Batch) error {
	s, err := c.shard(shard)
	if err != nil {
		return err
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	c.prepare(req, s, PathClicks)
	req.Header.SetContentType(ContentTypeClicks)
	req.SetBodyRaw(clicks.AppendBatch(nil, batch))
	var res ClicksResult
	if err := c.leaderCall(ctx, s, PathClicks, nil, &res, req); err != nil {
		return fmt.Errorf("flush clicks (router %s, seq %d) to shard %d: %w", batch.Router, batch.Seq, shard, err)
	}
	return nil
}

// Stats returns the click statistics of a code from its shard's leader.
// Errors wrap ErrBadRequest (a bad code or range), ErrWrongShard,
// ErrUnauthorized, ErrUnknownShard or ErrUnavailable.
func (c *Client) Stats(ctx context.Context, shard uint64, req StatsRequest) (clicks.Stats, error) {
	s, err := c.shard(shard)
	if err != nil {
		return clicks.Stats{}, err
	}
	body, err := json.Marshal(&req)
	if err != nil {
		return clicks.Stats{}, fmt.Errorf("shardrpc: encode stats request: %w", err)
	}
	var st clicks.Stats
	if err := c.leaderCall(ctx, s, PathStats, body, &st, nil); err != nil {
		return clicks.Stats{}, fmt.Errorf("stats of %q on shard %d: %w", req.Code, shard, err)
	}
	return st, nil
}

var _ clicks.Sink = (*Client)(nil)
