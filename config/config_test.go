package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// defaultFile is the repository's cluster.yaml.
const defaultFile = "../cluster.yaml"

func TestDefaultFileLoads(t *testing.T) {
	t.Setenv("LINKRAFT_CODE_SECRET", "")
	t.Setenv("LINKRAFT_RPC_SECRET", "")
	cfg, err := Load(defaultFile)
	if err != nil {
		t.Fatalf("Load(%s): %v", defaultFile, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	for i := range want.Nodes {
		want.Nodes[i].DataDir = filepath.Join(root, want.Nodes[i].DataDir)
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("cluster.yaml and Default() differ:\n file    %+v\n default %+v", cfg, want)
	}
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate: %v", err)
	}
	r, err := cfg.Ring()
	if err != nil {
		t.Fatal(err)
	}
	if r.Partitions() != 1024 || !slices.Equal(r.Shards(), []uint64{1, 2, 3}) {
		t.Fatalf("ring: %d partitions, shards %v", r.Partitions(), r.Shards())
	}
}

// TestDefaultFileDocumentsEveryKey checks that every key of the config is
// present in the reference file.
func TestDefaultFileDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(defaultFile)
	if err != nil {
		t.Fatal(err)
	}
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		for i := 0; i < ty.NumField(); i++ {
			f := ty.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "-" || tag == "" {
				continue
			}
			if !strings.Contains(string(data), tag+":") {
				t.Errorf("cluster.yaml does not show key %q", tag)
			}
			ft := f.Type
			for ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Time{}) {
				walk(ft)
			}
		}
	}
	walk(reflect.TypeOf(Config{}))
}

const minimal = `
nodes:
  - {id: a, raft_addr: "10.0.0.1:7000", rpc_addr: "10.0.0.1:7100", data_dir: /var/lib/linkraft}
shards:
  - {id: 1, replicas: [a]}
`

func TestDefaultsApplied(t *testing.T) {
	cfg, err := Parse([]byte(minimal+"routers:\n  - {id: r, listen: \":80\", base_url: \"https://sho.rt/\"}\n"), "/base")
	if err != nil {
		t.Fatal(err)
	}
	cl := cfg.Cluster
	if cl.Partitions != DefaultPartitions || cl.CodeLength != DefaultCodeLength ||
		cl.RedirectStatus != DefaultRedirectStatus || cl.ClickFlushInterval != DefaultClickFlushInterval ||
		cl.CacheTTL != DefaultCacheTTL {
		t.Fatalf("defaults not applied: %+v", cl)
	}
	r := cfg.Routers[0]
	if r.CacheSize == nil || *r.CacheSize != DefaultCacheSize || r.CacheEntries() != DefaultCacheSize {
		t.Fatalf("cache size default not applied: %v", r.CacheSize)
	}
	if r.BaseURL != "https://sho.rt" {
		t.Fatalf("base_url not normalised: %q", r.BaseURL)
	}
	if cfg.Nodes[0].DataDir != "/var/lib/linkraft" {
		t.Fatalf("absolute data dir changed: %q", cfg.Nodes[0].DataDir)
	}
	if cfg.Cluster.CodeSecret != "" || cfg.Cluster.RPCSecret != "" {
		t.Fatal("secrets set without env vars")
	}
}

func TestExplicitValuesKept(t *testing.T) {
	cfg, err := Parse([]byte(`
cluster:
  partitions: 64
  code_length: 9
  redirect_status: 308
  click_flush_interval: 250ms
  cache_ttl: 1m30s
`+minimal+`
routers:
  - {id: r, listen: "127.0.0.1:8080", base_url: "http://127.0.0.1:8080", cache_size: 0}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	cl := cfg.Cluster
	if cl.Partitions != 64 || cl.CodeLength != 9 || cl.RedirectStatus != 308 || cl.ClickFlushInterval != 250*time.Millisecond ||
		cl.CacheTTL != 90*time.Second {
		t.Fatalf("explicit values lost: %+v", cl)
	}
	if cfg.Routers[0].CacheEntries() != 0 {
		t.Fatalf("explicit cache_size 0 became %d", cfg.Routers[0].CacheEntries())
	}
}

func TestSecretsFromEnvironment(t *testing.T) {
	t.Setenv("TEST_CODE_KEY", "code-secret")
	t.Setenv("TEST_RPC_KEY", "rpc-secret")
	cfg, err := Parse([]byte("cluster:\n  code_secret_env: TEST_CODE_KEY\n  rpc_secret_env: TEST_RPC_KEY\n"+minimal), "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster.CodeSecret != "code-secret" || cfg.Cluster.RPCSecret != "rpc-secret" {
		t.Fatalf("secrets: %q %q", cfg.Cluster.CodeSecret, cfg.Cluster.RPCSecret)
	}
	// The code secret keys the codec: another secret, other codes.
	a, err := cfg.Codec()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Cluster.CodeSecret = ""
	b, err := cfg.Codec()
	if err != nil {
		t.Fatal(err)
	}
	if a.Encode(1) == b.Encode(1) {
		t.Fatal("the code secret does not change the codes")
	}
}

func TestRelativeDataDirs(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "conf", "c.yaml")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	y := `
nodes:
  - {id: a, raft_addr: "h1:1", rpc_addr: "h1:2", data_dir: data/a}
  - {id: b, raft_addr: "h2:1", rpc_addr: "h2:2", data_dir: ../b}
  - {id: c, raft_addr: "h3:1", rpc_addr: "h3:2", data_dir: /abs/c}
shards:
  - {id: 7, replicas: [a, b, c]}
`
	if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "conf", "data", "a"), filepath.Join(dir, "b"), "/abs/c"}
	for i, w := range want {
		if cfg.Nodes[i].DataDir != w {
			t.Errorf("nodes[%d].data_dir = %q, want %q", i, cfg.Nodes[i].DataDir, w)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil {
		t.Fatal("oversized file accepted")
	}
}

// TestParseErrors covers mistakes the YAML decoder catches: the error must
// name the key and line.
func TestParseErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		yaml string
		want []string // substrings of the error
	}{
		"empty":            {"", []string{"empty"}},
		"comments only":    {"# nothing\n", []string{"empty"}},
		"unknown top key":  {minimal + "extra: 1\n", []string{"extra", "line 6"}},
		"unknown node key": {"nodes:\n  - id: a\n    raft_adr: x:1\n", []string{"raft_adr", "line 3"}},
		"unknown cluster":  {"cluster:\n  partition: 3\n", []string{"partition", "line 2"}},
		"duplicate key":    {"cluster:\n  partitions: 3\n  partitions: 4\n", []string{"partitions", "line 3"}},
		"wrong type":       {"cluster:\n  partitions: many\n", []string{"line 2", "many"}},
		"int duration":     {"cluster:\n  click_flush_interval: 1000\n", []string{"line 2"}},
		"bad duration":     {"cluster:\n  click_flush_interval: soon\n", []string{"line 2"}},
		"int cache ttl":    {"cluster:\n  cache_ttl: 5\n", []string{"line 2"}},
		"zero cache ttl":   {"cluster:\n  cache_ttl: 0s\n" + minimal, []string{"cluster.cache_ttl", "cache_size"}},
		"long cache ttl":   {"cluster:\n  cache_ttl: 2h\n" + minimal, []string{"cluster.cache_ttl", "longer than 1h"}},
		"negative shard":   {"shards:\n  - id: -1\n", []string{"line 2"}},
		"two documents":    {minimal + "---\n" + minimal, []string{"one YAML document"}},
		"not a mapping":    {"- a\n- b\n", []string{"line 1"}},
		"syntax":           {"nodes: [\n", []string{"line"}},
	} {
		_, err := Parse([]byte(tc.yaml), "")
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v does not match ErrInvalid", name, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", name, err, w)
			}
		}
	}
}

// TestValidateNamesField starts from the default topology, breaks one
// thing, and checks that Validate names the field.
func TestValidateNamesField(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
		fields []string
	}{
		{"partitions zero", func(c *Config) { c.Cluster.Partitions = 0 }, []string{"cluster.partitions"}},
		{"partitions too many", func(c *Config) { c.Cluster.Partitions = 65537 }, []string{"cluster.partitions"}},
		{"fewer partitions than shards", func(c *Config) { c.Cluster.Partitions = 2 }, []string{"cluster.partitions"}},
		{"code length short", func(c *Config) { c.Cluster.CodeLength = 4 }, []string{"cluster.code_length"}},
		{"code length long", func(c *Config) { c.Cluster.CodeLength = 11 }, []string{"cluster.code_length"}},
		{"redirect 200", func(c *Config) { c.Cluster.RedirectStatus = 200 }, []string{"cluster.redirect_status"}},
		{"redirect 303", func(c *Config) { c.Cluster.RedirectStatus = 303 }, []string{"cluster.redirect_status"}},
		{"code secret env", func(c *Config) { c.Cluster.CodeSecretEnv = "1BAD" }, []string{"cluster.code_secret_env"}},
		{"rpc secret env", func(c *Config) { c.Cluster.RPCSecretEnv = "A-B" }, []string{"cluster.rpc_secret_env"}},
		{"flush too fast", func(c *Config) { c.Cluster.ClickFlushInterval = time.Millisecond }, []string{"cluster.click_flush_interval"}},
		{"flush negative", func(c *Config) { c.Cluster.ClickFlushInterval = -time.Second }, []string{"cluster.click_flush_interval"}},
		{"cache ttl zero", func(c *Config) { c.Cluster.CacheTTL = 0 }, []string{"cluster.cache_ttl"}},
		{"cache ttl too short", func(c *Config) { c.Cluster.CacheTTL = 9 * time.Millisecond }, []string{"cluster.cache_ttl"}},
		{"cache ttl negative", func(c *Config) { c.Cluster.CacheTTL = -time.Second }, []string{"cluster.cache_ttl"}},
		{"cache ttl too long", func(c *Config) { c.Cluster.CacheTTL = time.Hour + time.Millisecond }, []string{"cluster.cache_ttl"}},
		{"no nodes", func(c *Config) { c.Nodes = nil; c.Shards = []Shard{{ID: 1}} }, []string{"nodes", "shards[0].replicas"}},
		{"no shards", func(c *Config) { c.Shards = nil }, []string{"shards"}},
		{"empty node id", func(c *Config) { c.Nodes[1].ID = "" }, []string{"nodes[1].id", "shards[0].replicas[1]", "shards[1].replicas[1]", "shards[2].replicas[1]"}},
		{"node id charset", func(c *Config) { c.Nodes[0].ID = "n 1"; c.Shards = c.Shards[:1]; c.Shards[0].Replicas = []string{"n2"} }, []string{"nodes[0].id"}},
		{"node id too long", func(c *Config) {
			c.Nodes[0].ID = strings.Repeat("n", 65)
			c.Shards[0].Replicas = []string{"n2"}
			c.Shards = c.Shards[:1]
		}, []string{"nodes[0].id"}},
		{"duplicate node id", func(c *Config) { c.Nodes[2].ID = "n1"; c.Shards = []Shard{{ID: 1, Replicas: []string{"n1"}}} }, []string{"nodes[2].id"}},
		{"raft addr no port", func(c *Config) { c.Nodes[0].RaftAddr = "127.0.0.1" }, []string{"nodes[0].raft_addr"}},
		{"raft addr port 0", func(c *Config) { c.Nodes[0].RaftAddr = "127.0.0.1:0" }, []string{"nodes[0].raft_addr"}},
		{"raft addr port big", func(c *Config) { c.Nodes[0].RaftAddr = "127.0.0.1:65536" }, []string{"nodes[0].raft_addr"}},
		{"raft addr named port", func(c *Config) { c.Nodes[0].RaftAddr = "127.0.0.1:http" }, []string{"nodes[0].raft_addr"}},
		{"raft addr no host", func(c *Config) { c.Nodes[0].RaftAddr = ":7001" }, []string{"nodes[0].raft_addr"}},
		{"raft addr unspecified", func(c *Config) { c.Nodes[0].RaftAddr = "0.0.0.0:7001" }, []string{"nodes[0].raft_addr"}},
		{"rpc addr bad host", func(c *Config) { c.Nodes[2].RPCAddr = "bad_host:7103" }, []string{"nodes[2].rpc_addr"}},
		{"rpc addr empty", func(c *Config) { c.Nodes[2].RPCAddr = "" }, []string{"nodes[2].rpc_addr"}},
		{"shared listener", func(c *Config) { c.Nodes[1].RPCAddr = "127.0.0.1:7001" }, []string{"nodes[1].rpc_addr"}},
		{"node admin addr bad", func(c *Config) { c.Nodes[0].AdminAddr = "127.0.0.1" }, []string{"nodes[0].admin_addr"}},
		{"router admin addr bad", func(c *Config) { c.Routers[0].AdminAddr = "bad_host:6060" }, []string{"routers[0].admin_addr"}},
		{"admin addr shared", func(c *Config) { c.Routers[0].AdminAddr = c.Nodes[0].RPCAddr }, []string{"routers[0].admin_addr"}},
		{"admin addrs shared", func(c *Config) { c.Nodes[0].AdminAddr = "127.0.0.1:6060"; c.Nodes[1].AdminAddr = "127.0.0.1:6060" }, []string{"nodes[1].admin_addr"}},
		{"shared listener case", func(c *Config) {
			c.Nodes[0].RaftAddr = "Host:7001"
			c.Nodes[1].RaftAddr = "host:7001"
		}, []string{"nodes[1].raft_addr"}},
		{"router on node port", func(c *Config) { c.Routers[0].Listen = "127.0.0.1:7103" }, []string{"routers[0].listen"}},
		{"data dir empty", func(c *Config) { c.Nodes[0].DataDir = "" }, []string{"nodes[0].data_dir"}},
		{"data dir shared", func(c *Config) { c.Nodes[2].DataDir = "data/n1/" }, []string{"nodes[2].data_dir"}},
		{"shard id zero", func(c *Config) { c.Shards[1].ID = 0 }, []string{"shards[1].id"}},
		{"shard id duplicate", func(c *Config) { c.Shards[2].ID = 1 }, []string{"shards[2].id"}},
		{"unknown replica", func(c *Config) { c.Shards[1].Replicas[2] = "n9" }, []string{"shards[1].replicas[2]"}},
		{"repeated replica", func(c *Config) { c.Shards[0].Replicas[2] = "n1" }, []string{"shards[0].replicas[2]"}},
		{"two replicas", func(c *Config) { c.Shards[0].Replicas = c.Shards[0].Replicas[:2] }, []string{"shards[0].replicas"}},
		{"no replicas", func(c *Config) { c.Shards[0].Replicas = nil }, []string{"shards[0].replicas"}},
		{"router id empty", func(c *Config) { c.Routers[0].ID = "" }, []string{"routers[0].id"}},
		{"router id duplicate", func(c *Config) {
			r := c.Routers[0]
			r.Listen = "127.0.0.1:8081"
			c.Routers = append(c.Routers, r)
		}, []string{"routers[1].id"}},
		{"router listen bad", func(c *Config) { c.Routers[0].Listen = "8080" }, []string{"routers[0].listen"}},
		{"base url empty", func(c *Config) { c.Routers[0].BaseURL = "" }, []string{"routers[0].base_url"}},
		{"base url relative", func(c *Config) { c.Routers[0].BaseURL = "/x" }, []string{"routers[0].base_url"}},
		{"base url scheme", func(c *Config) { c.Routers[0].BaseURL = "ftp://x.org" }, []string{"routers[0].base_url"}},
		{"base url no host", func(c *Config) { c.Routers[0].BaseURL = "http://" }, []string{"routers[0].base_url"}},
		{"base url path", func(c *Config) { c.Routers[0].BaseURL = "http://x.org/s" }, []string{"routers[0].base_url"}},
		{"base url slash", func(c *Config) { c.Routers[0].BaseURL = "http://x.org/" }, []string{"routers[0].base_url"}},
		{"base url query", func(c *Config) { c.Routers[0].BaseURL = "http://x.org?a=b" }, []string{"routers[0].base_url"}},
		{"base url empty query", func(c *Config) { c.Routers[0].BaseURL = "http://x.org?" }, []string{"routers[0].base_url"}},
		{"base url fragment", func(c *Config) { c.Routers[0].BaseURL = "http://x.org#f" }, []string{"routers[0].base_url"}},
		{"base url user", func(c *Config) { c.Routers[0].BaseURL = "http://u:p@x.org" }, []string{"routers[0].base_url"}},
		{"base url port", func(c *Config) { c.Routers[0].BaseURL = "http://x.org:0" }, []string{"routers[0].base_url"}},
		{"base url empty port", func(c *Config) { c.Routers[0].BaseURL = "http://x.org:" }, []string{"routers[0].base_url"}},
		{"base url opaque", func(c *Config) { c.Routers[0].BaseURL = "http:x.org" }, []string{"routers[0].base_url"}},
		{"cache negative", func(c *Config) { n := -1; c.Routers[0].CacheSize = &n }, []string{"routers[0].cache_size"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(c)
			err := c.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not match ErrInvalid", err)
			}
			got := Fields(err)
			if !slices.Equal(got, tc.fields) {
				t.Errorf("fields %q, want %q\nerror: %v", got, tc.fields, err)
			}
			for _, f := range tc.fields {
				if !strings.Contains(err.Error(), f+": ") {
					t.Errorf("error text does not name %s: %v", f, err)
				}
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
	}{
		{"one replica", func(c *Config) { c.Shards[0].Replicas = []string{"n2"} }},
		{"five replicas", func(c *Config) {
			c.Nodes = append(c.Nodes,
				Node{ID: "n4", RaftAddr: "127.0.0.1:7004", RPCAddr: "127.0.0.1:7104", DataDir: "data/n4"},
				Node{ID: "n5", RaftAddr: "127.0.0.1:7005", RPCAddr: "127.0.0.1:7105", DataDir: "data/n5"})
			c.Shards[0].Replicas = []string{"n1", "n2", "n3", "n4", "n5"}
		}},
		{"no routers", func(c *Config) { c.Routers = nil }},
		{"ipv6", func(c *Config) { c.Nodes[0].RaftAddr = "[::1]:7001"; c.Routers[0].BaseURL = "http://[::1]:8080" }},
		{"host names", func(c *Config) {
			c.Nodes[0].RaftAddr = "node-1.example.com:7001"
			c.Routers[0].BaseURL = "https://sho.rt"
		}},
		{"listen all interfaces", func(c *Config) { c.Routers[0].Listen = ":8080" }},
		{"partitions equal shards", func(c *Config) { c.Cluster.Partitions = 3 }},
		{"max partitions", func(c *Config) { c.Cluster.Partitions = 65536; c.Cluster.CodeLength = 5 }},
		{"no secret envs", func(c *Config) { c.Cluster.CodeSecretEnv = ""; c.Cluster.RPCSecretEnv = "" }},
		{"cache disabled", func(c *Config) { n := 0; c.Routers[0].CacheSize = &n }},
		{"cache unset", func(c *Config) { c.Routers[0].CacheSize = nil }},
		{"large shard ids", func(c *Config) { c.Shards[2].ID = 1 << 63 }},
		{"slow flush", func(c *Config) { c.Cluster.ClickFlushInterval = time.Minute }},
		{"cache ttl shortest", func(c *Config) { c.Cluster.CacheTTL = MinCacheTTL }},
		{"cache ttl longest", func(c *Config) { c.Cluster.CacheTTL = MaxCacheTTL }},
		{"admin addrs", func(c *Config) { c.Nodes[0].AdminAddr = "127.0.0.1:6061"; c.Routers[0].AdminAddr = "localhost:6060" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(c)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Ring(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestValidateReportsAll(t *testing.T) {
	c := Default()
	c.Cluster.RedirectStatus = 200
	c.Nodes[0].RPCAddr = "nope"
	c.Shards[1].Replicas[0] = "x"
	c.Routers[0].BaseURL = "ftp://x"
	err := c.Validate()
	want := []string{"cluster.redirect_status", "nodes[0].rpc_addr", "shards[1].replicas[0]", "routers[0].base_url"}
	if got := Fields(err); !slices.Equal(got, want) {
		t.Fatalf("fields %q, want %q", got, want)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != want[0] {
		t.Fatalf("errors.As: %v", fe)
	}
}

func TestApplyDefaults(t *testing.T) {
	c := &Config{
		Nodes:   []Node{{ID: "a", RaftAddr: "h:1", RPCAddr: "h:2", DataDir: "d"}},
		Shards:  []Shard{{ID: 1, Replicas: []string{"a"}}},
		Routers: []Router{{ID: "r", Listen: "h:3", BaseURL: "http://h:3/"}},
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Cluster != defaultCluster() || c.Routers[0].CacheEntries() != DefaultCacheSize || c.Routers[0].BaseURL != "http://h:3" {
		t.Fatalf("ApplyDefaults: %+v %+v", c.Cluster, c.Routers[0])
	}
	c.Cluster.Partitions = 8
	c.ApplyDefaults()
	if c.Cluster.Partitions != 8 {
		t.Fatal("ApplyDefaults overwrote a set value")
	}
}

func TestHelpers(t *testing.T) {
	c := Default()
	c.Shards = append(c.Shards, Shard{ID: 9, Replicas: []string{"n2"}}, Shard{ID: 5, Replicas: []string{"n3"}})
	if n, ok := c.Node("n2"); !ok || n.RPCAddr != "127.0.0.1:7102" {
		t.Fatalf("Node(n2) = %+v %v", n, ok)
	}
	if _, ok := c.Node("n9"); ok {
		t.Fatal("Node(n9) found")
	}
	if n, ok := c.NodeByRaftAddr("127.0.0.1:7003"); !ok || n.ID != "n3" {
		t.Fatalf("NodeByRaftAddr = %+v %v", n, ok)
	}
	if _, ok := c.NodeByRaftAddr("127.0.0.1:7103"); ok {
		t.Fatal("NodeByRaftAddr matched an RPC address")
	}
	if r, ok := c.Router("r1"); !ok || r.Listen != "127.0.0.1:8080" {
		t.Fatalf("Router(r1) = %+v %v", r, ok)
	}
	if _, ok := c.Router("r2"); ok {
		t.Fatal("Router(r2) found")
	}
	if s, ok := c.Shard(9); !ok || s.Replicas[0] != "n2" {
		t.Fatalf("Shard(9) = %+v %v", s, ok)
	}
	if _, ok := c.Shard(4); ok {
		t.Fatal("Shard(4) found")
	}
	if ids := c.ShardIDs(); !slices.Equal(ids, []uint64{1, 2, 3, 5, 9}) {
		t.Fatalf("ShardIDs = %v", ids)
	}
	var got []uint64
	for _, s := range c.ShardsOfNode("n2") {
		got = append(got, s.ID)
	}
	if !slices.Equal(got, []uint64{1, 2, 3, 9}) {
		t.Fatalf("ShardsOfNode(n2) = %v", got)
	}
	if s := c.ShardsOfNode("n9"); len(s) != 0 {
		t.Fatalf("ShardsOfNode(n9) = %v", s)
	}
	rn := c.ReplicaNodes(2)
	if len(rn) != 3 || rn[0].ID != "n1" || rn[2].ID != "n3" {
		t.Fatalf("ReplicaNodes(2) = %+v", rn)
	}
	if c.ReplicaNodes(4) != nil {
		t.Fatal("ReplicaNodes(4) not nil")
	}
	if (Router{}).CacheEntries() != DefaultCacheSize {
		t.Fatal("CacheEntries of an unset size")
	}
}

func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile(defaultFile); err == nil {
		f.Add(data)
	}
	f.Add([]byte(minimal))
	f.Add([]byte("cluster:\n  partitions: 3\n  code_length: 5\n" + minimal))
	f.Add([]byte("cluster: {partitions: 0}\n"))
	f.Add([]byte("cluster: {cache_ttl: 0s}\n" + minimal))
	f.Add([]byte("cluster: {cache_ttl: 1h}\n" + minimal))
	f.Add([]byte("cluster: {cache_ttl: 10ms}\n" + minimal))
	f.Add([]byte("cluster: {cache_ttl: 5}\n" + minimal))
	f.Add([]byte("cluster: {cache_ttl: -5s}\n" + minimal))
	f.Add([]byte("nodes: [{id: a, raft_addr: '[::1]:1', rpc_addr: 'h:2', data_dir: x}]\nshards: [{id: 1, replicas: [a, a, a]}]\n"))
	f.Add([]byte("routers: [{id: r, listen: ':1', base_url: 'http://x/', cache_size: -1}]\n"))
	f.Add([]byte("api_keys: [{id: alice, hash: 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824', admin: true}]\n" + minimal))
	f.Add([]byte("api_keys: [{id: a, hash: 'sha256:zz'}, {id: a, hash: ''}]\n" + minimal))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("&a [*a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "/base")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse error does not match ErrInvalid: %v", err)
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", err)
		}
		r, err := cfg.Ring()
		if err != nil {
			t.Fatalf("valid config without a ring: %v", err)
		}
		for _, id := range cfg.ShardIDs() {
			if len(cfg.ReplicaNodes(id)) == 0 {
				t.Fatalf("shard %d has no replica nodes", id)
			}
		}
		if r.Partitions() != cfg.Cluster.Partitions {
			t.Fatalf("ring has %d partitions, config %d", r.Partitions(), cfg.Cluster.Partitions)
		}
	})
}

func TestSecretsNotPrinted(t *testing.T) {
	c := Default()
	c.Cluster.CodeSecret = "code-s3cret"
	c.Cluster.RPCSecret = "rpc-s3cret"
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, c)
		if strings.Contains(out, "s3cret") {
			t.Errorf("%s of a Config shows a secret: %s", format, out)
		}
		if out := fmt.Sprintf(format, c.Cluster); strings.Contains(out, "s3cret") || !strings.Contains(out, "1024") {
			t.Errorf("%s of a Cluster: %s", format, out)
		}
	}
}

// TestGeneratedTopology loads a file shaped like the ones test harnesses
// write: free ports, flow-style replica lists, secrets by env var.
func TestGeneratedTopology(t *testing.T) {
	t.Setenv("T_CODE", "k")
	y := `cluster:
  partitions: 256
  code_length: 7
  redirect_status: 301
  click_flush_interval: 200ms
  code_secret_env: T_CODE
  rpc_secret_env: T_RPC
nodes:
  - id: n1
    raft_addr: 127.0.0.1:40001
    rpc_addr: 127.0.0.1:40002
    data_dir: data/n1
  - id: n2
    raft_addr: 127.0.0.1:40003
    rpc_addr: 127.0.0.1:40004
    data_dir: data/n2
  - id: n3
    raft_addr: 127.0.0.1:40005
    rpc_addr: 127.0.0.1:40006
    data_dir: data/n3
shards:
  - id: 1
    replicas: [n1, n2, n3]
  - id: 2
    replicas: [n1, n2, n3]
routers:
  - id: r1
    listen: 127.0.0.1:40007
    base_url: http://127.0.0.1:40007
`
	dir := t.TempDir()
	path := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cluster.CodeSecret != "k" || cfg.Cluster.RPCSecret != "" || cfg.Cluster.ClickFlushInterval != 200*time.Millisecond {
		t.Fatalf("cluster: %+v", cfg.Cluster)
	}
	if cfg.Nodes[2].DataDir != filepath.Join(dir, "data", "n3") {
		t.Fatalf("data dir %q", cfg.Nodes[2].DataDir)
	}
	if len(cfg.ShardsOfNode("n2")) != 2 {
		t.Fatalf("ShardsOfNode(n2) = %v", cfg.ShardsOfNode("n2"))
	}
}
