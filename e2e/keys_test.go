package e2e

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/proctest"
)

// TestProcessAPIKeys: a key made by `linkraft admin new-key`, configured by
// its hash, is what a router process asks for: without it a create is a
// 401 that appends nothing to any shard's log; with it the link records the
// key's ID, is listed for it and is invisible (404) to another key, while
// its redirect stays public.
func TestProcessAPIKeys(t *testing.T) {
	out, err := exec.Command(proctest.Binary(t), "admin", "new-key", "--id", "alice").Output()
	if err != nil {
		t.Fatalf("admin new-key: %v", err)
	}
	key, ok := strings.CutPrefix(strings.SplitN(string(out), "\n", 2)[0], "key: ")
	if !ok {
		t.Fatalf("admin new-key printed %q", out)
	}
	if !strings.Contains(string(out), config.HashAPIKey(key)) {
		t.Fatalf("admin new-key's line does not hold the key's hash:\n%s", out)
	}
	other := config.NewAPIKey()
	c := proctest.New(t, proctest.Options{APIKeys: []config.APIKey{
		{ID: "alice", Hash: config.HashAPIKey(key)},
		{ID: "bob", Hash: config.HashAPIKey(other)},
	}})
	for _, id := range c.NodeIDs() {
		c.StartNode(id)
	}
	base := c.URL("r1")
	c.StartRouter("r1")
	c.WaitReady("r1")
	call := func(method, path, key, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
		return resp.StatusCode, raw
	}
	// A first linearizable read per shard leader appends a barrier: take
	// the log sizes after one list.
	if st, raw := call(http.MethodGet, "/api/v1/links", key, ""); st != http.StatusOK {
		t.Fatalf("list: %d %s", st, raw)
	}
	before := logSizes(t, c)
	for _, k := range []string{"", "lrk_wrong", config.HashAPIKey(key)} {
		if st, raw := call(http.MethodPost, "/api/v1/links", k, `{"url": "https://example.com/keys"}`); st != http.StatusUnauthorized {
			t.Fatalf("create with key %q: %d %s", k, st, raw)
		}
	}
	if after := logSizes(t, c); !maps.Equal(before, after) {
		t.Fatalf("refused creates grew the shards' logs: %v -> %v", before, after)
	}
	st, raw := call(http.MethodPost, "/api/v1/links", key, `{"url": "https://example.com/keys", "title": "Keys", "tags": ["e2e"]}`)
	var l struct {
		Code  string   `json:"code"`
		Owner string   `json:"owner"`
		Tags  []string `json:"tags"`
	}
	if st != http.StatusCreated || json.Unmarshal(raw, &l) != nil || l.Owner != "alice" {
		t.Fatalf("create with the key: %d %s", st, raw)
	}
	if st, raw := call(http.MethodGet, "/api/v1/links?tag=e2e", key, ""); st != http.StatusOK || !strings.Contains(string(raw), l.Code) {
		t.Fatalf("alice's list: %d %s", st, raw)
	}
	if st, raw := call(http.MethodGet, "/api/v1/links", other, ""); st != http.StatusOK || strings.Contains(string(raw), l.Code) {
		t.Fatalf("bob's list: %d %s", st, raw)
	}
	if st, raw := call(http.MethodGet, "/api/v1/links/"+l.Code, other, ""); st != http.StatusNotFound {
		t.Fatalf("bob reads alice's link: %d %s", st, raw)
	}
	if st, loc, err := redirectTarget(base, l.Code); err != nil || st != http.StatusMovedPermanently || loc != "https://example.com/keys" {
		t.Fatalf("public redirect: %d %q %v", st, loc, err)
	}
}
