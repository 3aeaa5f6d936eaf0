package router

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

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
// base URL.
func startKeysCluster(t *testing.T) string {
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
	eventually(t, 30*time.Second, base+"/readyz", func() error {
		if st, _, err := get(base, "/readyz"); err != nil || st != 200 {
			return fmt.Errorf("status %d, %v", st, err)
		}
		return nil
	})
	return base
}

// TestAuthOnRealCluster: owners through the real shards: the owner is
// stored with the link, stats and the record are the owner's (or an
// admin's), reuse is per key, and redirects stay public.
func TestAuthOnRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	base := startKeysCluster(t)
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
