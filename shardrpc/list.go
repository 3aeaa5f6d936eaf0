package shardrpc

import (
	"context"
	"encoding/json"
	"fmt"
)

// PathList lists a shard's links, newest first: the body is a
// ListRequest, the answer a ListResponse. The leader answers from a
// linearizable read, so a list shows every link whose create was
// acknowledged before it.
const PathList = "/rpc/v1/list"

// ListRequest asks for one page of a shard's links.
type ListRequest struct {
	// All lists every link; otherwise only Owner's links.
	All   bool   `json:"all,omitempty"`
	Owner string `json:"owner,omitempty"`
	// After, when set, starts the page after this position.
	After *Position `json:"after,omitempty"`
	// Query keeps links whose code, URL or title contains it
	// (case-insensitive); Tag keeps links with this exact tag.
	Query string `json:"q,omitempty"`
	Tag   string `json:"tag,omitempty"`
	// Limit is the most links wanted, 1 to 1000.
	Limit int `json:"limit"`
}

// Position is a place in the list order (newest first, ties by code).
type Position struct {
	CreatedAtMs int64  `json:"created_at_ms"`
	Code        string `json:"code"`
}

// ListResponse is a page of a shard's links.
type ListResponse struct {
	// Links are in list order, at most the request's Limit.
	Links []Link `json:"links"`
	// More is true when the shard stopped at Limit links and may have
	// more after the last.
	More bool `json:"more,omitempty"`
	// Frontier is set when the shard stopped at its scan budget: it
	// examined every link up to Frontier and none after it.
	Frontier *Position `json:"frontier,omitempty"`
}

// List reads one page of the shard's links at its leader. Errors wrap
// ErrBadRequest, ErrUnauthorized, ErrUnknownShard or ErrUnavailable.
func (c *Client) List(ctx context.Context, shard uint64, req ListRequest) (ListResponse, error) {
	s, err := c.shard(shard)
	if err != nil {
		return ListResponse{}, err
	}
	body, err := json.Marshal(&req)
	if err != nil {
		return ListResponse{}, fmt.Errorf("shardrpc: encode list: %w", err)
	}
	var res ListResponse
	if err := c.leaderCall(ctx, s, PathList, body, &res, nil); err != nil {
		return ListResponse{}, fmt.Errorf("list on shard %d: %w", shard, err)
	}
	return res, nil
}
