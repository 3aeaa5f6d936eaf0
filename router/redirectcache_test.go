package router

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestRedirectCacheControlValues(t *testing.T) {
	want := "private, max-age=" + strconv.Itoa(int(PermanentRedirectMaxAge/time.Second))
	if cacheControlPermanent != want {
		t.Fatalf("cacheControlPermanent %q, PermanentRedirectMaxAge says %q", cacheControlPermanent, want)
	}
}

// TestRedirectCacheControlPerStatus: every redirect status gets its
// Cache-Control, on the first redirect (asked at the shard), on cached ones
// and on HEAD.
func TestRedirectCacheControlPerStatus(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   string
	}{
		{301, "private, max-age=60"},
		{302, "no-store"},
		{307, "no-store"},
		{308, "private, max-age=60"},
	} {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			cfg := testConfig(t, 1000)
			cfg.Cluster.RedirectStatus = tc.status
			tr := startRouter(t, cfg)
			c := decode[created](t, tr.post(t, `{"url": "https://example.com/status/`+strconv.Itoa(tc.status)+`"}`))
			tr.cache.Invalidate(c.Code) // the first redirect asks the shard
			for i, method := range []string{http.MethodGet, http.MethodGet, http.MethodHead} {
				a := tr.do(t, method, "/"+c.Code, "", "")
				if a.status != tc.status || a.header.Get("Location") != "https://example.com/status/"+strconv.Itoa(tc.status) {
					t.Fatalf("%s #%d: %d Location %q", method, i, a.status, a.header.Get("Location"))
				}
				if got := a.header.Values("Cache-Control"); len(got) != 1 || got[0] != tc.want {
					t.Fatalf("%s #%d: Cache-Control %q, want %q", method, i, got, tc.want)
				}
			}
			if _, resolves := tr.fake.counts(); resolves != 1 {
				t.Fatalf("%d resolves, want 1 (then cache hits)", resolves)
			}
		})
	}
}

// TestRedirectCacheControlPerLink: a link's own redirect_status picks its
// Cache-Control, whatever the cluster's default.
func TestRedirectCacheControlPerLink(t *testing.T) {
	cfg := testConfig(t, 1000)
	cfg.Cluster.RedirectStatus = 302
	tr := startRouter(t, cfg)
	for _, tc := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"url": "https://example.com/default"}`, 302, "no-store"},
		{`{"url": "https://example.com/perm", "redirect_status": 308}`, 308, "private, max-age=60"},
		{`{"url": "https://example.com/moved", "redirect_status": 301}`, 301, "private, max-age=60"},
		{`{"url": "https://example.com/temp", "redirect_status": 307}`, 307, "no-store"},
	} {
		a := tr.post(t, tc.body)
		if a.status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", tc.body, a.status, a.body)
		}
		c := decode[created](t, a)
		for _, cached := range []bool{false, true} {
			if !cached {
				tr.cache.Invalidate(c.Code)
			}
			r := tr.do(t, http.MethodGet, "/"+c.Code, "", "")
			if r.status != tc.status || r.header.Get("Cache-Control") != tc.want {
				t.Fatalf("%s (cached %v): %d Cache-Control %q, want %d %q", tc.body, cached, r.status, r.header.Get("Cache-Control"), tc.status, tc.want)
			}
		}
	}
}
