package proctest

import (
	"context"
	"fmt"
	"time"

	"github.com/linkraft/linkraft/shardrpc"
)

// IsVoter reports whether node id is a voter of shard's Raft group, as the
// shard's leader's configuration says. It asks the leader with a promote
// request that carries no target, which changes nothing: the leader
// answers that id is a voter, or gives a target for a non-voter, or
// rejects a node that is no member (an error). A node that leads the shard
// is a voter.
func (c *Cluster) IsVoter(id string, shard uint64) (bool, error) {
	leader, err := c.Status(shard)
	if err != nil {
		return false, err
	}
	if leader.NodeID == id && leader.State == "Leader" {
		return true, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := c.client.Promote(ctx, shard, shardrpc.PromoteRequest{NodeID: id})
	if err != nil {
		return false, err
	}
	return res.Voter, nil
}

// WaitVoter waits until node id is a voter of every shard's group (a node
// that rejoined without its data is promoted once it caught up), and
// returns how long that took.
func (c *Cluster) WaitVoter(id string, timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for _, s := range c.Shards() {
		Eventually(c.t, time.Until(deadline), fmt.Sprintf("%s to be a voter of shard %d", id, s), func() error {
			voter, err := c.IsVoter(id, s)
			switch {
			case err != nil:
				return err
			case !voter:
				return fmt.Errorf("%s is a non-voter of shard %d", id, s)
			}
			return nil
		})
	}
	return time.Since(start)
}
