// Package config loads and validates cluster.yaml, the topology every linkraft
// process of a cluster reads: the storage nodes, the shards and their
// replicas, the routers, and the cluster-wide code format.
//
// Every process computes the partition map and the code permutation from this
// file alone, so all processes of one cluster must read the same file (the
// same nodes, shards, partitions, code length and secret).
//
// Load reads a file strictly: an unknown or repeated key is an error that
// names the key and its line, and a duration needs a unit ("1s", "250ms").
// Settings left out take their defaults (DefaultPartitions and friends), a
// relative data_dir is relative to the directory of the file, and the two
// secrets are read from the environment variables the file names, so they
// never appear in the file. Validate checks the whole result and reports
// every problem at once, each naming its field, e.g.
//
//	shards[1].replicas[2]: unknown node "n9"
//
// Codec and Ring build the cluster's code format and placement from a
// loaded Config.
package config

import (
	"fmt"
	"time"
)

// Config is the whole cluster.yaml.
type Config struct {
	// Cluster holds the settings fixed when the cluster is created.
	Cluster Cluster `yaml:"cluster"`
	// Nodes are the storage nodes.
	Nodes []Node `yaml:"nodes"`
	// Shards are the Raft groups; each is replicated on its Replicas.
	Shards []Shard `yaml:"shards"`
	// Routers are the public HTTP front ends.
	Routers []Router `yaml:"routers"`
	// APIKeys are the keys of the public API, by hash. Empty: the API is
	// open (no key needed, links have no owner).
	APIKeys []APIKey `yaml:"api_keys"`
}

// Cluster holds cluster-wide settings. Partitions, CodeLength and the code
// secret must never change after the first link was created: they define
// which code belongs to which partition.
type Cluster struct {
	// Partitions is the number of partitions P (default 1024). Partition p
	// owns the ID range [p*R, (p+1)*R) with R = 62^CodeLength / P.
	Partitions int `yaml:"partitions"`
	// CodeLength is the length of generated codes in base62 characters
	// (default 7, range 5..10).
	CodeLength int `yaml:"code_length"`
	// RedirectStatus is the HTTP status of a redirect: 301 (default), 302,
	// 307 or 308.
	RedirectStatus int `yaml:"redirect_status"`
	// CodeSecretEnv names the environment variable that holds the key of
	// the code permutation. Unset or empty variable: a fixed development key
	// is used and codes are guessable by anyone who has the source.
	CodeSecretEnv string `yaml:"code_secret_env"`
	// RPCSecretEnv names the environment variable that holds the shared
	// secret of the internal RPC. When the variable is set and non-empty,
	// nodes refuse internal requests that do not carry it.
	RPCSecretEnv string `yaml:"rpc_secret_env"`
	// ClickFlushInterval is how often routers flush click deltas to the
	// shards (default 1s).
	ClickFlushInterval time.Duration `yaml:"click_flush_interval"`
	// CacheTTL is how long a router serves a cached link before it asks
	// the link's shard again (default 5s, MinCacheTTL..MaxCacheTTL): a
	// link deleted or edited through one router stops being served by
	// every other router within CacheTTL (plus the replication lag of the
	// replica asked). Shorter: fresher answers, more shard reads on the
	// redirect path. A router's cache_size 0 turns its cache off.
	CacheTTL time.Duration `yaml:"cache_ttl"`

	// CodeSecret and RPCSecret are read from the environment by Load; they
	// never appear in the file.
	CodeSecret string `yaml:"-"`
	RPCSecret  string `yaml:"-"`
}

// Node is one storage node.
type Node struct {
	// ID names the node (the Raft server ID), e.g. "n1".
	ID string `yaml:"id"`
	// RaftAddr is the host:port of the one TCP listener that carries the
	// Raft traffic of every shard the node hosts.
	RaftAddr string `yaml:"raft_addr"`
	// RPCAddr is the host:port of the internal RPC that routers call.
	RPCAddr string `yaml:"rpc_addr"`
	// DataDir is the node's Pebble directory and Raft snapshot directory.
	// A relative path is relative to the directory of cluster.yaml.
	DataDir string `yaml:"data_dir"`
	// AdminAddr, optional, is the host:port of an admin-only HTTP
	// listener serving Go's profiler (/debug/pprof/). Keep it on a
	// loopback or private address: it has no authentication.
	AdminAddr string `yaml:"admin_addr"`
}

// Shard is one Raft group.
type Shard struct {
	// ID is the shard's number, unique in the cluster and > 0.
	ID uint64 `yaml:"id"`
	// Replicas are the node IDs that host a replica: 1, 3 or 5 distinct
	// nodes (3 in production).
	Replicas []string `yaml:"replicas"`
}

// Router is one public HTTP front end.
type Router struct {
	// ID names the router, e.g. "r1". It keys the router's click flushes,
	// so two live routers must never share one.
	ID string `yaml:"id"`
	// Listen is the host:port the public API listens on.
	Listen string `yaml:"listen"`
	// BaseURL is the public base of short links, e.g.
	// "http://127.0.0.1:8080"; short_url is BaseURL + "/" + code.
	BaseURL string `yaml:"base_url"`
	// CacheSize is the number of code -> target entries the router keeps
	// (default 1,000,000; 0 disables the cache).
	CacheSize *int `yaml:"cache_size"`
	// AdminAddr, optional, is the host:port of an admin-only HTTP
	// listener serving Go's profiler (/debug/pprof/); see Node.AdminAddr.
	AdminAddr string `yaml:"admin_addr"`
}

// String formats the cluster settings with the secrets redacted, so that
// logging a Config never leaks them.
func (c Cluster) String() string {
	return fmt.Sprintf("{Partitions:%d CodeLength:%d RedirectStatus:%d CodeSecretEnv:%s RPCSecretEnv:%s ClickFlushInterval:%s CacheTTL:%s CodeSecret:%s RPCSecret:%s}",
		c.Partitions, c.CodeLength, c.RedirectStatus, c.CodeSecretEnv, c.RPCSecretEnv, c.ClickFlushInterval, c.CacheTTL,
		redact(c.CodeSecret), redact(c.RPCSecret))
}

// GoString is String, for %#v.
func (c Cluster) GoString() string { return "config.Cluster" + c.String() }

func redact(secret string) string {
	if secret == "" {
		return "unset"
	}
	return "redacted"
}
