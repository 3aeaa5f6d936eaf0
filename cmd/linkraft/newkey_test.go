package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/linkraft/linkraft/config"
)

// TestAdminNewKey: the printed line is valid cluster.yaml holding the
// printed key's hash (and never the key), and bad IDs are usage errors.
func TestAdminNewKey(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"admin", "new-key", "--id", "ops.alice-1", "--admin"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	key, ok := strings.CutPrefix(lines[0], "key: ")
	if !ok || !strings.HasPrefix(key, "lrk_") {
		t.Fatalf("output:\n%s", stdout.String())
	}
	entry := lines[len(lines)-1]
	if strings.Contains(entry, key) {
		t.Fatalf("the yaml line holds the key itself: %s", entry)
	}
	cfg, err := config.Parse([]byte("api_keys:\n"+entry+"\n"+`
nodes:
  - {id: a, raft_addr: "10.0.0.1:7000", rpc_addr: "10.0.0.1:7100", data_dir: /d}
shards:
  - {id: 1, replicas: [a]}
`), "")
	if err != nil {
		t.Fatalf("the printed line does not load: %v\n%s", err, entry)
	}
	if k := cfg.APIKeys[0]; k.ID != "ops.alice-1" || !k.Admin || k.Hash != config.HashAPIKey(key) {
		t.Fatalf("key entry %+v for key %s", k, key)
	}
	for _, args := range [][]string{{"admin", "new-key"}, {"admin", "new-key", "--id", "a b"}, {"admin", "new-key", "--id", "x", "extra"}} {
		stdout.Reset()
		stderr.Reset()
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 || stdout.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q", args, code, stdout.String())
		}
	}
}
