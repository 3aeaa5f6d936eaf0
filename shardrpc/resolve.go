package shardrpc

import (
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/linkstore"
)

// LinkFromRecord is the Link of a stored record: the one conversion from
// linkstore's record to the RPC's link, used by the node's JSON answers and
// by the client's binary resolve alike.
func LinkFromRecord(r linkstore.Record) Link {
	return Link{
		Code:        r.Code,
		URL:         r.URL,
		CreatedAtMs: r.CreatedAtMs,
		Alias:       r.Alias,
		ExpiresAtMs: r.ExpiresAtMs,
		MaxClicks:   r.MaxClicks,

		Owner:          r.Owner,
		Title:          r.Title,
		Tags:           r.Tags,
		RedirectStatus: int(r.RedirectStatus),
		UpdatedAtMs:    r.UpdatedAtMs,
	}
}

// prepareResolve sets the method, path and headers of a binary resolve
// call to shard s.
func (c *Client) prepareResolve(req *fasthttp.Request, s *shardState) {
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(PathResolveBinary)
	req.Header.SetContentType(ContentTypeResolve)
	req.Header.Set(HeaderShard, s.idHeader)
	if c.secret != "" {
		req.Header.Set(HeaderSecret, c.secret)
	}
}

// attemptResolve sends a binary resolve request once to node n and decodes
// a 200 answer into link. Errors are those of attempt.
func (c *Client) attemptResolve(deadline time.Time, n *nodeConn, req *fasthttp.Request, resp *fasthttp.Response, link *Link) error {
	if err := c.send(deadline, n, n.resolver, req, resp); err != nil {
		return err
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return remoteError(n, resp)
	}
	raw, err := DecodeResolveResponse(resp.Body())
	if err != nil {
		return fmt.Errorf("%w: node %s: decode answer: %w", ErrProtocol, n.id, err)
	}
	rec, err := linkstore.DecodeRecord(raw)
	if err != nil {
		return fmt.Errorf("%w: node %s: decode record: %w", ErrProtocol, n.id, err)
	}
	*link = LinkFromRecord(rec)
	return nil
}
