package config

import (
	"fmt"
	"slices"

	"github.com/linkraft/linkraft/ring"
	"github.com/linkraft/linkraft/shortcode"
)

// Node returns the node with ID id.
func (c *Config) Node(id string) (Node, bool) {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n, true
		}
	}
	return Node{}, false
}

// NodeByRaftAddr returns the node whose raft_addr is addr, e.g. to turn the
// Raft address of a shard leader into the node's RPC address.
func (c *Config) NodeByRaftAddr(addr string) (Node, bool) {
	for _, n := range c.Nodes {
		if n.RaftAddr == addr {
			return n, true
		}
	}
	return Node{}, false
}

// Router returns the router with ID id.
func (c *Config) Router(id string) (Router, bool) {
	for _, r := range c.Routers {
		if r.ID == id {
			return r, true
		}
	}
	return Router{}, false
}

// Shard returns the shard with ID id.
func (c *Config) Shard(id uint64) (Shard, bool) {
	for _, s := range c.Shards {
		if s.ID == id {
			return s, true
		}
	}
	return Shard{}, false
}

// ShardIDs returns the IDs of every shard, ascending.
func (c *Config) ShardIDs() []uint64 {
	ids := make([]uint64, len(c.Shards))
	for i, s := range c.Shards {
		ids[i] = s.ID
	}
	slices.Sort(ids)
	return ids
}

// ShardsOfNode returns the shards that have a replica on node id, by
// ascending shard ID.
func (c *Config) ShardsOfNode(id string) []Shard {
	var out []Shard
	for _, s := range c.Shards {
		if slices.Contains(s.Replicas, id) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Shard) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// ReplicaNodes returns the nodes that hold a replica of shard id, in the
// order of the shard's replicas; nil for an unknown shard.
func (c *Config) ReplicaNodes(id uint64) []Node {
	s, ok := c.Shard(id)
	if !ok {
		return nil
	}
	out := make([]Node, 0, len(s.Replicas))
	for _, r := range s.Replicas {
		if n, ok := c.Node(r); ok {
			out = append(out, n)
		}
	}
	return out
}

// Codec returns the code codec of the cluster: its code length, partitions
// and code secret.
func (c *Config) Codec() (*shortcode.Codec, error) {
	codec, err := shortcode.New(c.Cluster.CodeLength, c.Cluster.Partitions, []byte(c.Cluster.CodeSecret))
	if err != nil {
		return nil, fmt.Errorf("config: codec: %w", err)
	}
	return codec, nil
}

// Ring returns the placement of the cluster: its shards over its
// partitions, with the cluster's codec.
func (c *Config) Ring() (*ring.Ring, error) {
	codec, err := c.Codec()
	if err != nil {
		return nil, err
	}
	r, err := ring.New(c.ShardIDs(), c.Cluster.Partitions, codec)
	if err != nil {
		return nil, fmt.Errorf("config: ring: %w", err)
	}
	return r, nil
}

// CacheEntries returns the router's cache size: CacheSize, or DefaultCacheSize
// when unset. 0 disables the cache.
func (r Router) CacheEntries() int {
	if r.CacheSize == nil {
		return DefaultCacheSize
	}
	return *r.CacheSize
}
