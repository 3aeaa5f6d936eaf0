package proctest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/linkraft/linkraft/internal/testutil"
	"github.com/linkraft/linkraft/shardrpc"
)

// Eventually polls cond every 50 ms until it returns nil, and fails the
// test with cond's last error if timeout passes first.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	testutil.Eventually(t, timeout, what, cond)
}

// WaitReady waits up to 30 s until router id's /readyz answers 200: every
// shard has a leader the router reaches.
func (c *Cluster) WaitReady(id string) {
	c.t.Helper()
	url := c.URL(id) + "/readyz"
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	Eventually(c.t, 30*time.Second, url, func() error {
		if p := c.Process(id); p != nil && p.Exited() {
			return fmt.Errorf("router %s exited: %v", id, p.err)
		}
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		return nil
	})
}

// NodeStatus asks node id itself for its replica of shard.
func (c *Cluster) NodeStatus(id string, shard uint64) (shardrpc.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.client.NodeStatus(ctx, id, shard)
}

// Status is shard's status at its leader, as the replicas point to it.
func (c *Cluster) Status(shard uint64) (shardrpc.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.client.Status(ctx, shard)
}

// WaitNodesUp waits up to 30 s until every node answers a status request
// for every shard itself: a router is ready with two nodes of three, and a
// test must not start with one missing.
func (c *Cluster) WaitNodesUp() {
	c.t.Helper()
	for _, id := range c.nodes {
		for _, s := range c.Shards() {
			Eventually(c.t, 30*time.Second, fmt.Sprintf("node %s to answer for shard %d", id, s), func() error {
				if p := c.Process(id); p != nil && p.Exited() {
					c.t.Fatalf("node %s exited at start: %v", id, p.err)
				}
				_, err := c.NodeStatus(id, s)
				return err
			})
		}
	}
}

// Leader is the node leading shard as the replicas report it now, "" if
// none is known.
func (c *Cluster) Leader(shard uint64) string {
	st, err := c.Status(shard)
	if err != nil {
		return ""
	}
	return st.LeaderID
}

// Leaders is the leader of every shard as its replicas report it now.
func (c *Cluster) Leaders() map[uint64]string {
	out := make(map[uint64]string)
	for _, s := range c.Shards() {
		out[s] = c.Leader(s)
	}
	return out
}

// WaitLeader waits up to 15 s until a running node says it leads shard,
// and returns it.
func (c *Cluster) WaitLeader(shard uint64) string {
	c.t.Helper()
	return c.WaitNewLeader(shard, "", 15*time.Second)
}

// WaitNewLeader waits until a node other than old says it leads shard,
// and returns it.
func (c *Cluster) WaitNewLeader(shard uint64, old string, timeout time.Duration) string {
	c.t.Helper()
	var leader string
	Eventually(c.t, timeout, fmt.Sprintf("a leader of shard %d other than %q", shard, old), func() error {
		for _, id := range c.nodes {
			if id == old {
				continue
			}
			if p := c.Process(id); p == nil || p.Exited() {
				continue
			}
			if st, err := c.NodeStatus(id, shard); err == nil && st.State == "Leader" {
				leader = id
				return nil
			}
		}
		return errors.New("no running node leads it")
	})
	return leader
}

// WaitCaughtUp waits until node id's replica of every shard has applied at
// least what the shard's leader had applied when the wait began, and
// returns how long that took.
func (c *Cluster) WaitCaughtUp(id string, timeout time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for _, s := range c.Shards() {
		var target uint64
		Eventually(c.t, time.Until(deadline), fmt.Sprintf("%s to catch up on shard %d", id, s), func() error {
			if target == 0 {
				st, err := c.Status(s)
				if err != nil {
					return err
				}
				target = st.AppliedIndex
			}
			st, err := c.NodeStatus(id, s)
			if err != nil {
				return err
			}
			if st.AppliedIndex < target {
				return fmt.Errorf("applied %d of %d", st.AppliedIndex, target)
			}
			return nil
		})
	}
	return time.Since(start)
}

// WaitLogsInSync waits until, for every shard, a node other than down
// leads it and every node other than down holds the leader's whole log
// (its last log index reaches the leader's, in the leader's term).
func (c *Cluster) WaitLogsInSync(down string, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for _, s := range c.Shards() {
		Eventually(c.t, time.Until(deadline), fmt.Sprintf("the nodes other than %q in sync on shard %d", down, s), func() error {
			return c.logsInSync(s, down)
		})
	}
}

func (c *Cluster) logsInSync(shard uint64, down string) error {
	leader, err := c.Status(shard)
	if err != nil {
		return err
	}
	if leader.NodeID == down {
		return fmt.Errorf("%s still leads", down)
	}
	for _, id := range c.nodes {
		if id == down || id == leader.NodeID {
			continue
		}
		st, err := c.NodeStatus(id, shard)
		if err != nil {
			return err
		}
		if st.LastIndex < leader.LastIndex || st.Term != leader.Term {
			return fmt.Errorf("%s has log %d in term %d, leader %s has %d in term %d", id, st.LastIndex, st.Term, leader.NodeID, leader.LastIndex, leader.Term)
		}
	}
	return nil
}
