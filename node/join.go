package node

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shardrpc"
)

// Joining a group. See the package documentation ("Joining a group") for
// why a replica without Raft state must not simply bootstrap.
const (
	// joinCallTimeout bounds one membership call (with its retries over
	// the replicas); joinAttemptTimeout one request to one node.
	joinCallTimeout    = 3 * time.Second
	joinAttemptTimeout = time.Second
	// joinIdleConnTimeout closes the idle connections to other nodes.
	joinIdleConnTimeout = 250 * time.Millisecond
	// joinBackoffMin and joinBackoffMax shape the pause between rounds of
	// a joiner that could not go on: doubled per round, with jitter.
	joinBackoffMin = 25 * time.Millisecond
	joinBackoffMax = 2 * time.Second
	// joinLogEvery bounds how often a joiner that keeps waiting logs why.
	joinLogEvery = 10 * time.Second
	// joinFirstRoundWait bounds how long New waits for the first round of
	// every joiner (see startJoining).
	joinFirstRoundWait = 5 * time.Second
	// catchUpPoll is how often a joining replica checks its applied index.
	catchUpPoll = 20 * time.Millisecond
)

// replica is a served replica: its group and its create batcher (nil with
// batching off).
type replica struct {
	g *raftstore.Group
	b *batcher
}

// served returns the replicas the node serves, by shard. Do not modify it.
func (n *Node) served() map[uint64]*replica { return *n.replicas.Load() }

// serve starts serving the RPC of shard's replica g: it starts its create
// batcher and publishes it. After stopBatchers (Close) it does nothing.
func (n *Node) serve(shard uint64, g *raftstore.Group) {
	n.servedMu.Lock()
	defer n.servedMu.Unlock()
	if n.stopServing {
		return
	}
	old := n.served()
	next := make(map[uint64]*replica, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[shard] = &replica{g: g, b: n.startBatcher(shard, g)}
	n.replicas.Store(&next)
}

// openGroup opens the node's replica of sh: with join, without
// bootstrapping it (the leader adds it); else bootstrapped with the
// shard's replicas as voters when it has no Raft state, resumed when it
// has.
func (n *Node) openGroup(sh config.Shard, join bool) (*raftstore.Group, error) {
	peers := make([]raft.Server, 0, len(sh.Replicas))
	for _, rn := range n.cfg.ReplicaNodes(sh.ID) {
		peers = append(peers, raft.Server{
			Suffrage: raft.Voter,
			ID:       raft.ServerID(rn.ID),
			Address:  raft.ServerAddress(rn.RaftAddr),
		})
	}
	m, ring := n.feeds.machine(n.machine)
	g, err := n.store.OpenGroup(raftstore.GroupConfig{ID: sh.ID, Peers: peers, Machine: m, Join: join})
	if err != nil {
		return nil, err
	}
	n.feeds.set(sh.ID, g, ring)
	return g, nil
}

// startJoining starts a joiner for every shard the node hosts without
// Raft state, and promoters for the replicas it resumed as non-voters.
// It waits (at most joinFirstRoundWait) for each joiner's first round,
// which ends when its group runs or when the other replicas cannot tell
// yet: when they answer and a leader admits the node, New returns with
// every group running, as it did before joining existed; when they do not
// (a fresh cluster whose other nodes are not up yet), it returns and the
// joiners go on.
func (n *Node) startJoining(joining []config.Shard) {
	for id, r := range n.served() {
		if !n.isVoter(r.g) {
			sh := n.hosted[id]
			n.joinWG.Add(1)
			go func() {
				defer n.joinWG.Done()
				n.logger.Info("this replica is a non-voter of its group: asking the leader to promote it once it caught up", "shard", id)
				n.promote(sh, r.g, 0)
			}()
		}
	}
	firsts := make([]chan struct{}, 0, len(joining))
	for _, sh := range joining {
		first := make(chan struct{})
		firsts = append(firsts, first)
		n.joinWG.Add(1)
		go func() {
			defer n.joinWG.Done()
			n.join(sh, sync.OnceFunc(func() { close(first) }))
		}()
	}
	t := time.NewTimer(joinFirstRoundWait)
	defer t.Stop()
	for _, first := range firsts {
		select {
		case <-first:
		case <-t.C:
			return
		}
	}
}

// isVoter reports whether this node is a voter in g's latest
// configuration as its replica knows it.
func (n *Node) isVoter(g *raftstore.Group) bool {
	c, _, err := g.Configuration()
	if err != nil {
		return true // closed: nothing to do
	}
	for _, s := range c.Servers {
		if string(s.ID) == n.self.ID {
			return s.Suffrage == raft.Voter
		}
	}
	return false
}

// joinMode is a joiner's decision.
type joinMode int

const (
	undecided joinMode = iota
	bootstrapGroup
	rejoinGroup
)

// join brings up the node's replica of sh, which has no Raft state here:
//
//  1. ask the other replicas what they hold of the group (decide), until
//     that decides: bootstrap a new group, or rejoin an existing one;
//  2. bootstrap: open the group bootstrapped, as a fresh cluster always
//     did, and serve it;
//  3. rejoin: have the leader make this node a non-voter (a committed
//     configuration in which its forgotten vote no longer counts), only
//     then start Raft without bootstrapping, wait until the replica has
//     applied what the leader had committed, serve it, and have the
//     leader promote it to voter.
//
// firstRound is called when the first round ends (see startJoining). join
// returns when the node's context ends.
func (n *Node) join(sh config.Shard, firstRound func()) {
	defer firstRound()
	log := n.logger.With("shard", sh.ID)
	bo := newBackoff()
	var mode joinMode
	var lastLog time.Time
	for mode == undecided {
		var why string
		mode, why = n.decide(sh)
		if mode != undecided {
			break
		}
		if time.Since(lastLog) >= joinLogEvery {
			log.Warn("no Raft state for this shard; waiting for its other replicas to answer before bootstrapping or rejoining (the first start of a shard with 3 replicas needs all of them up: see why)", "why", why)
			lastLog = time.Now()
		}
		firstRound()
		if !bo.wait(n.ctx) {
			return
		}
	}
	if mode == bootstrapGroup {
		log.Info("bootstrapping the shard's group: enough of its other replicas hold no state for it that none can hide a committed entry")
		g := n.openRetrying(sh, false, bo, firstRound)
		if g != nil {
			n.serve(sh.ID, g)
		}
		return
	}

	log.Warn("no Raft state for this shard while another replica holds its log (a lost or new data directory): rejoining as a non-voter")
	var target uint64
	for {
		ctx, cancel := context.WithTimeout(n.ctx, joinCallTimeout)
		res, err := n.peers.Join(ctx, sh.ID, shardrpc.JoinRequest{NodeID: n.self.ID})
		cancel()
		if err == nil {
			target = res.CommitIndex
			break
		}
		if n.ctx.Err() != nil {
			return
		}
		if time.Since(lastLog) >= joinLogEvery {
			log.Warn("the shard's leader has not made this node a non-voter yet; retrying", "err", err)
			lastLog = time.Now()
		}
		// The other replicas answered: a leader is expected soon, so New
		// keeps waiting (up to joinFirstRoundWait) for the group to run.
		if !bo.wait(n.ctx) {
			return
		}
	}
	bo.reset()
	g := n.openRetrying(sh, true, bo, firstRound)
	if g == nil {
		return
	}
	firstRound()
	log.Info("rejoining as a non-voter: catching up", "target", target)
	if !n.waitApplied(g, target) {
		return
	}
	n.serve(sh.ID, g)
	log.Info("caught up; serving the shard's replica", "applied", g.Raft().AppliedIndex())
	n.promote(sh, g, target)
}

// openRetrying opens sh's group, retrying with backoff while it fails;
// nil when the node's context ends.
func (n *Node) openRetrying(sh config.Shard, join bool, bo *backoff, firstRound func()) *raftstore.Group {
	for {
		g, err := n.openGroup(sh, join)
		if err == nil {
			return g
		}
		if errors.Is(err, raftstore.ErrClosed) || n.ctx.Err() != nil {
			return nil
		}
		n.logger.Error("open shard's group failed; retrying", "shard", sh.ID, "err", err)
		firstRound()
		if !bo.wait(n.ctx) {
			return nil
		}
	}
}

// waitApplied waits until g's Raft instance applied index target; false
// when the node's context ends first.
func (n *Node) waitApplied(g *raftstore.Group, target uint64) bool {
	t := time.NewTicker(catchUpPoll)
	defer t.Stop()
	for g.Raft().AppliedIndex() < target {
		select {
		case <-n.ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// promote asks the shard's leader to make this node's caught-up replica a
// voter, until it is one or the node's context ends. target is a commit
// index a leader gave (0: ask it for one).
func (n *Node) promote(sh config.Shard, g *raftstore.Group, target uint64) {
	log := n.logger.With("shard", sh.ID)
	bo := newBackoff()
	var lastLog time.Time
	for {
		if !n.waitApplied(g, target) {
			return
		}
		ctx, cancel := context.WithTimeout(n.ctx, joinCallTimeout)
		res, err := n.peers.Promote(ctx, sh.ID, shardrpc.PromoteRequest{NodeID: n.self.ID, AppliedIndex: g.Raft().AppliedIndex(), Target: target})
		cancel()
		switch {
		case err == nil && res.Voter:
			log.Info("this replica is a voter of its group again")
			return
		case err == nil:
			target = res.Target
			continue
		case n.ctx.Err() != nil:
			return
		}
		if time.Since(lastLog) >= joinLogEvery {
			log.Warn("the shard's leader has not promoted this replica to voter yet; retrying", "err", err)
			lastLog = time.Now()
		}
		if !bo.wait(n.ctx) {
			return
		}
	}
}

// decide asks the shard's other replicas what they hold of its group and
// applies the bootstrap rule to their answers (decideJoin): rejoin,
// bootstrap, or undecided with why.
func (n *Node) decide(sh config.Shard) (joinMode, string) {
	replicas := n.cfg.ReplicaNodes(sh.ID)
	answers := make(chan peerAnswer, len(replicas))
	asked := 0
	for _, r := range replicas {
		if r.ID == n.self.ID {
			continue
		}
		asked++
		go func() {
			ctx, cancel := context.WithTimeout(n.ctx, joinAttemptTimeout)
			defer cancel()
			st, err := n.peers.GroupState(ctx, r.ID, sh.ID, shardrpc.GroupStateRequest{NodeID: n.self.ID})
			answers <- peerAnswer{id: r.ID, state: st.State, err: err}
		}()
	}
	got := make([]peerAnswer, 0, asked)
	for range asked {
		got = append(got, <-answers)
	}
	return decideJoin(len(replicas), got)
}

// backoff is a capped, jittered exponential pause.
type backoff struct{ next time.Duration }

func newBackoff() *backoff { return &backoff{next: joinBackoffMin} }

func (b *backoff) reset() { b.next = joinBackoffMin }

// wait pauses; false when ctx ends first.
func (b *backoff) wait(ctx context.Context) bool {
	d := b.next/2 + rand.N(b.next/2+1)
	b.next = min(2*b.next, joinBackoffMax)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
