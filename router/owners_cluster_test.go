package router

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/internal/testutil"
	"github.com/linkraft/linkraft/node/nodetest"
)

// clusterCall is one request to a router on a real cluster.
func clusterCall(t *testing.T, method, url, key, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(raw)
}

// startKeysCluster starts a 3-node cluster whose routers know the test
// keys (alice, bob, root the admin) and serves router r1; it returns r1's
// base URL and the cluster's configuration.
func startKeysCluster(t *testing.T) (string, *config.Config) {
	t.Helper()
	t.Cleanup(func() { waitWorkerCleaners(t) })
	c := nodetest.Start(t, nodetest.Options{CodeSecret: "owners-test-code"})
	c.WaitLeaders()
	cfg := *c.Config()
	cfg.APIKeys = keysConfig(t).APIKeys
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	base := startRealRouter(t, &cfg, cfg.Routers[0].ID)
	testutil.EventuallyEvery(t, 20*time.Millisecond, 30*time.Second, base+"/readyz", func() error {
		if st, _, err := get(base, "/readyz"); err != nil || st != 200 {
			return fmt.Errorf("status %d, %v", st, err)
		}
		return nil
	})
	return base, &cfg
}

// TestAuthOnRealCluster: owners through the real shards: the owner is
// stored with the link, stats and the record are the owner's (or an
// admin's), reuse is per key, and redirects stay public.
func TestAuthOnRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	base, _ := startKeysCluster(t)
	st, body := clusterCall(t, http.MethodPost, base+"/api/v1/links", keyAlice, `{"url": "https://example.com/owned", "reuse": true}`)
	if st != http.StatusCreated {
		t.Fatalf("create: %d %s", st, body)
	}
	var l linkResponse
	decodeString(t, body, &l)
	if l.Owner != "alice" {
		t.Fatalf("owner %q", l.Owner)
	}
	if st, body := clusterCall(t, http.MethodPost, base+"/api/v1/links", "", `{"url": "https://example.com/owned"}`); st != http.StatusUnauthorized {
		t.Fatalf("create without a key: %d %s", st, body)
	}
	// Reuse: alice gets hers back, bob a new one.
	_, body = clusterCall(t, http.MethodPost, base+"/api/v1/links", keyAlice, `{"url": "https://example.com/owned", "reuse": true}`)
	var again linkResponse
	decodeString(t, body, &again)
	_, body = clusterCall(t, http.MethodPost, base+"/api/v1/links", keyBob, `{"url": "https://example.com/owned", "reuse": true}`)
	var bobs linkResponse
	decodeString(t, body, &bobs)
	if again.Code != l.Code || bobs.Code == l.Code || bobs.Owner != "bob" {
		t.Fatalf("reuse: alice %s then %s, bob %s (%s)", l.Code, again.Code, bobs.Code, bobs.Owner)
	}
	for _, path := range []string{"/api/v1/links/" + l.Code, "/api/v1/links/" + l.Code + "/stats"} {
		for key, want := range map[string]int{"": 401, keyAlice: 200, keyAdmin: 200, keyBob: 404} {
			if st, body := clusterCall(t, http.MethodGet, base+path, key, ""); st != want {
				t.Errorf("GET %s with %q: %d %s, want %d", path, key, st, body, want)
			}
		}
	}
	if st, _, err := get(base, "/"+l.Code); err != nil || st != http.StatusMovedPermanently {
		t.Fatalf("public redirect: %d %v", st, err)
	}
	if st, body := clusterCall(t, http.MethodDelete, base+"/api/v1/links/"+l.Code, keyBob, ""); st != http.StatusNotFound {
		t.Fatalf("bob's delete of alice's link: %d %s", st, body)
	}
	if st, body := clusterCall(t, http.MethodDelete, base+"/api/v1/links/"+l.Code, keyAlice, ""); st != http.StatusNoContent {
		t.Fatalf("alice's delete: %d %s", st, body)
	}
}

func decodeString(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
}

// TestListOnRealCluster: links created on every shard come back through
// the real shards' list RPC newest first, across pages, with no duplicate
// and no gap; bob's links are not alice's; a deleted link leaves the list.
func TestListOnRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	base, cfg := startKeysCluster(t)
	rg, err := cfg.Ring()
	if err != nil {
		t.Fatal(err)
	}
	var alices []string
	shards := map[uint64]bool{}
	for i := range 40 {
		key := keyAlice
		if i%5 == 0 {
			key = keyBob
		}
		st, body := clusterCall(t, http.MethodPost, base+"/api/v1/links", key, fmt.Sprintf(`{"url": "https://example.com/rl/%d", "tags": ["t%d"]}`, i, i%2))
		if st != http.StatusCreated {
			t.Fatalf("create: %d %s", st, body)
		}
		var l linkResponse
		decodeString(t, body, &l)
		if key == keyAlice {
			alices = append(alices, l.Code)
			shards[rg.ShardOf(rg.PartitionOfCode(l.Code))] = true
		}
	}
	if len(shards) < 2 {
		t.Fatalf("alice's links are on %d shard(s); the test needs several", len(shards))
	}
	pages := func(query string) []linkResponse {
		var out []linkResponse
		cursor := ""
		for n := 0; n < 100; n++ {
			u := base + "/api/v1/links?" + query
			if cursor != "" {
				u += "&cursor=" + cursor
			}
			st, body := clusterCall(t, http.MethodGet, u, keyAlice, "")
			if st != http.StatusOK {
				t.Fatalf("list %s: %d %s", u, st, body)
			}
			var page listResponse
			decodeString(t, body, &page)
			out = append(out, page.Links...)
			if page.NextCursor == "" {
				return out
			}
			cursor = page.NextCursor
		}
		t.Fatalf("list %q does not end", query)
		return nil
	}
	codesOf := func(ls []linkResponse) []string {
		var c []string
		for _, l := range ls {
			c = append(c, l.Code)
		}
		return c
	}
	one := pages("limit=1000")
	for i, l := range one {
		if l.Owner != "alice" {
			t.Fatalf("listed %+v for alice", l)
		}
		if i > 0 && l.CreatedAt > one[i-1].CreatedAt {
			t.Fatalf("not newest first: %s after %s", l.CreatedAt, one[i-1].CreatedAt)
		}
	}
	sorted := func(c []string) []string { c = slices.Clone(c); slices.Sort(c); return c }
	if got := codesOf(one); !slices.Equal(sorted(got), sorted(alices)) {
		t.Fatalf("one page: %d links %v, want %v", len(got), got, alices)
	}
	for _, limit := range []int{1, 7} {
		if got := codesOf(pages(fmt.Sprintf("limit=%d", limit))); !slices.Equal(got, codesOf(one)) {
			t.Fatalf("pages of %d: %v, want %v", limit, got, codesOf(one))
		}
	}
	// Odd i carry tag t1: 16 of alice's 32 links.
	var odd []string
	for _, l := range one {
		var i int
		if _, err := fmt.Sscanf(l.URL, "https://example.com/rl/%d", &i); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			odd = append(odd, l.Code)
		}
	}
	if tagged := codesOf(pages("tag=t1&limit=3")); !slices.Equal(tagged, odd) || len(odd) != 16 {
		t.Fatalf("tag=t1: %v, want %v", tagged, odd)
	}
	// A deleted link leaves the list.
	if st, body := clusterCall(t, http.MethodDelete, base+"/api/v1/links/"+one[0].Code, keyAlice, ""); st != http.StatusNoContent {
		t.Fatalf("delete: %d %s", st, body)
	}
	if got := codesOf(pages("limit=10")); len(got) != len(alices)-1 || slices.Contains(got, one[0].Code) {
		t.Fatalf("after delete: %v", got)
	}
}
