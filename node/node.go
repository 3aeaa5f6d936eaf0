// Package node is a linkraft storage node: it hosts this node's replica of
// every shard the cluster file assigns to it and serves the internal RPC
// that routers call.
//
// # Lifecycle
//
// New does everything in order and undoes it on failure:
//
//  1. listen on raft_addr with a raftmux.Mux: one TCP port for the Raft
//     traffic of every shard;
//  2. open the node's Pebble DB (raftstore.Open on data_dir);
//  3. open the Raft group of every shard whose replicas include the node
//     and that has Raft state on this node: a restart resumes, with no
//     RPC and no membership change;
//  4. listen on rpc_addr and serve the internal RPC (package shardrpc);
//  5. join the groups of the other shards (below), waiting a little for
//     the first round of each, and serve each once it is ready.
//
// Close undoes it in reverse (see Close for why that order).
//
// # Joining a group
//
// A replica with no Raft state is either new (a fresh cluster) or one whose
// data directory was lost. Raft's safety assumes a voter never forgets its
// log or its vote: a replica that lost its data and came back as the voter
// it was could elect a follower that lacks entries it had acknowledged, and
// those would be lost (docs/ROBUSTNESS.md, Findings). Not bootstrapping is
// not enough: hashicorp/raft grants votes while its configuration is empty
// and counts an empty log as up to date. So the node asks the shard's other
// replicas what they hold (shardrpc.PathGroupState, answered even by a node
// whose own replica is not running yet) and decides:
//
//   - if any of them holds a group that ran (log past the bootstrap entry,
//     applied state or a snapshot), the group exists: rejoin;
//   - else, with n replicas and m = n/2+1 a majority: if at least n-m+1
//     OTHER replicas answer that they hold no state or only the bootstrap
//     entry, bootstrap with the shard's replicas as voters, as every
//     replica of a fresh cluster does. The node does not count itself: it
//     cannot tell whether it is new or forgot its log, which is the whole
//     point. A committed entry is on m voters; had this node been one, the
//     other m-1 would still hold it past the bootstrap entry, and with
//     n-m+1 others known fresh at most m-2 are unknown, too few to hide
//     it. With 3 replicas that is every other replica: the first start of
//     a shard waits until all three are up (as any Raft bootstrap does;
//     etcd too needs its initial cluster). A single replica bootstraps;
//   - else (too few answers) ask again with backoff, logging why, without
//     starting the group.
//
// Rejoining: the node asks the shard's leader (following leader hints) to
// make it a non-voter (shardrpc.PathGroupJoin; the leader demotes the voter,
// or adds a node that was never a member) and waits for that change to
// commit on the survivors before its Raft instance starts, without
// bootstrapping. From then on no candidate counts its vote and no commit
// needs its log. It catches up (a snapshot install and the log), serves the
// RPC of the replica only once it has applied the commit index the leader
// gave it (until then every RPC for the shard but the group state answers
// 503 unavailable, so no read is answered from a partial state), and then
// asks the leader to promote it (shardrpc.PathGroupPromote), which the
// leader does only for a non-voter that reports the target applied. Every
// step is idempotent and retried, and a node that restarts midway resumes:
// without state it joins again, with state as a non-voter it asks for its
// promotion. A leader never demotes a voter if fewer voters than a
// majority of the shard's replicas would be left.
//
// The fault model: at most a minority of a shard's replicas lose their data
// at once. Losing more is outside it: the remaining state may be on a
// minority, and a node may then wait forever for a leader, or, if enough
// replicas answer that they hold nothing, bootstrap a new group. An
// operator must then restore from a replica that holds the data.
//
// # Internal RPC
//
// `POST /rpc/v1/create|resolve|status|delete` (and the click and membership RPCs), with `X-Linkraft-Shard` naming the
// shard, JSON bodies, and failures as shardrpc.ErrorBody with the HTTP
// status of their code. A create reaching a follower, and a linearizable
// resolve, answer not_leader with the leader's node ID and RPC address. A
// local resolve that misses answers maybe_stale: only the leader's
// linearizable read may say not_found. A deleted code answers gone from
// any replica that applied the delete (a tombstone is permanent). When the cluster has an RPC secret,
// requests without it get 401 unauthorized.
//
// Two calls are binary rather than JSON: the resolve of the redirect path
// (`/rpc/v2/resolve`, resolvebin.go; version 2 answers carry the replica's
// applied index) and the change feed (`/rpc/v1/changes`, feed.go), which a
// router long-polls at each shard's leader for the codes deleted, edited or
// purged after a Raft index, so that it can keep cached links valid while
// the feed answers.
package node

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/raftmux"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/ring"
	"github.com/linkraft/linkraft/shardrpc"
	"github.com/valyala/fasthttp"
)

// Defaults of Options.
const (
	// DefaultRequestTimeout bounds the work of one RPC on the node.
	DefaultRequestTimeout = 5 * time.Second
	// DefaultShutdownTimeout bounds each wait of Close: for in-flight RPCs
	// to finish, and for leadership hand-off.
	DefaultShutdownTimeout = 5 * time.Second
	// DefaultMaxConns bounds the concurrent RPC connections.
	DefaultMaxConns = 4096
)

// Limits of the RPC server.
const (
	// maxBodySize bounds an RPC body: a bulk create (bulk.go) carries up
	// to 1,000 creates, each at most a linkstore.MaxURLLength URL (the
	// routers send at most 2 KiB ones, JSON-escaped), an alias and a
	// request ID.
	maxBodySize = 8 << 20
	// maxRequestID bounds CreateRequest.RequestID, the idempotency key.
	maxRequestID = 128
)

// Options tune a Node. The zero value is a production default.
type Options struct {
	// Logger receives the node's logs, and those of Raft and Pebble (at
	// Debug level unless they are warnings or errors). Nil discards them.
	Logger *slog.Logger
	// Raft, if set, adjusts the Raft configuration of every group, e.g.
	// shorter timeouts in tests. See raftstore.Options.Raft.
	Raft func(*raft.Config)
	// RequestTimeout bounds the work of one RPC: queueing a proposal, a
	// linearizable read's leader confirmation. Default
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// ShutdownTimeout bounds each wait of Close. Default
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// MaxConns bounds the concurrent RPC connections. Default
	// DefaultMaxConns.
	MaxConns int
	// FS is the file system the node's Pebble DB runs on; nil is the OS
	// file system. Tests inject disk faults here (package diskfault). See
	// raftstore.Options.FS.
	FS vfs.FS
	// Fatal is called when the storage hits an error it cannot go on
	// after, such as a failed WAL write; it must not return. Nil exits the
	// process. See raftstore.Options.Fatal.
	Fatal func(msg string)
	// DiskHealth configures the disk-stall detector (diskhealth.go): a
	// node whose synced writes stall gives up the leadership of its shards.
	DiskHealth DiskHealth
	// PurgeInterval is how often each shard leader sweeps for expired
	// links to purge (purge.go); default DefaultPurgeInterval, negative
	// turns the sweep off. PurgeGrace is how long after its expiry a link
	// is purged (default DefaultPurgeGrace; negative means at once), and
	// PurgeScanLimit bounds the records a shard's sweep looks at per
	// interval (default DefaultPurgeScanLimit).
	PurgeInterval  time.Duration
	PurgeGrace     time.Duration
	PurgeScanLimit int
}

func (o *Options) fill() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.PurgeInterval == 0 {
		o.PurgeInterval = DefaultPurgeInterval
	}
	switch {
	case o.PurgeGrace == 0:
		o.PurgeGrace = DefaultPurgeGrace
	case o.PurgeGrace < 0:
		o.PurgeGrace = 0
	}
	if o.PurgeScanLimit <= 0 {
		o.PurgeScanLimit = DefaultPurgeScanLimit
	}
}

// ErrUnknownNode is returned (wrapped) by New for a node ID the cluster
// file does not list.
var ErrUnknownNode = errors.New("node: unknown node ID")

// Node is one running storage node.
type Node struct {
	cfg     *config.Config
	self    config.Node
	opts    Options
	logger  *slog.Logger
	ring    *ring.Ring
	machine *linkstore.Machine
	secret  []byte
	// feeds are the change rings of the open groups (feed.go).
	feeds *feedHub

	mux   *raftmux.Mux
	store *raftstore.Store
	// hosted are the shards the node hosts a replica of; fixed after New.
	hosted map[uint64]config.Shard
	// replicas are the replicas whose RPC the node serves, by shard:
	// copy-on-write, so the RPC path reads it without a lock; only serve
	// (under servedMu) replaces it. A replica that is still joining its
	// group (join.go) is not in it.
	replicas    atomic.Pointer[map[uint64]*replica]
	servedMu    sync.Mutex
	stopServing bool // set by stopBatchers: serve refuses from then on
	// peers calls the membership RPCs of the other nodes (join.go).
	peers *shardrpc.Client
	// joinWG counts the goroutines that join groups and promote this
	// node's replicas (join.go); they stop when ctx is cancelled.
	joinWG sync.WaitGroup
	// disk is the disk-stall detector and the fence on the node's Raft
	// traffic (diskhealth.go, fence.go).
	disk nodeDisk
	// sweeper purges expired links (purge.go); nil with the sweep off.
	sweeper *sweeper

	server    *fasthttp.Server
	rpcAddr   net.Addr
	serveDone chan error

	// ctx is the parent of every request's context; Close cancels it so
	// that requests waiting on Raft give up.
	ctx    context.Context
	cancel context.CancelFunc

	closeOnce sync.Once
	closeErr  error
}

// New starts the node nodeID of the cluster cfg: its Raft groups and its
// internal RPC. cfg must be valid (config.Load validates it). On error
// everything started so far is stopped again.
func New(cfg *config.Config, nodeID string, opts Options) (*Node, error) {
	opts.fill()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	self, ok := cfg.Node(nodeID)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownNode, nodeID)
	}
	rg, err := cfg.Ring()
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", nodeID, err)
	}
	logger := opts.Logger
	n := &Node{
		cfg:    cfg,
		self:   self,
		opts:   opts,
		logger: logger,
		ring:   rg,
		hosted: make(map[uint64]config.Shard),
	}
	empty := map[uint64]*replica{}
	n.replicas.Store(&empty)
	for _, sh := range cfg.ShardsOfNode(nodeID) {
		n.hosted[sh.ID] = sh
	}
	if cfg.Cluster.RPCSecret != "" {
		n.secret = []byte(cfg.Cluster.RPCSecret)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())

	if err := n.start(); err != nil {
		n.cancel()
		n.joinWG.Wait()
		if cerr := n.stopStorage(); cerr != nil {
			logger.Error("stop after a failed start", "err", cerr)
		}
		return nil, fmt.Errorf("node %s: %w", nodeID, err)
	}
	return n, nil
}

// start runs steps 1 to 5 of the package documentation. On error the
// caller stops what was started.
func (n *Node) start() error {
	hl := newHCLog(n.logger)
	mux, err := raftmux.Listen(n.self.RaftAddr, raftmux.WithLogger(hl.Named("raftmux")))
	if err != nil {
		return err
	}
	n.mux = mux
	n.disk.fence = newFence(mux)

	store, err := raftstore.Open(raftstore.Options{
		NodeID:  n.self.ID,
		Dir:     n.self.DataDir,
		Network: n.disk.fence,
		Logger:  hl,
		Raft:    n.opts.Raft,
		FS:      n.opts.FS,
		Fatal:   n.opts.Fatal,
	})
	if err != nil {
		return err
	}
	n.store = store

	// Groups with Raft state here resume at once, as they always did; the
	// others are joined (join.go) once the RPC serves, since deciding how
	// takes the answers of the other replicas, which ask this node too.
	n.machine = linkstore.New(n.ring)
	n.feeds = newFeedHub()
	n.peers = shardrpc.NewClient(n.cfg, shardrpc.ClientOptions{
		Timeout:        joinCallTimeout,
		AttemptTimeout: joinAttemptTimeout,
		DialTimeout:    joinAttemptTimeout,
		// Used only while joining: idle connections close soon, and
		// fasthttp's cleaner goroutine ends within this after Close.
		IdleConnTimeout: joinIdleConnTimeout,
	})
	var joining []config.Shard
	for _, sh := range n.cfg.ShardsOfNode(n.self.ID) {
		p, err := store.Probe(sh.ID)
		if err != nil {
			return fmt.Errorf("shard %d: %w", sh.ID, err)
		}
		if !p.HasState {
			joining = append(joining, sh)
			continue
		}
		g, err := n.openGroup(sh, false)
		if err != nil {
			return fmt.Errorf("open shard %d: %w", sh.ID, err)
		}
		n.serve(sh.ID, g)
	}
	n.startDiskWatch()
	n.startSweeper()

	ln, err := net.Listen("tcp", n.self.RPCAddr)
	if err != nil {
		return fmt.Errorf("listen for RPC on %s: %w", n.self.RPCAddr, err)
	}
	n.rpcAddr = ln.Addr()
	n.server = &fasthttp.Server{
		Handler:               n.handle,
		Name:                  "",
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		NoDefaultDate:         true, // no Date header: nobody reads it, and it costs a process-wide goroutine
		Concurrency:           n.opts.MaxConns,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
		IdleTimeout:           60 * time.Second,
		MaxRequestBodySize:    maxBodySize,
		ReadBufferSize:        8 << 10,
		ReduceMemoryUsage:     false,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{n.logger},
	}
	// Serve registers the listener with the server before it first
	// accepts; wait for that, so that a Close right after New finds the
	// listener to close (Shutdown ignores a server that has none yet).
	rl := &readyListener{Listener: ln, ready: make(chan struct{})}
	n.serveDone = make(chan error, 1)
	go func() { n.serveDone <- n.server.Serve(rl) }()
	select {
	case <-rl.ready:
	case err := <-n.serveDone:
		n.serveDone <- err // for close
		return fmt.Errorf("serve RPC on %s: %w", n.rpcAddr, err)
	}
	n.logger.Info("node serving", "raft_addr", mux.Addr().String(), "rpc_addr", n.rpcAddr.String(), "shards", len(n.hosted), "joining", len(joining))
	n.startJoining(joining)
	return nil
}

// ID returns the node's ID.
func (n *Node) ID() string { return n.self.ID }

// RPCAddr returns the address the internal RPC listens on.
func (n *Node) RPCAddr() string { return n.rpcAddr.String() }

// RaftAddr returns the address of the node's Raft listener.
func (n *Node) RaftAddr() string { return n.mux.Addr().String() }

// Shards returns the IDs of the shards the node hosts a replica of.
func (n *Node) Shards() []uint64 {
	ids := make([]uint64, 0, len(n.hosted))
	for _, s := range n.cfg.ShardsOfNode(n.self.ID) {
		ids = append(ids, s.ID)
	}
	return ids
}

// Group returns the node's replica of shard once its Raft instance runs,
// or nil (it hosts none, it is stopped, or it has not decided yet how to
// join its group: see Serving). It is meant for tests and administration.
func (n *Node) Group(shard uint64) *raftstore.Group {
	if r := n.served()[shard]; r != nil {
		return r.g
	}
	if _, ok := n.hosted[shard]; !ok || n.store == nil {
		return nil
	}
	g, err := n.store.Group(shard)
	if err != nil {
		return nil
	}
	return g
}

// Serving reports whether the node serves the RPC of its replica of
// shard: always after a restart on its data; after joining the group
// (join.go) only once the replica caught up.
func (n *Node) Serving(shard uint64) bool { return n.served()[shard] != nil }

// Handler returns the internal RPC handler, the one the node serves on
// its rpc_addr, e.g. to call it in-process in tests.
func (n *Node) Handler() fasthttp.RequestHandler { return n.handle }

// Store returns the node's raftstore.Store, for tests and administration.
func (n *Node) Store() *raftstore.Store { return n.store }

// Close stops the node and waits for everything it started. It is
// idempotent; later calls return the first call's result.
//
// The order matters:
//
//  1. The RPC server stops accepting and waits (ShutdownTimeout) for the
//     requests in flight, which use the groups: no handler may run against
//     a closed store.
//  2. Groups this node leads hand leadership to another replica
//     (bounded by ShutdownTimeout), so that the shard is writable again at
//     once rather than after an election timeout.
//  3. The store shuts down every Raft group, then closes Pebble. Raft's
//     transports still need the mux while they stop: a group shutting down
//     may still send its last messages.
//  4. The mux closes last, with no transport left on it.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closeErr = n.close()
	})
	return n.closeErr
}

func (n *Node) close() error {
	var errs []error
	// The change feed's long polls answer at once instead of holding up
	// the RPC's shutdown.
	n.feeds.close()
	// 1. Stop the RPC. Requests still waiting after ShutdownTimeout are
	// released by the cancelled context and the store's shutdown below.
	sctx, scancel := context.WithTimeout(context.Background(), n.opts.ShutdownTimeout)
	err := n.server.ShutdownWithContext(sctx)
	scancel()
	drained := err == nil
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		errs = append(errs, fmt.Errorf("stop RPC: %w", err))
	}
	n.cancel()
	if err := <-n.serveDone; err != nil {
		errs = append(errs, fmt.Errorf("serve RPC: %w", err))
	}
	// The joiners end with the cancelled context (join.go).
	n.joinWG.Wait()

	// 2. Hand off leadership.
	n.handOff()

	// 3 and 4.
	if err := n.stopStorage(); err != nil {
		errs = append(errs, err)
	}

	if !drained {
		// Requests that outlived the first wait fail fast now that the
		// store is closed; wait for their connections to end.
		sctx, scancel := context.WithTimeout(context.Background(), n.opts.ShutdownTimeout)
		if err := n.server.ShutdownWithContext(sctx); err != nil {
			errs = append(errs, fmt.Errorf("stop RPC: requests still running after the store closed: %w", err))
		}
		scancel()
	}
	n.logger.Info("node stopped")
	return errors.Join(errs...)
}

// handOff transfers the leadership of every group this node leads, in
// parallel, each bounded by raft (an election timeout) and all by
// ShutdownTimeout. A failure only costs an election.
func (n *Node) handOff() {
	var wg sync.WaitGroup
	done := make(chan struct{})
	for id, r := range n.served() {
		g := r.g
		if !g.IsLeader() || !hasOtherVoter(g) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.TransferLeadership(); err != nil {
				n.logger.Warn("leadership hand-off failed", "shard", id, "err", err)
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(n.opts.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		n.logger.Warn("leadership hand-off still running; shutting down anyway")
		// The store's shutdown ends the transfers; wait for them there.
		_ = n.stopStorage()
		<-done
	}
}

// hasOtherVoter reports whether the group has a voter besides this node,
// to which leadership could move.
func hasOtherVoter(g *raftstore.Group) bool {
	f := g.Raft().GetConfiguration()
	if f.Error() != nil {
		return false
	}
	voters := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	return voters > 1
}

// stopStorage closes the store (every group, then Pebble) and then the mux;
// either may be nil after a failed start. It is safe to call twice.
func (n *Node) stopStorage() error {
	n.stopSweeper()
	n.stopBatchers()
	n.stopDiskWatch()
	var errs []error
	if n.store != nil {
		if err := n.store.Close(); err != nil && !errors.Is(err, raftstore.ErrClosed) {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	n.waitDiskTransfers()
	if n.mux != nil {
		if err := n.mux.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft mux: %w", err))
		}
	}
	if n.peers != nil {
		n.peers.Close()
	}
	return errors.Join(errs...)
}

// readyListener closes ready when Accept is first called.
type readyListener struct {
	net.Listener
	once  sync.Once
	ready chan struct{}
}

func (l *readyListener) Accept() (net.Conn, error) {
	l.once.Do(func() { close(l.ready) })
	return l.Listener.Accept()
}

// authorized reports whether the request carries the cluster's RPC secret
// (always true when the cluster has none). The comparison takes the same
// time wherever the first difference is.
func (n *Node) authorized(got []byte) bool {
	if n.secret == nil {
		return true
	}
	return subtle.ConstantTimeCompare(got, n.secret) == 1
}
