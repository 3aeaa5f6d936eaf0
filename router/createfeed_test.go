package router

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestCreatedLinksAreFeedBacked: the links router B creates (through its
// bulk API, the binary bulk create RPC, and alone, the create RPC) come
// back tagged with the index of the entry that applied them, so B caches
// them feed-backed from the create answer on:
// with a 1 s cache TTL, B redirects them for several TTLs without asking a
// shard. (Cached on the TTL alone, as before the tag, each would be
// resolved again once its TTL passed.)
func TestCreatedLinksAreFeedBacked(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	const ttl = time.Second
	_, _, _, bBase, gate := feedCluster(t, ttl)
	var items []string
	for i := range 6 {
		items = append(items, fmt.Sprintf(`{"url": "https://example.com/created/%d"}`, i))
	}
	resp, err := httpClient.Post(bBase+pathBulk, "application/json", stringsReader(bulkBody(items...)))
	if err != nil {
		t.Fatal(err)
	}
	var got bulkAnswer
	if err := decodeBody(resp, &got); err != nil || resp.StatusCode != http.StatusOK || got.Succeeded != len(items) {
		t.Fatalf("bulk create at B: %d %+v %v", resp.StatusCode, got, err)
	}
	// Single creates, sent alone (nothing else in flight): the create RPC.
	single := map[string]string{}
	for i := range 3 {
		url := fmt.Sprintf("https://example.com/created/single/%d", i)
		single[createAt(t, bBase, url)] = url
	}
	before := gate.resolves.Load()
	for start := time.Now(); time.Since(start) < 3*ttl; time.Sleep(50 * time.Millisecond) {
		for i, r := range got.Results {
			redirectsTo(t, bBase, r.Link.Code, fmt.Sprintf("https://example.com/created/%d", i))
		}
		for code, url := range single {
			redirectsTo(t, bBase, code, url)
		}
	}
	if n := gate.resolves.Load() - before; n != 0 {
		t.Fatalf("router B resolved %d times for the links it created, over 3 cache TTLs", n)
	}
}
