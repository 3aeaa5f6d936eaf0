package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults of the optional settings.
const (
	DefaultPartitions         = 1024
	DefaultCodeLength         = 7
	DefaultRedirectStatus     = 301
	DefaultClickFlushInterval = time.Second
	DefaultCacheSize          = 1_000_000
	DefaultCacheTTL           = 5 * time.Second
)

// MaxFileSize bounds the size of a cluster file Load accepts.
const MaxFileSize = 1 << 20

// Load reads the cluster file at path: strict YAML (an unknown or repeated
// key is an error naming the key and its line), defaults applied, the
// secrets read from the environment variables the file names, relative
// data_dir paths resolved against the directory of the file, and the result
// validated.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config: %s: larger than %d bytes", path, MaxFileSize)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	cfg, err := Parse(data, filepath.Dir(abs))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse is Load for the contents of a cluster file: data is the YAML, and
// relative data_dir paths are resolved against baseDir (left relative when
// baseDir is empty). The secrets are read from the environment.
func Parse(data []byte, baseDir string) (*Config, error) {
	cfg := &Config{Cluster: defaultCluster()}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the file is empty", ErrInvalid)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: the file must hold exactly one YAML document", ErrInvalid)
	}
	cfg.fillDefaults()
	cfg.resolve(baseDir)
	cfg.readSecrets()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func defaultCluster() Cluster {
	return Cluster{
		Partitions:         DefaultPartitions,
		CodeLength:         DefaultCodeLength,
		RedirectStatus:     DefaultRedirectStatus,
		ClickFlushInterval: DefaultClickFlushInterval,
		CacheTTL:           DefaultCacheTTL,
	}
}

// Default returns the default topology, the one of the repository's
// cluster.yaml: nodes n1..n3 on 127.0.0.1 (Raft ports 7001-7003, RPC ports
// 7101-7103, data in data/n1..data/n3), shards 1, 2 and 3 each replicated on
// all three nodes, and router r1 on 127.0.0.1:8080. Data dirs are relative
// and secrets are not read.
func Default() *Config {
	cfg := &Config{Cluster: defaultCluster()}
	cfg.Cluster.CodeSecretEnv = "LINKRAFT_CODE_SECRET"
	cfg.Cluster.RPCSecretEnv = "LINKRAFT_RPC_SECRET"
	for i := 1; i <= 3; i++ {
		cfg.Nodes = append(cfg.Nodes, Node{
			ID:       fmt.Sprintf("n%d", i),
			RaftAddr: fmt.Sprintf("127.0.0.1:%d", 7000+i),
			RPCAddr:  fmt.Sprintf("127.0.0.1:%d", 7100+i),
			DataDir:  filepath.Join("data", fmt.Sprintf("n%d", i)),
		})
		cfg.Shards = append(cfg.Shards, Shard{ID: uint64(i), Replicas: []string{"n1", "n2", "n3"}})
	}
	size := DefaultCacheSize
	cfg.Routers = []Router{{
		ID:        "r1",
		Listen:    "127.0.0.1:8080",
		BaseURL:   "http://127.0.0.1:8080",
		CacheSize: &size,
	}}
	return cfg
}

// ApplyDefaults sets every unset setting of a Config built in code to its
// default: zero cluster settings, nil cache sizes. It also drops a trailing
// "/" from base URLs. It does not read secrets or resolve paths.
func (c *Config) ApplyDefaults() {
	d := defaultCluster()
	if c.Cluster.Partitions == 0 {
		c.Cluster.Partitions = d.Partitions
	}
	if c.Cluster.CodeLength == 0 {
		c.Cluster.CodeLength = d.CodeLength
	}
	if c.Cluster.RedirectStatus == 0 {
		c.Cluster.RedirectStatus = d.RedirectStatus
	}
	if c.Cluster.ClickFlushInterval == 0 {
		c.Cluster.ClickFlushInterval = d.ClickFlushInterval
	}
	if c.Cluster.CacheTTL == 0 {
		c.Cluster.CacheTTL = d.CacheTTL
	}
	c.fillDefaults()
}

// fillDefaults sets the defaults that a file cannot distinguish from an
// explicit value by prefilling: the per-router ones.
func (c *Config) fillDefaults() {
	for i := range c.Routers {
		r := &c.Routers[i]
		if r.CacheSize == nil {
			size := DefaultCacheSize
			r.CacheSize = &size
		}
		r.BaseURL = strings.TrimSuffix(r.BaseURL, "/")
	}
}

// resolve makes relative data dirs relative to baseDir.
func (c *Config) resolve(baseDir string) {
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if n.DataDir == "" {
			continue
		}
		if baseDir != "" && !filepath.IsAbs(n.DataDir) {
			n.DataDir = filepath.Join(baseDir, n.DataDir)
		} else {
			n.DataDir = filepath.Clean(n.DataDir)
		}
	}
}

// readSecrets reads the secrets from the environment variables the file
// names.
func (c *Config) readSecrets() {
	if c.Cluster.CodeSecretEnv != "" {
		c.Cluster.CodeSecret = os.Getenv(c.Cluster.CodeSecretEnv)
	}
	if c.Cluster.RPCSecretEnv != "" {
		c.Cluster.RPCSecret = os.Getenv(c.Cluster.RPCSecretEnv)
	}
}
