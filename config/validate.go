package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/linkraft/linkraft/shortcode"
)

// ErrInvalid is matched (errors.Is) by every error Parse, Load and Validate
// return for a bad file, as opposed to an unreadable one.
var ErrInvalid = errors.New("invalid cluster config")

// MinClickFlushInterval is the shortest click_flush_interval: every flush is
// one Raft entry per shard.
const MinClickFlushInterval = 10 * time.Millisecond

// Bounds of cache_ttl. Below MinCacheTTL a cache saves almost no shard
// reads (turn it off with cache_size: 0 instead); above MaxCacheTTL a
// deleted or edited link would go on being served for too long.
const (
	MinCacheTTL = 10 * time.Millisecond
	MaxCacheTTL = time.Hour
)

// MaxIDLength bounds node and router IDs.
const MaxIDLength = 64

// FieldError is one problem Validate found: the path of the offending
// field, e.g. "shards[1].replicas[2]", and what is wrong with it.
type FieldError struct {
	// Field is the path of the field in cluster.yaml.
	Field string
	// Problem says what is wrong, for a human.
	Problem string
}

// Error returns "field: problem".
func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// Fields returns the field paths of every FieldError in err (which may be
// a joined error), in order.
func Fields(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if fe, ok := err.(*FieldError); ok {
			out = append(out, fe.Field)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// problems collects FieldErrors.
type problems []error

func (p *problems) add(field, format string, args ...any) {
	*p = append(*p, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

// Validate checks the whole config and returns every problem it finds,
// joined (errors.Join); each is a *FieldError naming the offending field
// and matching ErrInvalid. It does not modify the config.
func (c *Config) Validate() error {
	var ps problems
	c.validateCluster(&ps)
	nodes := c.validateNodes(&ps)
	c.validateShards(&ps, nodes)
	c.validateRouters(&ps)
	c.validateListeners(&ps)
	c.validateAPIKeys(&ps)
	return errors.Join(ps...)
}

func (c *Config) validateCluster(ps *problems) {
	cl := c.Cluster
	switch {
	case cl.Partitions < 1 || cl.Partitions > shortcode.MaxPartitions:
		ps.add("cluster.partitions", "%d is outside [1, %d]", cl.Partitions, shortcode.MaxPartitions)
	case len(c.Shards) > cl.Partitions:
		ps.add("cluster.partitions", "%d partitions cannot cover %d shards", cl.Partitions, len(c.Shards))
	}
	if cl.CodeLength < shortcode.MinLength || cl.CodeLength > shortcode.MaxLength {
		ps.add("cluster.code_length", "%d is outside [%d, %d]", cl.CodeLength, shortcode.MinLength, shortcode.MaxLength)
	} else if cl.Partitions >= 1 {
		space := uint64(1)
		for i := 0; i < cl.CodeLength; i++ {
			space *= 62
		}
		if space/uint64(cl.Partitions) < 1 {
			ps.add("cluster.code_length", "%d leaves fewer codes (%d) than partitions (%d)", cl.CodeLength, space, cl.Partitions)
		}
	}
	switch cl.RedirectStatus {
	case 301, 302, 307, 308:
	default:
		ps.add("cluster.redirect_status", "%d is not one of 301, 302, 307, 308", cl.RedirectStatus)
	}
	if cl.CodeSecretEnv != "" && !validEnvName(cl.CodeSecretEnv) {
		ps.add("cluster.code_secret_env", "%q is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)", cl.CodeSecretEnv)
	}
	if cl.RPCSecretEnv != "" && !validEnvName(cl.RPCSecretEnv) {
		ps.add("cluster.rpc_secret_env", "%q is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)", cl.RPCSecretEnv)
	}
	if cl.ClickFlushInterval < MinClickFlushInterval {
		ps.add("cluster.click_flush_interval", "%s is shorter than %s", cl.ClickFlushInterval, MinClickFlushInterval)
	}
	switch {
	case cl.CacheTTL < MinCacheTTL:
		ps.add("cluster.cache_ttl", "%s is shorter than %s (to turn a router's cache off, set its cache_size to 0)", cl.CacheTTL, MinCacheTTL)
	case cl.CacheTTL > MaxCacheTTL:
		ps.add("cluster.cache_ttl", "%s is longer than %s", cl.CacheTTL, MaxCacheTTL)
	}
}

// validateNodes checks the nodes and returns the set of valid, unique IDs.
func (c *Config) validateNodes(ps *problems) map[string]bool {
	ids := make(map[string]bool, len(c.Nodes))
	dirs := make(map[string]string, len(c.Nodes))
	if len(c.Nodes) == 0 {
		ps.add("nodes", "at least one node is required")
	}
	for i, n := range c.Nodes {
		f := fmt.Sprintf("nodes[%d]", i)
		if msg := checkID(n.ID); msg != "" {
			ps.add(f+".id", "%s", msg)
		} else if ids[n.ID] {
			ps.add(f+".id", "duplicate node ID %q", n.ID)
		} else {
			ids[n.ID] = true
		}
		if msg := checkAddr(n.AdminAddr, false); n.AdminAddr != "" && msg != "" {
			ps.add(f+".admin_addr", "%s", msg)
		}
		if msg := checkAddr(n.RaftAddr, true); msg != "" {
			ps.add(f+".raft_addr", "%s", msg)
		}
		if msg := checkAddr(n.RPCAddr, true); msg != "" {
			ps.add(f+".rpc_addr", "%s", msg)
		}
		if n.DataDir == "" {
			ps.add(f+".data_dir", "is required")
		} else {
			d := filepath.Clean(n.DataDir)
			if prev, ok := dirs[d]; ok {
				ps.add(f+".data_dir", "%q is also the data dir of %s", n.DataDir, prev)
			} else {
				dirs[d] = f
			}
		}
	}
	return ids
}

func (c *Config) validateShards(ps *problems, nodes map[string]bool) {
	if len(c.Shards) == 0 {
		ps.add("shards", "at least one shard is required")
	}
	ids := make(map[uint64]bool, len(c.Shards))
	for i, s := range c.Shards {
		f := fmt.Sprintf("shards[%d]", i)
		if s.ID == 0 {
			ps.add(f+".id", "must be > 0")
		} else if ids[s.ID] {
			ps.add(f+".id", "duplicate shard ID %d", s.ID)
		} else {
			ids[s.ID] = true
		}
		switch len(s.Replicas) {
		case 1, 3, 5:
		default:
			ps.add(f+".replicas", "%d replicas: a shard has 1, 3 or 5", len(s.Replicas))
		}
		seen := make(map[string]bool, len(s.Replicas))
		for j, r := range s.Replicas {
			rf := fmt.Sprintf("%s.replicas[%d]", f, j)
			switch {
			case !nodes[r]:
				ps.add(rf, "unknown node %q", r)
			case seen[r]:
				ps.add(rf, "node %q holds two replicas of the shard", r)
			}
			seen[r] = true
		}
	}
}

func (c *Config) validateRouters(ps *problems) {
	ids := make(map[string]bool, len(c.Routers))
	for i, r := range c.Routers {
		f := fmt.Sprintf("routers[%d]", i)
		if msg := checkID(r.ID); msg != "" {
			ps.add(f+".id", "%s", msg)
		} else if ids[r.ID] {
			ps.add(f+".id", "duplicate router ID %q", r.ID)
		} else {
			ids[r.ID] = true
		}
		if msg := checkAddr(r.Listen, false); msg != "" {
			ps.add(f+".listen", "%s", msg)
		}
		if msg := checkAddr(r.AdminAddr, false); r.AdminAddr != "" && msg != "" {
			ps.add(f+".admin_addr", "%s", msg)
		}
		if msg := checkBaseURL(r.BaseURL); msg != "" {
			ps.add(f+".base_url", "%s", msg)
		}
		if r.CacheSize != nil && *r.CacheSize < 0 {
			ps.add(f+".cache_size", "%d is negative", *r.CacheSize)
		}
	}
}

// validateListeners refuses two listeners on one address. Addresses that
// failed their own check are skipped.
func (c *Config) validateListeners(ps *problems) {
	used := make(map[string]string)
	check := func(field, addr string, dialable bool) {
		if checkAddr(addr, dialable) != "" {
			return
		}
		host, port, _ := net.SplitHostPort(addr)
		key := net.JoinHostPort(strings.ToLower(host), port)
		if prev, ok := used[key]; ok {
			ps.add(field, "address %s is also used by %s", addr, prev)
			return
		}
		used[key] = field
	}
	for i, n := range c.Nodes {
		check(fmt.Sprintf("nodes[%d].raft_addr", i), n.RaftAddr, true)
		check(fmt.Sprintf("nodes[%d].rpc_addr", i), n.RPCAddr, true)
		if n.AdminAddr != "" {
			check(fmt.Sprintf("nodes[%d].admin_addr", i), n.AdminAddr, false)
		}
	}
	for i, r := range c.Routers {
		check(fmt.Sprintf("routers[%d].listen", i), r.Listen, false)
		if r.AdminAddr != "" {
			check(fmt.Sprintf("routers[%d].admin_addr", i), r.AdminAddr, false)
		}
	}
}

// checkID returns what is wrong with a node or router ID, or "".
func checkID(id string) string {
	return checkName(id, MaxIDLength, "", "letters, digits, '_' and '-'")
}

// checkName returns what is wrong with an identifier, or "": it is required,
// at most maxLen bytes, and made of ASCII letters, digits, '_', '-' and the
// bytes of extra only (allowed says which, in the message).
func checkName(id string, maxLen int, extra, allowed string) string {
	if id == "" {
		return "is required"
	}
	if len(id) > maxLen {
		return fmt.Sprintf("longer than %d characters", maxLen)
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-' || strings.IndexByte(extra, b) >= 0) {
			return fmt.Sprintf("%q: only %s are allowed", id, allowed)
		}
	}
	return ""
}

// checkAddr returns what is wrong with a host:port, or "". A dialable
// address is one other processes connect to: it needs a host, and not an
// unspecified one such as 0.0.0.0.
func checkAddr(addr string, dialable bool) string {
	if addr == "" {
		return "is required"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 || port[0] == '0' {
		return fmt.Sprintf("%q: port %q is not a number in [1, 65535]", addr, port)
	}
	if host == "" {
		if dialable {
			return fmt.Sprintf("%q has no host; other processes must be able to dial it", addr)
		}
		return ""
	}
	if ip := net.ParseIP(host); ip != nil {
		if dialable && ip.IsUnspecified() {
			return fmt.Sprintf("%q: the unspecified address cannot be dialled; name the host other processes reach", addr)
		}
		return ""
	}
	if !validHostname(host) {
		return fmt.Sprintf("%q: %q is neither an IP address nor a host name", addr, host)
	}
	return ""
}

// validHostname reports whether h is a DNS name: dot-separated labels of 1
// to 63 letters, digits and inner hyphens, at most 253 bytes.
func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '-') {
				return false
			}
		}
	}
	return true
}

// checkBaseURL returns what is wrong with a router's base_url, or "".
func checkBaseURL(s string) string {
	if s == "" {
		return "is required"
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Sprintf("%q is not a URL", s)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("%q: the scheme must be http or https", s)
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return fmt.Sprintf("%q has no host", s)
	case u.User != nil:
		return fmt.Sprintf("%q must not carry user information", s)
	case u.Path != "" || u.RawPath != "":
		return fmt.Sprintf("%q must not have a path (short links are base_url/code)", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(s, "?#"):
		return fmt.Sprintf("%q must not have a query or fragment", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return fmt.Sprintf("%q: port %q is not a number in [1, 65535]", s, p)
		}
	}
	if strings.HasSuffix(s, ":") {
		return fmt.Sprintf("%q has an empty port", s)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil && !validHostname(u.Hostname()) {
		return fmt.Sprintf("%q: %q is neither an IP address nor a host name", s, u.Hostname())
	}
	return ""
}

// validEnvName reports whether s is a portable environment variable name.
func validEnvName(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b == '_' || i > 0 && b >= '0' && b <= '9') {
			return false
		}
	}
	return s != ""
}
