package shardrpc

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/valyala/fasthttp"
)

// The membership RPCs: how a storage node that has no Raft state for a
// shard learns whether the shard's group already exists, and, if it does,
// rejoins it through a membership change instead of bootstrapping it again
// (package node, "Joining a group"). They take the RPC secret like every
// other call, and name only nodes that cluster.yaml lists as replicas of the
// shard.
const (
	// PathGroupState asks one node what it holds of a shard's group
	// (GroupStateRequest, GroupState). A node answers it even while its
	// own replica of the shard is not running.
	PathGroupState = "/rpc/v1/group/state"
	// PathGroupJoin asks the shard's leader to make a replica a non-voter
	// (JoinRequest, JoinResult): it takes away the vote the replica had
	// before it lost its data, or adds it if it was never a member.
	PathGroupJoin = "/rpc/v1/group/join"
	// PathGroupPromote asks the shard's leader to make a caught-up
	// non-voter a voter again (PromoteRequest, PromoteResult).
	PathGroupPromote = "/rpc/v1/group/promote"
)

// Replica states in GroupState.State.
const (
	// GroupEmpty: the node has no Raft state for the group.
	GroupEmpty = "empty"
	// GroupBootstrapped: the node holds only the bootstrap configuration
	// entry: the group never had a leader that appended anything here.
	GroupBootstrapped = "bootstrapped"
	// GroupRunning: the node holds log entries past the bootstrap, an
	// applied state or a snapshot: the group exists and ran.
	GroupRunning = "running"
)

// GroupStateRequest asks a node about its replica of a shard's group.
type GroupStateRequest struct {
	// NodeID is the asking node, a replica of the shard (logged).
	NodeID string `json:"node_id"`
}

// GroupState is one node's answer about its replica of a shard's group.
type GroupState struct {
	Shard  uint64 `json:"shard"`
	NodeID string `json:"node_id"`
	// State is GroupEmpty, GroupBootstrapped or GroupRunning.
	State string `json:"state"`
	// Open is whether the node's replica is running (a joining replica
	// runs before it serves).
	Open bool `json:"open"`
	// LastIndex and Term are the replica's stored last log index and
	// current term.
	LastIndex uint64 `json:"last_index"`
	Term      uint64 `json:"term"`
	// LeaderID and LeaderRPC name the leader the replica knows, if any.
	LeaderID  string `json:"leader_id,omitempty"`
	LeaderRPC string `json:"leader_rpc,omitempty"`
}

// JoinRequest asks the shard's leader to make NodeID a non-voter.
type JoinRequest struct {
	NodeID string `json:"node_id"`
}

// JoinResult answers a join: NodeID is a non-voter in a committed
// configuration, and CommitIndex is the leader's commit index then. The
// joining replica serves once it has applied up to it.
type JoinResult struct {
	CommitIndex uint64 `json:"commit_index"`
}

// PromoteRequest asks the shard's leader to make the non-voter NodeID a
// voter. Target is the commit index a leader gave the node (JoinResult or an
// earlier PromoteResult), AppliedIndex the Raft index the node has applied.
type PromoteRequest struct {
	NodeID       string `json:"node_id"`
	AppliedIndex uint64 `json:"applied_index"`
	Target       uint64 `json:"target"`
}

// PromoteResult answers a promote: Voter is true once NodeID is a voter in
// a committed configuration. Otherwise the node has not caught up: it must
// apply up to Target and ask again with it.
type PromoteResult struct {
	Voter  bool   `json:"voter"`
	Target uint64 `json:"target,omitempty"`
}

// GroupState asks node nodeID, once, about its replica of shard.
func (c *Client) GroupState(ctx context.Context, nodeID string, shard uint64, req GroupStateRequest) (GroupState, error) {
	s, err := c.shard(shard)
	if err != nil {
		return GroupState{}, err
	}
	n, ok := c.byID[nodeID]
	if !ok {
		return GroupState{}, fmt.Errorf("shardrpc: node %q is not in the cluster configuration: %w", nodeID, ErrBadRequest)
	}
	body, err := json.Marshal(&req)
	if err != nil {
		return GroupState{}, fmt.Errorf("shardrpc: encode group state request: %w", err)
	}
	hreq := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(hreq)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	c.prepare(hreq, s, PathGroupState)
	hreq.SetBodyRaw(body)
	var st GroupState
	if err := c.attempt(c.deadline(ctx), n, hreq, resp, &st); err != nil {
		return GroupState{}, fmt.Errorf("group state of shard %d on node %s: %w", shard, nodeID, err)
	}
	return st, nil
}

// Join asks the shard's leader, following not_leader hints, to make
// req.NodeID a non-voter. It is idempotent.
func (c *Client) Join(ctx context.Context, shard uint64, req JoinRequest) (JoinResult, error) {
	var res JoinResult
	if err := c.membershipCall(ctx, shard, PathGroupJoin, &req, &res); err != nil {
		return JoinResult{}, fmt.Errorf("join %s to shard %d: %w", req.NodeID, shard, err)
	}
	return res, nil
}

// Promote asks the shard's leader, following not_leader hints, to make the
// caught-up non-voter req.NodeID a voter. It is idempotent.
func (c *Client) Promote(ctx context.Context, shard uint64, req PromoteRequest) (PromoteResult, error) {
	var res PromoteResult
	if err := c.membershipCall(ctx, shard, PathGroupPromote, &req, &res); err != nil {
		return PromoteResult{}, fmt.Errorf("promote %s in shard %d: %w", req.NodeID, shard, err)
	}
	return res, nil
}

func (c *Client) membershipCall(ctx context.Context, shard uint64, path string, req, out any) error {
	s, err := c.shard(shard)
	if err != nil {
		return err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("shardrpc: encode %s: %w", path, err)
	}
	return c.leaderCall(ctx, s, path, body, out, nil)
}
