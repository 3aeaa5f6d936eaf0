package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linkraft/linkraft/proctest"
)

// TestProcessBadInputStoresNothing sends a table of bad requests to a real
// router: each gets its documented 4xx with a JSON error body, and no shard's
// Raft log grows (nothing was proposed, so nothing was stored).
func TestProcessBadInputStoresNothing(t *testing.T) {
	c := proctest.New(t, proctest.Options{ClickFlushInterval: 200 * time.Millisecond})
	for _, id := range c.NodeIDs() {
		c.StartNode(id)
	}
	base := c.URL("r1")
	c.StartRouter("r1")
	c.WaitReady("r1")

	// One good create, so that the alias below is taken.
	if st, _, raw, err := shorten(base, `{"url": "https://example.com/taken", "alias": "taken-alias"}`); err != nil || st != http.StatusCreated {
		t.Fatalf("setup create: status %d, %s, %v", st, raw, err)
	}
	// Unknown codes: 404 with a JSON error. These run before the log sizes
	// are taken: a shard leader's first linearizable read of its term
	// appends a Barrier entry, which is not a stored record.
	check404 := func() {
		for _, path := range []string{"/nosuchcode1", "/zzzzzzz", "/api/v1/links/nosuchcode1"} {
			resp, err := client.Get(base + path)
			if err != nil {
				t.Fatalf("get %s: %v", path, err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s: status %d, want 404: %s", path, resp.StatusCode, raw)
				continue
			}
			checkJSONError(t, resp, raw)
		}
	}
	check404()
	before := logSizes(t, c)

	long := "https://example.com/" + strings.Repeat("a", 2100)
	cases := []struct {
		name        string
		contentType string
		body        string
		want        int
	}{
		{"malformed json", "application/json", `{"url": `, 400},
		{"not an object", "application/json", `["https://example.com"]`, 400},
		{"missing url", "application/json", `{}`, 400},
		{"empty url", "application/json", `{"url": ""}`, 400},
		{"relative url", "application/json", `{"url": "/just/a/path"}`, 400},
		{"ftp scheme", "application/json", `{"url": "ftp://example.com/file"}`, 400},
		{"javascript scheme", "application/json", `{"url": "javascript:alert(1)"}`, 400},
		{"no host", "application/json", `{"url": "http:///path"}`, 400},
		{"space in url", "application/json", `{"url": "https://example.com/a b"}`, 400},
		{"control char", "application/json", `{"url": "https://example.com/\u0001"}`, 400},
		{"url too long", "application/json", `{"url": "` + long + `"}`, 400},
		{"link to ourselves", "application/json", `{"url": "` + base + `/abc"}`, 400},
		{"alias too short", "application/json", `{"url": "https://example.com/", "alias": "ab"}`, 400},
		{"alias bad chars", "application/json", `{"url": "https://example.com/", "alias": "a/b/c"}`, 400},
		{"alias reserved", "application/json", `{"url": "https://example.com/", "alias": "healthz"}`, 400},
		{"alias reserved any case", "application/json", `{"url": "https://example.com/", "alias": "API"}`, 400},
		{"alias taken", "application/json", `{"url": "https://example.com/other", "alias": "taken-alias"}`, 409},
		{"wrong type", "application/json", `{"url": 42}`, 400},
		{"unknown field", "application/json", `{"url": "https://example.com/", "bogus": 1}`, 400},
		{"form content type", "application/x-www-form-urlencoded", `url=https://example.com/`, 415},
		{"body over 8 KiB", "application/json", `{"url": "https://example.com/", "alias": "` + strings.Repeat("x", 9000) + `"}`, 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := client.Post(base+"/api/v1/links", tc.contentType, strings.NewReader(tc.body))
			if err != nil {
				t.Fatalf("post: %v", err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, raw)
			}
			checkJSONError(t, resp, raw)
		})
	}

	check404()
	after := logSizes(t, c)
	for shard, n := range before {
		if after[shard] != n {
			t.Errorf("shard %d: Raft log grew from %d to %d entries during bad requests", shard, n, after[shard])
		}
	}
}

func checkJSONError(t *testing.T, resp *http.Response, raw []byte) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
		t.Errorf("body is not a JSON error {\"error\":{\"code\",\"message\"}}: %s", raw)
	}
}

// logSizes returns each shard's last Raft index at its leader.
func logSizes(t *testing.T, c *proctest.Cluster) map[uint64]uint64 {
	t.Helper()
	sizes := make(map[uint64]uint64)
	for _, shard := range c.Shards() {
		st, err := c.NodeStatus(c.WaitLeader(shard), shard)
		if err != nil {
			t.Fatalf("status of shard %d: %v", shard, err)
		}
		sizes[shard] = st.LastIndex
	}
	return sizes
}
