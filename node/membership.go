package node

import (
	"fmt"
	"slices"

	"github.com/hashicorp/raft"
	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shardrpc"
)

// The membership RPCs (shardrpc/membership.go): the group state query every
// node answers, and the join and promote calls a shard's leader runs for a
// replica that lost its data (join.go). They name nodes by ID, and accept
// only nodes cluster.yaml lists as replicas of the shard; the Raft address
// a leader adds comes from cluster.yaml, never from the request.

// replicaNode returns the config of node id if cluster.yaml lists it as a
// replica of shard.
func (n *Node) replicaNode(shard uint64, id string) (config.Node, bool) {
	sh, ok := n.hosted[shard]
	if !ok || !slices.Contains(sh.Replicas, id) {
		return config.Node{}, false
	}
	return n.cfg.Node(id)
}

// memberRequest decodes a membership request naming a node and checks
// that the node is a replica of the shard (other than this node unless
// self is allowed). It answers the error itself and returns false.
func (n *Node) memberRequest(ctx *fasthttp.RequestCtx, shard uint64, v any, id func() string, self bool) (config.Node, bool) {
	if err := decodeBody(ctx, v); err != nil {
		badRequest(ctx, err.Error())
		return config.Node{}, false
	}
	nodeID := id()
	if nodeID == "" {
		badRequest(ctx, "node_id is required")
		return config.Node{}, false
	}
	nd, ok := n.replicaNode(shard, nodeID)
	if !ok {
		badRequest(ctx, fmt.Sprintf("node %.64q is not a replica of shard %d in the cluster configuration", nodeID, shard))
		return config.Node{}, false
	}
	if !self && nodeID == n.self.ID {
		badRequest(ctx, fmt.Sprintf("node %s cannot change its own membership of shard %d", n.self.ID, shard))
		return config.Node{}, false
	}
	return nd, true
}

// groupState answers what this node holds of the shard's group. It runs
// whether or not the node's replica is open (g may be nil).
func (n *Node) groupState(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group) {
	var req shardrpc.GroupStateRequest
	if _, ok := n.memberRequest(ctx, shard, &req, func() string { return req.NodeID }, true); !ok {
		return
	}
	p, err := n.store.Probe(shard)
	if err != nil {
		n.raftError(ctx, shard, "group state", err)
		return
	}
	st := shardrpc.GroupState{Shard: shard, NodeID: n.self.ID, State: shardrpc.GroupEmpty, LastIndex: p.LastIndex, Term: p.Term}
	switch {
	case p.Ran():
		st.State = shardrpc.GroupRunning
	case p.HasState:
		st.State = shardrpc.GroupBootstrapped
	}
	if g == nil {
		g = n.Group(shard)
	}
	if g != nil {
		st.Open = true
		st.LeaderID, st.LeaderRPC = n.leaderRPC(g.Leader())
	}
	writeJSON(ctx, fasthttp.StatusOK, st)
}

// groupJoin makes the named replica a non-voter, at the leader: a voter is
// demoted, a non-voter stays, a node that is no member is added. It answers
// once the change is committed, with the commit index the joining replica
// must reach before it serves.
func (n *Node) groupJoin(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group) {
	var req shardrpc.JoinRequest
	nd, ok := n.memberRequest(ctx, shard, &req, func() string { return req.NodeID }, false)
	if !ok {
		return
	}
	if !g.IsLeader() {
		n.raftError(ctx, shard, "join", notLeader(shard, g))
		return
	}
	conf, _, err := g.Configuration()
	if err != nil {
		n.raftError(ctx, shard, "join", err)
		return
	}
	rctx, cancel := n.requestContext()
	defer cancel()
	switch suffrage(conf, nd.ID) {
	case raft.Voter:
		// Its vote goes; the voters left must still be a majority of the
		// shard's replicas, so that no two of them can lose their data
		// and decide alone.
		voters := countVoters(conf)
		if need := len(n.hosted[shard].Replicas)/2 + 1; voters-1 < need {
			writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: fmt.Sprintf("shard %d has %d voters: demoting %s would leave fewer than %d (a majority of its replicas); retry once the other joining replicas are voters again", shard, voters, nd.ID, need)})
			return
		}
		n.logger.Warn("demoting a replica that rejoins without its data to non-voter", "shard", shard, "node", nd.ID)
		err = g.DemoteVoter(rctx, nd.ID)
	case raft.Nonvoter:
		// Already done (a retry).
	default:
		n.logger.Info("adding a replica to the shard's group as a non-voter", "shard", shard, "node", nd.ID)
		err = g.AddNonvoter(rctx, nd.ID, nd.RaftAddr)
	}
	if err != nil {
		n.raftError(ctx, shard, "join", err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, shardrpc.JoinResult{CommitIndex: g.Raft().CommitIndex()})
}

// groupPromote makes the named non-voter a voter, at the leader, once it
// reports having applied the commit index a leader gave it (Target). A
// target of 0, or one it has not reached, is answered with a target (the
// commit index now) and no change.
func (n *Node) groupPromote(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group) {
	var req shardrpc.PromoteRequest
	nd, ok := n.memberRequest(ctx, shard, &req, func() string { return req.NodeID }, false)
	if !ok {
		return
	}
	if !g.IsLeader() {
		n.raftError(ctx, shard, "promote", notLeader(shard, g))
		return
	}
	conf, _, err := g.Configuration()
	if err != nil {
		n.raftError(ctx, shard, "promote", err)
		return
	}
	commit := g.Raft().CommitIndex()
	switch suffrage(conf, nd.ID) {
	case raft.Voter:
		writeJSON(ctx, fasthttp.StatusOK, shardrpc.PromoteResult{Voter: true})
		return
	case raft.Nonvoter:
	default:
		badRequest(ctx, fmt.Sprintf("node %s is not a member of shard %d's group: join it first", nd.ID, shard))
		return
	}
	// A target above this leader's commit index was not given by a leader
	// (every later leader's commit index is at least any earlier one's).
	if req.Target == 0 || req.Target > commit || req.AppliedIndex < req.Target {
		writeJSON(ctx, fasthttp.StatusOK, shardrpc.PromoteResult{Target: commit})
		return
	}
	rctx, cancel := n.requestContext()
	defer cancel()
	n.logger.Info("promoting a caught-up replica to voter", "shard", shard, "node", nd.ID, "applied", req.AppliedIndex)
	if err := g.AddVoter(rctx, nd.ID, nd.RaftAddr); err != nil {
		n.raftError(ctx, shard, "promote", err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, shardrpc.PromoteResult{Voter: true})
}

// notMember is suffrage's answer for a server that is no member.
const notMember raft.ServerSuffrage = -1

// suffrage returns id's suffrage in conf, or notMember.
func suffrage(conf raft.Configuration, id string) raft.ServerSuffrage {
	for _, s := range conf.Servers {
		if string(s.ID) == id {
			return s.Suffrage
		}
	}
	return notMember
}

func countVoters(conf raft.Configuration) int {
	v := 0
	for _, s := range conf.Servers {
		if s.Suffrage == raft.Voter {
			v++
		}
	}
	return v
}

// notLeader is the error of a membership call at a replica that does not
// lead: it names the leader the replica knows.
func notLeader(shard uint64, g *raftstore.Group) error {
	id, addr := g.Leader()
	return &raftstore.NotLeaderError{Group: shard, LeaderID: id, LeaderAddr: addr}
}
