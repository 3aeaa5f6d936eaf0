package raftstore

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

// Membership changes, run at the group's leader. Each returns once the
// configuration entry is committed (a *NotLeaderError on a follower or when
// leadership is lost meanwhile; ctx's error when ctx ends first, the
// outcome then being unknown). Each is idempotent: the change of a server
// already in the wanted state still commits a configuration entry, which
// changes nothing.

// Configuration returns the group's latest configuration as this replica
// knows it (possibly not committed yet) and the index of its entry.
func (g *Group) Configuration() (raft.Configuration, uint64, error) {
	if g.closed.Load() {
		return raft.Configuration{}, 0, ErrClosed
	}
	f := g.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Configuration{}, 0, g.mapErr("get configuration", err)
	}
	return f.Configuration(), f.Index(), nil
}

// DemoteVoter takes the vote away from server id, which stays a member
// that receives the log (a non-voter).
func (g *Group) DemoteVoter(ctx context.Context, id string) error {
	return g.configChange(ctx, "demote "+id, func() raft.IndexFuture {
		return g.raft.DemoteVoter(raft.ServerID(id), 0, enqueueTimeout(ctx))
	})
}

// AddNonvoter adds server id at Raft address addr as a non-voter, or
// updates its address if it is a member already (a voter stays a voter).
func (g *Group) AddNonvoter(ctx context.Context, id, addr string) error {
	return g.configChange(ctx, "add non-voter "+id, func() raft.IndexFuture {
		return g.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, enqueueTimeout(ctx))
	})
}

// AddVoter makes server id at Raft address addr a voter, adding it or
// promoting it from non-voter.
func (g *Group) AddVoter(ctx context.Context, id, addr string) error {
	return g.configChange(ctx, "add voter "+id, func() raft.IndexFuture {
		return g.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, enqueueTimeout(ctx))
	})
}

func (g *Group) configChange(ctx context.Context, op string, change func() raft.IndexFuture) error {
	if g.closed.Load() {
		return ErrClosed
	}
	if g.raft.State() != raft.Leader {
		return g.notLeader()
	}
	if err := g.await(ctx, change()); err != nil {
		return g.mapErr(op, err)
	}
	return nil
}

// enqueueTimeout bounds how long raft may take to accept a configuration
// change: what is left of ctx, or raft's wait without a bound.
func enqueueTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 0
}
