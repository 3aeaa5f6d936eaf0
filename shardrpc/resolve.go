package shardrpc

import (
	"fmt"
	"net"
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
	c.prepareAs(req, s, PathResolveBinary, ContentTypeResolve)
}

// attemptResolve sends a binary resolve request with body once to node n
// and decodes a 200 answer into link. Errors are those of attempt. A local
// read goes through the node's resolver; a linearizable one, which waits
// for a quorum, through the keep-alive pool, so that it never holds up the
// local reads queued behind it on a pipelined connection. The body is set
// on every attempt: a PipelineClient takes the request's body buffer.
func (c *Client) attemptResolve(deadline time.Time, n *nodeConn, linearizable bool, req *fasthttp.Request, body []byte, resp *fasthttp.Response, link *Link) error {
	req.SetBody(body)
	hc := n.resolver
	if linearizable {
		hc = n.hc
	}
	if err := c.send(deadline, n, hc, req, resp); err != nil {
		return err
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return remoteError(n, resp)
	}
	raw, applied, err := DecodeResolveResponse(resp.Body())
	if err != nil {
		return fmt.Errorf("%w: node %s: decode answer: %w", ErrProtocol, n.id, err)
	}
	rec, err := linkstore.DecodeRecord(raw)
	if err != nil {
		return fmt.Errorf("%w: node %s: decode record: %w", ErrProtocol, n.id, err)
	}
	*link = LinkFromRecord(rec)
	link.AppliedIndex = applied
	return nil
}

// newResolver returns the transport of the binary resolves to node nc:
// its keep-alive pool, or with ClientOptions.ResolveConns a
// fasthttp.PipelineClient that sends the concurrent resolves to the node
// over that many connections, many requests per write and many answers per
// read.
func (c *Client) newResolver(nc *nodeConn) doer {
	if c.opts.ResolveConns <= 0 {
		return nc.hc
	}
	opts := c.opts
	return &fasthttp.PipelineClient{
		Addr:                     nc.addr,
		Name:                     "linkraft-shardrpc",
		NoDefaultUserAgentHeader: true,
		MaxConns:                 opts.ResolveConns,
		MaxPendingRequests:       resolvePipelineDepth,
		MaxIdleConnDuration:      opts.IdleConnTimeout,
		ReadTimeout:              opts.AttemptTimeout,
		WriteTimeout:             opts.AttemptTimeout,
		MaxResponseBodySize:      maxResponseBody,
		Dial: func(addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
			return d.Dial("tcp", addr)
		},
		Logger: discardLogger{},
	}
}

// resolvePipelineDepth bounds the resolves waiting on one pipelined
// connection.
const resolvePipelineDepth = 1024

// discardLogger drops fasthttp's log lines: the client reports every
// failure to its caller.
type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
