package shardrpc

import (
	"context"
	"encoding/json"
	"fmt"
)

// PathEdit changes fields of a link: the body is an EditRequest, the
// answer the edited Link.
const PathEdit = "/rpc/v1/edit"

// EditRequest asks the shard to change fields of the link of Code. A nil
// field is left as it is; a zero value clears an optional field (the
// expiry, the click limit, the title, the tags, the redirect status).
// URL, when set, must be a validated, normalized target.
type EditRequest struct {
	Code string `json:"code"`
	// Owner, when set, restricts the edit to a link of that owner: any
	// other link is answered not_found (ErrCodeNotFound). Empty: any link.
	Owner string `json:"owner,omitempty"`
	// RequestID makes a retried edit idempotent, like
	// CreateRequest.RequestID.
	RequestID string `json:"request_id,omitempty"`

	URL            *string   `json:"url,omitempty"`
	ExpiresAtMs    *int64    `json:"expires_at_ms,omitempty"`
	MaxClicks      *uint64   `json:"max_clicks,omitempty"`
	Title          *string   `json:"title,omitempty"`
	Tags           *[]string `json:"tags,omitempty"`
	RedirectStatus *int      `json:"redirect_status,omitempty"`
}

// Edit changes fields of the link of req.Code at its shard's leader and
// returns the link as it is afterwards. A retry carries the same request
// ID (set here when req has none), so an edit whose answer was lost is
// applied once. Errors wrap ErrNotFound (no such link, confirmed by the
// leader, or another owner's), ErrGone (deleted or purged), ErrBadRequest,
// ErrWrongShard, ErrUnauthorized, ErrUnknownShard or ErrUnavailable.
func (c *Client) Edit(ctx context.Context, shard uint64, req EditRequest) (Link, error) {
	s, err := c.shard(shard)
	if err != nil {
		return Link{}, err
	}
	if req.RequestID == "" {
		req.RequestID = NewRequestID()
	}
	body, err := json.Marshal(&req)
	if err != nil {
		return Link{}, fmt.Errorf("shardrpc: encode edit: %w", err)
	}
	var link Link
	if err := c.leaderCall(ctx, s, PathEdit, body, &link, nil); err != nil {
		return Link{}, fmt.Errorf("edit %q on shard %d: %w", req.Code, shard, err)
	}
	return link, nil
}
