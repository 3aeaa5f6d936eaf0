package router

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// healthCache asks GET /healthz for the cache's counts.
func healthCache(t *testing.T, tr *testRouter) cacheCounts {
	t.Helper()
	a := tr.do(t, http.MethodGet, "/healthz", "", "")
	if a.status != http.StatusOK {
		t.Fatalf("healthz: %d %s", a.status, a.body)
	}
	h := decode[healthBody](t, a)
	if h.Status != "ok" || h.Router != "r1" {
		t.Fatalf("healthz: %s", a.body)
	}
	return h.Cache
}

// bulkLinks is a bulk create body of n links with distinct URLs.
func bulkLinks(from, n int) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`{"url": "https://example.com/health/%d"}`, from+i)
	}
	return `{"links": [` + strings.Join(items, ",") + `]}`
}

func TestHealthCountsCacheEntries(t *testing.T) {
	// 20 entries: one cache part, so the capacity is exactly the size.
	tr := startRouter(t, testConfig(t, 20))
	if got := healthCache(t, tr); got != (cacheCounts{Entries: 0, Capacity: 20}) {
		t.Fatalf("empty router: %+v", got)
	}
	// Created links are cached by the router that created them.
	if a := tr.bulk(t, bulkLinks(0, 12)); a.status != http.StatusOK {
		t.Fatalf("bulk: %d %s", a.status, a.body)
	}
	if got := healthCache(t, tr); got != (cacheCounts{Entries: 12, Capacity: 20}) {
		t.Fatalf("after 12 creates: %+v", got)
	}
	// More links than it holds: the count stops at the capacity.
	if a := tr.bulk(t, bulkLinks(12, 30)); a.status != http.StatusOK {
		t.Fatalf("bulk: %d %s", a.status, a.body)
	}
	if got := healthCache(t, tr); got != (cacheCounts{Entries: 20, Capacity: 20}) {
		t.Fatalf("after 42 creates: %+v", got)
	}
}

func TestHealthLargeCacheCapacity(t *testing.T) {
	// 1000 entries spread over 32 parts of 32: the capacity is the size
	// rounded up to a multiple of the parts.
	tr := startRouter(t, testConfig(t, 1000))
	if got := healthCache(t, tr); got != (cacheCounts{Entries: 0, Capacity: 1024}) {
		t.Fatalf("empty router: %+v", got)
	}
}

func TestHealthWithoutCache(t *testing.T) {
	tr := startRouter(t, testConfig(t, 0))
	if a := tr.bulk(t, bulkLinks(0, 5)); a.status != http.StatusOK {
		t.Fatalf("bulk: %d %s", a.status, a.body)
	}
	if got := healthCache(t, tr); got != (cacheCounts{}) {
		t.Fatalf("router without a cache: %+v", got)
	}
}
