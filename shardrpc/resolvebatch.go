package shardrpc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/internal/coalesce"
	"github.com/linkraft/linkraft/linkstore"
)

// Resolve coalescing. Under cold redirect load (every redirect a cache
// miss) most of a resolve's cost on both ends is the RPC itself: a request
// and an answer, with their framing and syscalls, per redirect. The client
// therefore coalesces the local reads that wait for one shard while that
// shard's resolve RPCs are busy into one multi-resolve (PathResolveMany,
// resolvemanywire.go), with internal/coalesce's mechanism (one
// coalesce.Batcher per shard), as the router coalesces creates
// (router/createbatch.go):
//
//   - a shard has at most resolveInflight local resolve RPCs in flight;
//   - a resolve that finds a free slot and no batch waiting is sent at
//     once, alone, as the single binary resolve: a lone request waits for
//     nothing, and an idle client never batches;
//   - otherwise it joins the shard's newest waiting batch (or opens one, as
//     its sender); when a slot frees it is handed to the oldest waiting
//     batch, which goes out as one multi-resolve of up to MaxResolveMany
//     codes (a batch of one as a single local read).
//
// No timer lingers: a batch only grows while the shard is busy anyway. The
// multi-resolve reads locally at the hinted leader, or the next replica
// when that one is down, exactly as a single local read does
// (tryReplicasLocal), and each item comes back as that read would have:
// a record, gone, or maybe_stale, on which the resolve asks the leader
// with its own linearizable single resolve (never a false not-found). A
// batch's wait for a slot is bounded by its sender's deadline and context;
// a waiting resolve's wait for the answer by its own context. A node that
// answers the path with 404 (built before it) gets single resolves for
// resolveManyRetry.

// resolveInflight bounds the local resolve RPCs in flight per shard: the
// resolves that arrive meanwhile wait in batches.
const resolveInflight = 2

// resolveManyRetry is how long a node that does not know PathResolveMany
// is sent single resolves only, before the client tries the path again
// (the node may have been upgraded meanwhile).
const resolveManyRetry = time.Minute

// errNoResolveMany is a node that does not serve PathResolveMany.
var errNoResolveMany = errors.New("shardrpc: node does not serve the multi-resolve RPC")

// resolveQueue is one shard's local resolve slots and waiting batches.
type resolveQueue = coalesce.Batcher[string, resolveOutcome]

// newResolveQueue returns the queue of shard s, whose batches are
// multi-resolves, each bounded by its sender's deadline.
func (c *Client) newResolveQueue(s *shardState) *resolveQueue {
	return coalesce.New(coalesce.Config[string, resolveOutcome]{
		InFlight: resolveInflight,
		MaxItems: MaxResolveMany,
		Send: func(_ context.Context, deadline time.Time, codes []string) ([]resolveOutcome, error) {
			return c.resolveMany(deadline, s, codes), nil
		},
	})
}

// resolveOutcome is what one item's local read came to.
type resolveOutcome struct {
	state outcomeState
	link  Link
	err   error
}

type outcomeState uint8

const (
	// outcomeLeader: no replica could tell (maybe_stale, or none
	// answered); the resolve asks the leader. The zero value.
	outcomeLeader outcomeState = iota
	// outcomeDone: a replica answered the link.
	outcomeDone
	// outcomeFailed: a definite error (gone, wrong_shard, ...).
	outcomeFailed
	// outcomeAlone: the batch could not be read for this item (a node
	// without the RPC, a per-item transient error); the resolve reads
	// alone, as a single resolve.
	outcomeAlone
)

// manyOK reports whether n is believed to serve PathResolveMany.
func (n *nodeConn) manyOK() bool {
	until := n.noManyUntil.Load()
	return until == 0 || time.Now().UnixNano() >= until
}

// resolveLocal is the first pass of a binary resolve of code: its local
// read, alone or as an item of a multi-resolve. It returns what
// tryReplicasLocal returns for a single read: true with *link set when a
// replica answered, a definite error, or false, nil when only the leader
// can tell. req, body and resp are the single resolve's, prepared.
func (c *Client) resolveLocal(ctx context.Context, deadline time.Time, s *shardState, code string, req *fasthttp.Request, body []byte, resp *fasthttp.Response, link *Link) (bool, error) {
	alone := func() (bool, error) {
		return c.tryReplicasLocal(ctx, deadline, s, func(n *nodeConn) error {
			return c.attemptResolve(deadline, n, false, req, body, resp, link)
		})
	}
	q := s.batch
	if q.TryAcquire() {
		// A free slot and nobody waiting: go alone, now.
		defer q.Release()
		return alone()
	}
	if !s.replicas[max(s.leaderIndex(), 0)].manyOK() {
		// The replica the batch would read first does not know the
		// multi-resolve: this read goes alone, outside the slots.
		return alone()
	}
	out, err := q.Join(ctx, deadline, code)
	if err != nil {
		// Gave up waiting: the batch's sender for a slot, or this
		// resolve for the batch's answer.
		return false, unavailable(s, err)
	}
	switch out.state {
	case outcomeDone:
		*link = out.link
		return true, nil
	case outcomeFailed:
		return false, out.err
	case outcomeAlone:
		return alone()
	}
	return false, nil
}

// resolveMany reads codes of shard s locally with one multi-resolve, at
// the hinted leader first and, as a single local read does, at the next
// replica while one does not answer; it returns each code's outcome.
func (c *Client) resolveMany(deadline time.Time, s *shardState, codes []string) []resolveOutcome {
	out := make([]resolveOutcome, len(codes))
	if len(codes) == 1 {
		// Nothing joined the sender: a plain single local read.
		var buf [3 + maxWireCode]byte
		req, resp, body := c.acquireLocalResolve(s, buf[:0], codes[0])
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		done, err := c.tryReplicasLocal(context.Background(), deadline, s, func(n *nodeConn) error {
			return c.attemptResolve(deadline, n, false, req, body, resp, &out[0].link)
		})
		switch {
		case err != nil:
			out[0] = resolveOutcome{state: outcomeFailed, err: err}
		case done:
			out[0].state = outcomeDone
		}
		return out
	}

	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	c.prepareAs(req, s, PathResolveMany, ContentTypeResolveMany)
	body := AppendResolveManyRequest(make([]byte, 0, 4+len(codes)*8), codes)
	var items []ResolveManyItem
	noMany := false
	done, err := c.tryReplicasLocal(context.Background(), deadline, s, func(n *nodeConn) error {
		if !n.manyOK() {
			noMany = true
			return errNoResolveMany
		}
		err := c.attemptResolveMany(deadline, n, req, body, resp, len(codes), &items)
		if errors.Is(err, errNoResolveMany) {
			noMany = true
			return err
		}
		if err != nil {
			return err
		}
		for i, it := range items {
			out[i] = itemOutcome(n, it)
		}
		return nil
	})
	switch {
	case err != nil:
		for i := range out {
			out[i] = resolveOutcome{state: outcomeFailed, err: err}
		}
	case !done && noMany:
		for i := range out {
			out[i].state = outcomeAlone
		}
	}
	// !done otherwise: no replica answered; every item asks the leader
	// (the zero outcome), as a single resolve would.
	return out
}

// attemptResolveMany sends a multi-resolve with body (of count codes) once
// to node n and decodes a 200 answer into items. Errors are those of
// attempt, and errNoResolveMany (the node answered 404 to the path, which
// it does not know: it is then sent single resolves for resolveManyRetry).
func (c *Client) attemptResolveMany(deadline time.Time, n *nodeConn, req *fasthttp.Request, body []byte, resp *fasthttp.Response, count int, items *[]ResolveManyItem) error {
	req.SetBody(body)
	if err := c.send(deadline, n, n.resolver, req, resp); err != nil {
		return err
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		err := remoteError(n, resp)
		var re *RemoteError
		if resp.StatusCode() == fasthttp.StatusNotFound && errors.As(err, &re) && re.Body.Code == ErrCodeBadRequest {
			n.noManyUntil.Store(time.Now().Add(resolveManyRetry).UnixNano())
			// Not wrapped in the RemoteError: its bad_request would read
			// as a terminal answer to tryReplicasLocal.
			return fmt.Errorf("node %s: %w (%v)", n.id, errNoResolveMany, err)
		}
		return err
	}
	got, err := DecodeResolveManyResponse(resp.Body(), count, (*items)[:0])
	if err != nil {
		return fmt.Errorf("%w: node %s: decode multi-resolve answer: %w", ErrProtocol, n.id, err)
	}
	*items = got
	return nil
}

// itemOutcome is the outcome of one item node n answered: what the same
// answer to a single local read means to tryReplicasLocal.
func itemOutcome(n *nodeConn, it ResolveManyItem) resolveOutcome {
	if it.Err != nil {
		re := &RemoteError{Node: n.id, Status: it.Err.Code.HTTPStatus(), Body: *it.Err}
		switch {
		case errors.Is(re, ErrMaybeStale) || errors.Is(re, ErrNotFound):
			return resolveOutcome{state: outcomeLeader}
		case terminal(re):
			return resolveOutcome{state: outcomeFailed, err: re}
		}
		// Transient for this item on this replica (unavailable, ...):
		// the item's resolve reads alone, over the replicas.
		return resolveOutcome{state: outcomeAlone}
	}
	rec, err := linkstore.DecodeRecord(it.Record)
	if err != nil {
		return resolveOutcome{state: outcomeFailed, err: fmt.Errorf("%w: node %s: decode record: %w", ErrProtocol, n.id, err)}
	}
	link := LinkFromRecord(rec)
	link.AppliedIndex = it.Applied
	return resolveOutcome{state: outcomeDone, link: link}
}
