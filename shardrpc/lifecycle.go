package shardrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// PathDelete deletes a link: the body is a DeleteRequest, the answer a
// DeleteResult. The shard keeps a tombstone at the code, so it is never
// issued again; resolving it answers ErrCodeGone.
const PathDelete = "/rpc/v1/delete"

// ErrCodeGone is the wire code of a deleted link (HTTP 410): its code
// holds a tombstone. Unlike not_found, any replica may answer it, because
// a tombstone is never removed.
const ErrCodeGone Code = "gone"

// ErrGone: the link was deleted (ErrCodeGone). Resolve and Delete return
// it; it is final, so it is not retried.
var ErrGone = errors.New("shardrpc: link deleted")

// DeleteRequest asks the shard to delete the link of a code.
type DeleteRequest struct {
	Code string `json:"code"`
	// RequestID makes a retried delete idempotent, like
	// CreateRequest.RequestID: a retry after a lost answer returns the
	// first outcome instead of "gone".
	RequestID string `json:"request_id,omitempty"`
}

// DeleteResult is the answer to a successful delete: an empty object,
// room for fields later.
type DeleteResult struct{}

// Delete deletes the link of code at its shard's leader. A retried delete
// carries the same request ID, so a delete whose answer was lost is
// answered as deleted, not gone. Errors wrap ErrNotFound (no such link,
// confirmed by the leader), ErrGone (deleted before), ErrBadRequest,
// ErrWrongShard, ErrUnauthorized, ErrUnknownShard or ErrUnavailable.
func (c *Client) Delete(ctx context.Context, shard uint64, code string) (DeleteResult, error) {
	s, err := c.shard(shard)
	if err != nil {
		return DeleteResult{}, err
	}
	body, err := json.Marshal(&DeleteRequest{Code: code, RequestID: NewRequestID()})
	if err != nil {
		return DeleteResult{}, fmt.Errorf("shardrpc: encode delete: %w", err)
	}
	var res DeleteResult
	if err := c.leaderCall(ctx, s, PathDelete, body, &res, nil); err != nil {
		return DeleteResult{}, fmt.Errorf("delete %q on shard %d: %w", code, shard, err)
	}
	return res, nil
}
