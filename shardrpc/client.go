package shardrpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/config"
)

// Client defaults; see ClientOptions.
const (
	DefaultTimeout         = 5 * time.Second
	DefaultAttemptTimeout  = 2 * time.Second
	DefaultDialTimeout     = time.Second
	DefaultMaxConnsPerNode = 512
	DefaultIdleConnTimeout = 10 * time.Second
	DefaultBackoffBase     = 5 * time.Millisecond
	DefaultBackoffMax      = 100 * time.Millisecond
	DefaultResolveConns    = 2

	// maxImmediateHops is how many not_leader redirects in a row are
	// followed without a pause; beyond that the replicas disagree (an
	// election is running) and the client backs off between tries.
	maxImmediateHops = 3
	// maxResponseBody bounds what the client reads from a node: a bulk
	// create's answer holds up to 1,000 links.
	maxResponseBody = 8 << 20
)

// ClientOptions tunes a Client. The zero value is a production default.
type ClientOptions struct {
	// Timeout is the deadline of a call whose context has none
	// (default 5 s). Retries stop at the deadline.
	Timeout time.Duration
	// AttemptTimeout bounds one request to one node, so that a node that
	// hangs does not use up the whole deadline (default 2 s).
	AttemptTimeout time.Duration
	// DialTimeout bounds connecting to a node (default 1 s).
	DialTimeout time.Duration
	// MaxConnsPerNode bounds the keep-alive connections to one node
	// (default 512). A call that finds all of them busy waits for one
	// until its attempt deadline.
	MaxConnsPerNode int
	// IdleConnTimeout closes a connection unused for this long
	// (default 10 s). Close returns at once, but the pool's cleaner
	// goroutine (owned by fasthttp) exits only up to this long afterwards.
	IdleConnTimeout time.Duration
	// BackoffBase and BackoffMax shape the pause between rounds of
	// retries: BackoffBase doubled per full round over the replicas,
	// capped at BackoffMax, with jitter (defaults 5 ms and 100 ms).
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// BulkCreateJSON makes BulkCreate call the JSON bulk create RPC
	// (PathBulkCreate) instead of the binary one (PathBulkCreateBinary):
	// for nodes built before the binary RPC, during an upgrade.
	BulkCreateJSON bool
	// ResolveJSON makes Resolve call the JSON resolve RPC (PathResolve)
	// instead of the binary one (PathResolveBinary): for nodes built before
	// the binary RPC, during an upgrade, and for comparing the two.
	ResolveJSON bool
	// ResolveConns is how many pipelined connections (a
	// fasthttp.PipelineClient) carry the local binary resolves to each node
	// (default 2): the concurrent resolves share them, many requests per
	// write and many answers per read. A negative value sends them through
	// the keep-alive pool of the other calls instead. Linearizable resolves
	// always use the pool (see Resolve). Like the pool's, the pipelined
	// connections' goroutines end IdleConnTimeout after their last use.
	ResolveConns int
}

func (o *ClientOptions) fill() {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = DefaultAttemptTimeout
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.MaxConnsPerNode <= 0 {
		o.MaxConnsPerNode = DefaultMaxConnsPerNode
	}
	if o.IdleConnTimeout <= 0 {
		o.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = DefaultBackoffBase
	}
	if o.ResolveConns == 0 {
		o.ResolveConns = DefaultResolveConns
	}
	if o.BackoffMax < o.BackoffBase {
		o.BackoffMax = max(DefaultBackoffMax, o.BackoffBase)
	}
}

// Client reaches the replicas of every shard of a cluster over the internal
// RPC. It keeps one pool of keep-alive connections per storage node and,
// per shard, a hint of which replica leads; writes and confirming reads go
// to the hinted leader and follow not_leader redirects, local reads go to
// any live replica. A Client is safe for concurrent use.
type Client struct {
	opts   ClientOptions
	secret string
	nodes  []*nodeConn
	byID   map[string]*nodeConn
	byRPC  map[string]*nodeConn
	shards map[uint64]*shardState
}

// nodeConn is the connection pool to one storage node.
type nodeConn struct {
	id   string
	addr string
	hc   *fasthttp.HostClient
	// resolver carries the binary resolve calls.
	resolver doer
	// noManyUntil is when, in Unix nanoseconds, the client tries the
	// multi-resolve RPC at this node again after a 404 (resolvebatch.go);
	// 0 while the node serves it.
	noManyUntil atomic.Int64
}

// shardState is what the client knows about one shard.
type shardState struct {
	id       uint64
	idHeader string
	replicas []*nodeConn
	// leader is the index in replicas of the hinted leader, -1 if unknown.
	leader atomic.Int32
	// batch coalesces concurrent local resolves (resolvebatch.go).
	batch *resolveQueue
}

func (s *shardState) leaderIndex() int { return int(s.leader.Load()) }

func (s *shardState) setLeader(i int) { s.leader.Store(int32(i)) }

// forgetLeader drops the hint if it still names replica i.
func (s *shardState) forgetLeader(i int) { s.leader.CompareAndSwap(int32(i), -1) }

func (s *shardState) indexOf(n *nodeConn) int {
	for i, r := range s.replicas {
		if r == n {
			return i
		}
	}
	return -1
}

// NewClient returns a client for the cluster cfg describes, which must be
// valid (config.Load validates). Nodes are dialled lazily. The RPC secret is
// cfg.Cluster.RPCSecret.
func NewClient(cfg *config.Config, opts ClientOptions) *Client {
	opts.fill()
	c := &Client{
		opts:   opts,
		secret: cfg.Cluster.RPCSecret,
		byID:   make(map[string]*nodeConn, len(cfg.Nodes)),
		byRPC:  make(map[string]*nodeConn, len(cfg.Nodes)),
		shards: make(map[uint64]*shardState, len(cfg.Shards)),
	}
	for _, n := range cfg.Nodes {
		nc := &nodeConn{id: n.ID, addr: n.RPCAddr}
		nc.hc = &fasthttp.HostClient{
			Addr:                     n.RPCAddr,
			Name:                     "linkraft-shardrpc",
			NoDefaultUserAgentHeader: true,
			MaxConns:                 opts.MaxConnsPerNode,
			MaxIdleConnDuration:      opts.IdleConnTimeout,
			MaxConnWaitTimeout:       opts.AttemptTimeout,
			ReadTimeout:              opts.AttemptTimeout,
			WriteTimeout:             opts.AttemptTimeout,
			MaxResponseBodySize:      maxResponseBody,
			// A plain net.Dialer: fasthttp's default dialer keeps a
			// process-wide DNS cache goroutine that never stops.
			DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
				d := net.Dialer{Timeout: min(timeout, opts.DialTimeout), KeepAlive: 30 * time.Second}
				return d.Dial("tcp", addr)
			},
		}
		nc.resolver = c.newResolver(nc)
		c.nodes = append(c.nodes, nc)
		c.byID[n.ID] = nc
		c.byRPC[n.RPCAddr] = nc
	}
	for _, s := range cfg.Shards {
		st := &shardState{id: s.ID, idHeader: strconv.FormatUint(s.ID, 10)}
		for _, r := range s.Replicas {
			if nc, ok := c.byID[r]; ok {
				st.replicas = append(st.replicas, nc)
			}
		}
		st.leader.Store(-1)
		st.batch = c.newResolveQueue(st)
		c.shards[s.ID] = st
	}
	return c
}

// Close closes the idle connections to every node. Calls in flight finish
// normally; the Client must not be used afterwards.
func (c *Client) Close() {
	for _, n := range c.nodes {
		n.hc.CloseIdleConnections()
	}
}

// LeaderKnown reports whether the client currently has a leader hint for
// the shard: the last call that needed the leader reached it, and no
// transport failure since made the client forget it.
func (c *Client) LeaderKnown(shard uint64) bool {
	s, ok := c.shards[shard]
	return ok && s.leaderIndex() >= 0
}

// Create stores a new link in the shard, at its leader. A retried create
// (not_leader, a lost connection, a timeout) carries the same RequestID, so
// the shard applies it at most once; Create sets a random RequestID when
// req has none. Errors wrap ErrAliasTaken, ErrPartitionFull,
// ErrBadRequest, ErrWrongShard, ErrUnauthorized, ErrUnknownShard or
// ErrUnavailable.
func (c *Client) Create(ctx context.Context, shard uint64, req CreateRequest) (Link, error) {
	s, err := c.shard(shard)
	if err != nil {
		return Link{}, err
	}
	if req.RequestID == "" {
		req.RequestID = NewRequestID()
	}
	body, err := json.Marshal(&req)
	if err != nil {
		return Link{}, fmt.Errorf("shardrpc: encode create: %w", err)
	}
	var link Link
	if err := c.leaderCall(ctx, s, PathCreate, body, &link, nil); err != nil {
		return Link{}, fmt.Errorf("create on shard %d: %w", shard, err)
	}
	return link, nil
}

// NewRequestID returns a fresh random request ID: 16 random bytes in hex.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Resolve returns the link of code from the shard. It first reads locally
// at the hinted leader, or at any replica if that one is down; a replica
// that does not find the code makes Resolve ask the leader with a
// linearizable read, so ErrNotFound means the leader confirmed that the
// code does not exist (never a false not-found right after a create).
// ErrGone means the link was deleted: any replica that applied the delete
// may answer it, since a tombstone is never removed. Other errors wrap ErrUnavailable, ErrBadRequest, ErrUnauthorized,
// ErrWrongShard or ErrUnknownShard.
//
// The call is the binary resolve RPC (PathResolveBinary; see
// ClientOptions.ResolveJSON for the JSON one). Its answer is the stored
// record, decoded with linkstore.DecodeRecord. Local reads of one shard
// that wait while its resolve RPCs are busy share one multi-resolve
// (PathResolveMany; see resolvebatch.go), with the same answers.
func (c *Client) Resolve(ctx context.Context, shard uint64, code string) (Link, error) {
	return c.resolve(ctx, c.deadline(ctx), shard, code)
}

// ResolveDeadline is Resolve bounded by deadline instead of a context: the
// redirect path's variant, which spares the router a context and its timer
// per cache miss.
func (c *Client) ResolveDeadline(deadline time.Time, shard uint64, code string) (Link, error) {
	return c.resolve(context.Background(), deadline, shard, code)
}

// acquireLocalResolve acquires the request and response of a binary
// resolve to shard s and appends to buf the body of a local read of code.
// The caller releases req and resp.
func (c *Client) acquireLocalResolve(s *shardState, buf []byte, code string) (req *fasthttp.Request, resp *fasthttp.Response, body []byte) {
	req = fasthttp.AcquireRequest()
	resp = fasthttp.AcquireResponse()
	c.prepareResolve(req, s)
	return req, resp, AppendResolveRequest(buf, code, false)
}

func (c *Client) resolve(ctx context.Context, deadline time.Time, shard uint64, code string) (Link, error) {
	s, err := c.shard(shard)
	if err != nil {
		return Link{}, err
	}
	if c.opts.ResolveJSON {
		return c.resolveJSON(ctx, deadline, s, code)
	}
	if code == "" || len(code) > maxWireCode {
		return Link{}, fmt.Errorf("shardrpc: resolve a code of %d bytes (1 to %d): %w", len(code), maxWireCode, ErrBadRequest)
	}
	var buf [3 + maxWireCode]byte
	req, resp, body := c.acquireLocalResolve(s, buf[:0], code)
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)

	var link Link
	done, err := c.resolveLocal(ctx, deadline, s, code, req, body, resp, &link)
	if err != nil {
		return Link{}, fmt.Errorf("resolve %q on shard %d: %w", code, shard, err)
	}
	if done {
		return link, nil
	}
	body = AppendResolveRequest(buf[:0], code, true)
	err = c.leaderLoopUntil(ctx, deadline, s, func(deadline time.Time, n *nodeConn) error {
		return c.attemptResolve(deadline, n, true, req, body, resp, &link)
	})
	if err != nil {
		return Link{}, fmt.Errorf("resolve %q on shard %d: %w", code, shard, err)
	}
	return link, nil
}

// tryReplicasLocal is the first pass of a resolve: try gives each replica
// one local (maybe stale) read, the believed leader first, until ctx or
// deadline ends. It returns true when a replica answered; a terminal error
// as is; and false, nil when only the leader can tell (a replica said
// ErrMaybeStale or ErrNotFound) or no replica answered, so the caller asks
// the leader. A transport error from the believed leader drops the hint.
func (c *Client) tryReplicasLocal(ctx context.Context, deadline time.Time, s *shardState, try func(n *nodeConn) error) (bool, error) {
	start := max(s.leaderIndex(), 0)
	for i := range s.replicas {
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			break
		}
		idx := (start + i) % len(s.replicas)
		err := try(s.replicas[idx])
		if err == nil {
			return true, nil
		}
		if errors.Is(err, ErrMaybeStale) || errors.Is(err, ErrNotFound) {
			break // only the leader can tell
		}
		if terminal(err) {
			return false, err
		}
		if idx == s.leaderIndex() && isTransport(err) {
			s.forgetLeader(idx)
		}
	}
	return false, nil
}

// resolveJSON is Resolve over the JSON resolve RPC (ClientOptions.ResolveJSON).
func (c *Client) resolveJSON(ctx context.Context, deadline time.Time, s *shardState, code string) (Link, error) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)

	c.prepare(req, s, PathResolve)
	var buf [128]byte
	req.SetBody(appendResolveBody(buf[:0], code, false))

	var link Link
	done, err := c.tryReplicasLocal(ctx, deadline, s, func(n *nodeConn) error {
		return c.attempt(deadline, n, req, resp, &link)
	})
	if err != nil {
		return Link{}, fmt.Errorf("resolve %q on shard %d: %w", code, s.id, err)
	}
	if done {
		return link, nil
	}
	req.SetBody(appendResolveBody(buf[:0], code, true))
	err = c.leaderLoopUntil(ctx, deadline, s, func(deadline time.Time, n *nodeConn) error {
		return c.attempt(deadline, n, req, resp, &link)
	})
	if err != nil {
		return Link{}, fmt.Errorf("resolve %q on shard %d: %w", code, s.id, err)
	}
	return link, nil
}

// Status returns the status of the shard's leader replica, asking the
// replicas until one is the leader or names it. It updates the leader hint.
// An error wraps ErrUnavailable when no replica leads before the deadline.
func (c *Client) Status(ctx context.Context, shard uint64) (Status, error) {
	s, err := c.shard(shard)
	if err != nil {
		return Status{}, err
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	c.prepare(req, s, PathStatus)
	req.SetBodyString("{}")

	deadline := c.deadline(ctx)
	idx := max(s.leaderIndex(), 0)
	var lastErr error
	failures, hops := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return Status{}, unavailable(s, withLast(err, lastErr))
		}
		if !time.Now().Before(deadline) {
			return Status{}, unavailable(s, lastErr)
		}
		var st Status
		err := c.attempt(deadline, s.replicas[idx], req, resp, &st)
		if err == nil && st.State == "Leader" {
			s.setLeader(idx)
			return st, nil
		}
		if err == nil {
			lastErr = fmt.Errorf("node %s is %s", s.replicas[idx].id, st.State)
			s.forgetLeader(idx)
			if j := c.hintIndex(s, st.LeaderID, st.LeaderRPC); j >= 0 && j != idx && hops < maxImmediateHops {
				idx, hops = j, hops+1
				continue
			}
		} else {
			if terminal(err) {
				return Status{}, fmt.Errorf("status of shard %d: %w", shard, err)
			}
			lastErr = err
			s.forgetLeader(idx)
		}
		hops = 0
		idx = (idx + 1) % len(s.replicas)
		failures++
		if err := c.pause(ctx, deadline, s, failures); err != nil {
			return Status{}, unavailable(s, lastErr)
		}
	}
}

// withLast wraps err and, when there is one, the last failure before it.
func withLast(err, last error) error {
	if last == nil {
		return err
	}
	return fmt.Errorf("%w (last failure: %w)", err, last)
}

// NodeStatus asks one node for the status of its replica of shard, once,
// without following the leader.
func (c *Client) NodeStatus(ctx context.Context, nodeID string, shard uint64) (Status, error) {
	s, err := c.shard(shard)
	if err != nil {
		return Status{}, err
	}
	n, ok := c.byID[nodeID]
	if !ok {
		return Status{}, fmt.Errorf("shardrpc: node %q is not in the cluster configuration: %w", nodeID, ErrBadRequest)
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	c.prepare(req, s, PathStatus)
	req.SetBodyString("{}")
	var st Status
	if err := c.attempt(c.deadline(ctx), n, req, resp, &st); err != nil {
		return Status{}, fmt.Errorf("status of shard %d on node %s: %w", shard, nodeID, err)
	}
	return st, nil
}

func (c *Client) shard(id uint64) (*shardState, error) {
	s, ok := c.shards[id]
	if !ok || len(s.replicas) == 0 {
		return nil, fmt.Errorf("shardrpc: shard %d is not in the cluster configuration: %w", id, ErrUnknownShard)
	}
	return s, nil
}

// deadline is ctx's deadline, or now + Timeout.
func (c *Client) deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(c.opts.Timeout)
}

// prepare sets the method, path and headers of a JSON call to shard s.
func (c *Client) prepare(req *fasthttp.Request, s *shardState, path string) {
	c.prepareAs(req, s, path, "application/json")
}

// prepareAs sets the method, path and headers of a call to shard s with a
// body of contentType.
func (c *Client) prepareAs(req *fasthttp.Request, s *shardState, path, contentType string) {
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(path)
	req.Header.SetContentType(contentType)
	req.Header.Set(HeaderShard, s.idHeader)
	if c.secret != "" {
		req.Header.Set(HeaderSecret, c.secret)
	}
}

// leaderCall sends a call to the shard's leader until it succeeds, fails
// for good, or the deadline passes. Either body is the JSON to send, or req
// is a request already prepared with its body. The answer is decoded into
// out.
func (c *Client) leaderCall(ctx context.Context, s *shardState, path string, body []byte, out any, req *fasthttp.Request) error {
	if req == nil {
		req = fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		c.prepare(req, s, path)
		req.SetBodyRaw(body)
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	return c.leaderLoop(ctx, s, func(deadline time.Time, n *nodeConn) error {
		return c.attempt(deadline, n, req, resp, out)
	})
}

// leaderLoop runs try against the shard's leader until it succeeds, fails
// for good, or the deadline passes, following not_leader hints and backing
// off between rounds over the replicas. try sends one request to node n
// with the attempt deadline given.
func (c *Client) leaderLoop(ctx context.Context, s *shardState, try func(deadline time.Time, n *nodeConn) error) error {
	return c.leaderLoopUntil(ctx, c.deadline(ctx), s, try)
}

// leaderLoopUntil is leaderLoop with the deadline given: ctx's, or an
// earlier one.
func (c *Client) leaderLoopUntil(ctx context.Context, deadline time.Time, s *shardState, try func(deadline time.Time, n *nodeConn) error) error {
	idx := max(s.leaderIndex(), 0)
	var lastErr error
	failures, hops := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return unavailable(s, withLast(err, lastErr))
		}
		if !time.Now().Before(deadline) {
			if lastErr == nil {
				lastErr = context.DeadlineExceeded
			}
			return unavailable(s, lastErr)
		}
		err := try(deadline, s.replicas[idx])
		if err == nil {
			s.setLeader(idx)
			return nil
		}
		if terminal(err) {
			// A definite answer (alias taken, not found, ...) comes from
			// the leader: remember it.
			var re *RemoteError
			if errors.As(err, &re) && re.Body.Code != ErrCodeBadRequest && re.Body.Code != ErrCodeUnauthorized {
				s.setLeader(idx)
			}
			return err
		}
		lastErr = err
		var re *RemoteError
		if errors.As(err, &re) && re.Body.Code == ErrCodeNotLeader {
			s.forgetLeader(idx)
			if j := c.hintIndex(s, re.Body.LeaderID, re.Body.LeaderRPC); j >= 0 && j != idx {
				s.setLeader(j)
				if hops < maxImmediateHops {
					idx, hops = j, hops+1
					continue
				}
				idx = j
			} else {
				idx = (idx + 1) % len(s.replicas)
			}
		} else {
			// Transport error, unavailable, unknown shard, maybe_stale
			// from a replica that is no longer the leader: next replica.
			s.forgetLeader(idx)
			idx = (idx + 1) % len(s.replicas)
		}
		hops = 0
		failures++
		if err := c.pause(ctx, deadline, s, failures); err != nil {
			return unavailable(s, withLast(err, lastErr))
		}
	}
}

// pause waits before the next try: not at all while the current round over
// the replicas is not through, else a capped, jittered exponential backoff.
func (c *Client) pause(ctx context.Context, deadline time.Time, s *shardState, failures int) error {
	n := len(s.replicas)
	if failures%n != 0 {
		return nil
	}
	round := min(failures/n-1, 16)
	d := min(c.opts.BackoffBase<<round, c.opts.BackoffMax)
	d = d/2 + mrand.N(d/2+1)
	if until := time.Until(deadline); d > until {
		d = until
	}
	if d <= 0 {
		return context.DeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// hintIndex returns the replica index of the leader a node named, -1 if
// it named none or one that is not a replica of s.
func (c *Client) hintIndex(s *shardState, id, rpcAddr string) int {
	if id != "" {
		if n, ok := c.byID[id]; ok {
			return s.indexOf(n)
		}
	}
	if rpcAddr != "" {
		if n, ok := c.byRPC[rpcAddr]; ok {
			return s.indexOf(n)
		}
	}
	return -1
}

// attempt sends req once to node n and decodes a 200 answer into out. An
// error is a *RemoteError (the node answered) or a transport error wrapped
// in ErrUnavailable.
func (c *Client) attempt(deadline time.Time, n *nodeConn, req *fasthttp.Request, resp *fasthttp.Response, out any) error {
	if err := c.send(deadline, n, n.hc, req, resp); err != nil {
		return err
	}
	if resp.StatusCode() != fasthttp.StatusOK {
		return remoteError(n, resp)
	}
	if err := json.Unmarshal(resp.Body(), out); err != nil {
		return fmt.Errorf("%w: node %s: decode answer: %w", ErrProtocol, n.id, err)
	}
	return nil
}

// doer is a fasthttp client of one node: a HostClient or a PipelineClient.
type doer interface {
	DoDeadline(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error
}

// send sends req once to node n through hc, bounded by the attempt
// timeout. An error is a transport error wrapped in ErrUnavailable.
func (c *Client) send(deadline time.Time, n *nodeConn, hc doer, req *fasthttp.Request, resp *fasthttp.Response) error {
	if d := time.Now().Add(c.opts.AttemptTimeout); d.Before(deadline) {
		deadline = d
	}
	req.SetHost(n.addr)
	resp.Reset()
	if err := hc.DoDeadline(req, resp, deadline); err != nil {
		return &transportError{node: n.id, err: err}
	}
	return nil
}

// remoteError is the error of a non-200 answer: a *RemoteError with the
// node's ErrorBody, or ErrProtocol for an answer that is not one.
func remoteError(n *nodeConn, resp *fasthttp.Response) error {
	status := resp.StatusCode()
	re := &RemoteError{Node: n.id, Status: status}
	if err := json.Unmarshal(resp.Body(), &re.Body); err != nil || re.Body.Code == "" {
		re.Body.Code = codeOfStatus(status)
		if re.Body.Code == "" {
			return fmt.Errorf("%w: node %s answered %d: %.200q", ErrProtocol, n.id, status, resp.Body())
		}
		re.Body.Message = fmt.Sprintf("HTTP %d without an error body", status)
	}
	return re
}

// transportError is a request that got no answer: refused, reset, timed
// out. It unwraps to ErrUnavailable and to the cause.
type transportError struct {
	node string
	err  error
}

func (e *transportError) Error() string { return "node " + e.node + ": " + e.err.Error() }

func (e *transportError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

func isTransport(err error) bool {
	var te *transportError
	return errors.As(err, &te)
}

// terminal reports whether err is a definite answer that a retry
// elsewhere cannot change.
func terminal(err error) bool {
	var re *RemoteError
	if !errors.As(err, &re) {
		return errors.Is(err, ErrProtocol)
	}
	switch re.Body.Code {
	case ErrCodeNotLeader, ErrCodeUnavailable, ErrCodeUnknownShard, ErrCodeMaybeStale:
		return false
	}
	return true
}

func unavailable(s *shardState, cause error) error {
	if cause == nil {
		return fmt.Errorf("%w: shard %d", ErrUnavailable, s.id)
	}
	if errors.Is(cause, ErrUnavailable) {
		return fmt.Errorf("shard %d: %w", s.id, cause)
	}
	return fmt.Errorf("%w: shard %d: %w", ErrUnavailable, s.id, cause)
}

// appendResolveBody appends the JSON of a ResolveRequest without
// reflection: {"code":"...","linearizable":true}.
func appendResolveBody(dst []byte, code string, linearizable bool) []byte {
	dst = append(dst, `{"code":`...)
	dst = appendJSONString(dst, code)
	if linearizable {
		dst = append(dst, `,"linearizable":true`...)
	}
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string literal. Invalid UTF-8 is
// replaced by U+FFFD, as encoding/json does.
func appendJSONString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\':
				dst = append(dst, '\\', b)
			case b < 0x20 || b == '<' || b == '>' || b == '&':
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			default:
				dst = append(dst, b)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
