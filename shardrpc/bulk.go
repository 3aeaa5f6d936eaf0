package shardrpc

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"
)

// PathBulkCreate creates many links in one shard as one Raft entry: the
// body is a BulkCreateRequest, the answer a BulkCreateResult.
const PathBulkCreate = "/rpc/v1/bulk-create"

// MaxBulkItems bounds the creates of one BulkCreateRequest (the format's
// bound on a create batch, linkstore.MaxBatchItems).
const MaxBulkItems = 1000

// BulkCreateRequest asks the shard to store many links in one Raft entry
// (a linkstore create batch), applied in order. Every item must belong to
// the shard (else the whole request is refused with ErrCodeWrongShard);
// an item the shard refuses (a bad URL or alias, a taken alias, a full
// partition) gets its own error and the others proceed.
type BulkCreateRequest struct {
	// Items are the creates, 1 to MaxBulkItems, each with its RequestID:
	// a retried bulk create (same request IDs) is answered with the first
	// results and stores nothing twice.
	Items []CreateRequest `json:"items"`
}

// BulkItemResult is the outcome of one item: Link on success (Link.Created
// false when reuse found an existing link), else Error.
type BulkItemResult struct {
	Link  *Link      `json:"link,omitempty"`
	Error *ErrorBody `json:"error,omitempty"`
}

// BulkCreateResult is the answer to a bulk create: one result per item,
// in the request's order.
type BulkCreateResult struct {
	Results []BulkItemResult `json:"results"`
}

// BulkCreate stores the links of items in the shard, at its leader, as
// one Raft entry, and returns one result per item. Items without a
// RequestID get a random one; a retry (not_leader, a lost connection, a
// timeout) resends the same IDs, so the shard applies each at most once.
// An error is about the whole call and wraps ErrBadRequest,
// ErrWrongShard, ErrUnauthorized, ErrUnknownShard or ErrUnavailable.
func (c *Client) BulkCreate(ctx context.Context, shard uint64, items []CreateRequest) ([]BulkItemResult, error) {
	s, err := c.shard(shard)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 || len(items) > MaxBulkItems {
		return nil, fmt.Errorf("shardrpc: bulk create of %d items, want 1 to %d: %w", len(items), MaxBulkItems, ErrBadRequest)
	}
	req := BulkCreateRequest{Items: make([]CreateRequest, len(items))}
	copy(req.Items, items)
	for i := range req.Items {
		if req.Items[i].RequestID == "" {
			req.Items[i].RequestID = NewRequestID()
		}
	}
	var res BulkCreateResult
	if c.opts.BulkCreateJSON {
		body, err := json.Marshal(&req)
		if err != nil {
			return nil, fmt.Errorf("shardrpc: encode bulk create: %w", err)
		}
		if err := c.leaderCall(ctx, s, PathBulkCreate, body, &res, nil); err != nil {
			return nil, fmt.Errorf("bulk create of %d links on shard %d: %w", len(items), shard, err)
		}
	} else if err := c.bulkCreateBinary(ctx, s, req.Items, &res); err != nil {
		return nil, fmt.Errorf("bulk create of %d links on shard %d: %w", len(items), shard, err)
	}
	if len(res.Results) != len(items) {
		return nil, fmt.Errorf("%w: bulk create on shard %d: %d results for %d items", ErrProtocol, shard, len(res.Results), len(items))
	}
	for i, r := range res.Results {
		if (r.Link == nil) == (r.Error == nil) {
			return nil, fmt.Errorf("%w: bulk create on shard %d: item %d has no single outcome", ErrProtocol, shard, i)
		}
	}
	return res.Results, nil
}

// bulkCreateBinary sends items to the shard's leader over the binary bulk
// create RPC (bulkwire.go) and decodes the answer into res.
func (c *Client) bulkCreateBinary(ctx context.Context, s *shardState, items []CreateRequest, res *BulkCreateResult) error {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	c.prepareAs(req, s, PathBulkCreateBinary, ContentTypeBulkCreate)
	req.SetBodyRaw(AppendBulkCreateRequest(make([]byte, 0, bulkRequestSize(items)), items))
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	return c.leaderLoop(ctx, s, func(deadline time.Time, n *nodeConn) error {
		if err := c.send(deadline, n, n.hc, req, resp); err != nil {
			return err
		}
		if resp.StatusCode() != fasthttp.StatusOK {
			return remoteError(n, resp)
		}
		results, err := DecodeBulkCreateResponse(resp.Body(), items)
		if err != nil {
			return fmt.Errorf("%w: node %s: decode answer: %w", ErrProtocol, n.id, err)
		}
		res.Results = results
		return nil
	})
}
