package router

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzEditBody: decodeEdit never panics, and what it accepts is an edit
// of at least one field with values a create would accept.
func FuzzEditBody(f *testing.F) {
	for _, s := range []string{
		`{"url": "https://example.com/"}`, `{"title": null, "tags": ["a", "b"]}`, `{"ttl": "1h"}`,
		`{"expires_at": "2099-01-01T00:00:00Z", "max_clicks": 0}`, `{"redirect_status": 308}`, `{}`, `[]`, `null`,
		`{"url": null}`, `{"tags": [null]}`, `{"ttl": "1h", "expires_at": null}`, `{"max_clicks": -1}`,
	} {
		f.Add(s)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, body string) {
		req, status, code, msg := decodeEdit([]byte(body), now, []string{"https://short.test"})
		if status != 0 {
			if status < 400 || status >= 500 || code == "" || msg == "" {
				t.Fatalf("refusal %d %q %q", status, code, msg)
			}
			return
		}
		if req.URL == nil && req.Title == nil && req.Tags == nil && req.ExpiresAtMs == nil && req.MaxClicks == nil && req.RedirectStatus == nil {
			t.Fatalf("accepted an edit of nothing: %q", body)
		}
		if req.URL != nil && *req.URL == "" || req.ExpiresAtMs != nil && *req.ExpiresAtMs < 0 {
			t.Fatalf("accepted %q as %+v", body, req)
		}
	})
}

// FuzzBulkBody: decodeBulk never panics and accepts only 1 to
// MaxBulkLinks items.
func FuzzBulkBody(f *testing.F) {
	for _, s := range []string{
		`{"links": [{"url": "https://example.com/"}]}`, `{"links": []}`, `{"links": null}`, `{}`, `[]`,
		`{"links": [1, "a", null]}`, `{"links": [{}], "x": 1}`, `{"links": [{"url": "https://a/"}]} {}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		links, status, code, msg := decodeBulk([]byte(body))
		if status != 0 {
			if status < 400 || status >= 500 || code == "" || msg == "" || links != nil {
				t.Fatalf("refusal %d %q %q", status, code, msg)
			}
			return
		}
		if len(links) == 0 || len(links) > MaxBulkLinks {
			t.Fatalf("accepted %d links", len(links))
		}
		for _, l := range links {
			if !json.Valid(l) {
				t.Fatalf("item %q is not JSON", l)
			}
		}
	})
}
