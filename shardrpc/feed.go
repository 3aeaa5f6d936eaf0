package shardrpc

import (
	"context"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"
)

// Changes long-polls the shard's leader for the changes after index since
// (see PathChanges): the leader confirms its leadership, then answers once
// it has an event after since, or after wait. It follows not_leader hints
// and retries other replicas until ctx ends; give ctx a deadline of at
// least wait plus a round trip. wait is clamped to half the attempt
// timeout (ClientOptions.AttemptTimeout), so that a long poll is never
// taken for a node that hangs.
func (c *Client) Changes(ctx context.Context, shard, since uint64, wait time.Duration) (Changes, error) {
	s, err := c.shard(shard)
	if err != nil {
		return Changes{}, err
	}
	wait = min(max(wait, 0), c.opts.AttemptTimeout/2)
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	c.prepareAs(req, s, PathChanges, ContentTypeChanges)
	var buf [changesRequestSize]byte
	body := AppendChangesRequest(buf[:0], since, wait.Milliseconds())

	var out Changes
	err = c.leaderLoop(ctx, s, func(deadline time.Time, n *nodeConn) error {
		req.SetBody(body)
		if err := c.send(deadline, n, n.hc, req, resp); err != nil {
			return err
		}
		if resp.StatusCode() != fasthttp.StatusOK {
			return remoteError(n, resp)
		}
		ch, err := DecodeChanges(resp.Body(), since)
		if err != nil {
			return fmt.Errorf("%w: node %s: decode changes: %w", ErrProtocol, n.id, err)
		}
		out = ch
		return nil
	})
	if err != nil {
		return Changes{}, fmt.Errorf("changes of shard %d after %d: %w", shard, since, err)
	}
	return out, nil
}
