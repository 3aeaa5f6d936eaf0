package router

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestCreateWithLinkFields: title, tags and redirect_status are stored,
// shown by the create answer and the record, and the redirect uses the
// link's own status, from the cache and from the shard.
func TestCreateWithLinkFields(t *testing.T) {
	for _, cacheSize := range []int{1000, 0} {
		tr := startRouter(t, testConfig(t, cacheSize))
		a := tr.post(t, `{"url": "https://example.com/fields", "title": "Launch — day 1", "tags": ["news", "q:4.x"], "redirect_status": 307}`)
		if a.status != http.StatusCreated {
			t.Fatalf("create: %d %s", a.status, a.body)
		}
		c := decode[linkResponse](t, a)
		if c.Title != "Launch — day 1" || !slices.Equal(c.Tags, []string{"news", "q:4.x"}) || c.RedirectStatus != 307 || c.UpdatedAt != "" || c.Owner != "" {
			t.Fatalf("create answer %+v", c)
		}
		call := tr.fake.lastCreate()
		if call.req.Title != c.Title || !slices.Equal(call.req.Tags, c.Tags) || call.req.RedirectStatus != 307 {
			t.Fatalf("create call %+v", call.req)
		}
		for range 2 { // a miss (cache off, or the first GET) and a hit
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				r := tr.do(t, method, "/"+c.Code, "", "")
				if r.status != http.StatusTemporaryRedirect || r.header.Get("Location") != "https://example.com/fields" {
					t.Fatalf("cache %d: %s /%s: %d %q", cacheSize, method, c.Code, r.status, r.header.Get("Location"))
				}
			}
		}
		info := tr.do(t, http.MethodGet, "/api/v1/links/"+c.Code, "", "")
		got := decode[linkResponse](t, info)
		if info.status != http.StatusOK || got.Title != c.Title || !slices.Equal(got.Tags, c.Tags) || got.RedirectStatus != 307 {
			t.Fatalf("record: %d %s", info.status, info.body)
		}
		// Without redirect_status the cluster's default (301) applies, and
		// the record shows no status of its own.
		d := decode[linkResponse](t, tr.post(t, `{"url": "https://example.com/default"}`))
		if r := tr.do(t, http.MethodGet, "/"+d.Code, "", ""); r.status != http.StatusMovedPermanently {
			t.Fatalf("default redirect: %d", r.status)
		}
		if strings.Contains(tr.do(t, http.MethodGet, "/api/v1/links/"+d.Code, "", "").body, "redirect_status") {
			t.Fatalf("a link without its own status shows one")
		}
		for _, s := range []int{301, 302, 308} {
			l := decode[linkResponse](t, tr.post(t, `{"url": "https://example.com/s`+strconv.Itoa(s)+`", "redirect_status": `+strconv.Itoa(s)+`}`))
			for range 2 {
				if r := tr.do(t, http.MethodGet, "/"+l.Code, "", ""); r.status != s {
					t.Fatalf("redirect of a %d link: %d", s, r.status)
				}
			}
		}
	}
}

// TestBadLinkFieldsStoreNothing: every bad title, tags or redirect_status
// is a 400 with a JSON error that never reaches a shard.
func TestBadLinkFieldsStoreNothing(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	tags17 := `["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]`
	for _, tc := range []struct{ name, body, code string }{
		{"title too long", `{"url": "https://example.com/", "title": "` + strings.Repeat("t", 257) + `"}`, codeInvalidTitle},
		{"title control char", `{"url": "https://example.com/", "title": "a\nb"}`, codeInvalidTitle},
		{"title not a string", `{"url": "https://example.com/", "title": 5}`, codeInvalidJSON},
		{"tags not an array", `{"url": "https://example.com/", "tags": "news"}`, codeInvalidJSON},
		{"tag not a string", `{"url": "https://example.com/", "tags": ["a", 1]}`, codeInvalidJSON},
		{"too many tags", `{"url": "https://example.com/", "tags": ` + tags17 + `}`, codeInvalidTags},
		{"empty tag", `{"url": "https://example.com/", "tags": [""]}`, codeInvalidTags},
		{"tag too long", `{"url": "https://example.com/", "tags": ["` + strings.Repeat("t", 33) + `"]}`, codeInvalidTags},
		{"tag with space", `{"url": "https://example.com/", "tags": ["a b"]}`, codeInvalidTags},
		{"tag unicode", `{"url": "https://example.com/", "tags": ["café"]}`, codeInvalidTags},
		{"tag twice", `{"url": "https://example.com/", "tags": ["a", "a"]}`, codeInvalidTags},
		{"status 200", `{"url": "https://example.com/", "redirect_status": 200}`, codeInvalidRedirectStatus},
		{"status 303", `{"url": "https://example.com/", "redirect_status": 303}`, codeInvalidRedirectStatus},
		{"status 0", `{"url": "https://example.com/", "redirect_status": 0}`, codeInvalidRedirectStatus},
		{"status negative", `{"url": "https://example.com/", "redirect_status": -301}`, codeInvalidRedirectStatus},
		{"status string", `{"url": "https://example.com/", "redirect_status": "301"}`, codeInvalidJSON},
		{"status fraction", `{"url": "https://example.com/", "redirect_status": 301.5}`, codeInvalidJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tr.post(t, tc.body)
			if a.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", a.status, a.body)
			}
			if code := errorCode(t, a); code != tc.code {
				t.Errorf("error code %q, want %q (%s)", code, tc.code, a.body)
			}
		})
	}
	if creates, resolves := tr.fake.counts(); creates != 0 || resolves != 0 {
		t.Fatalf("bad input reached the shards: %d creates, %d resolves", creates, resolves)
	}
}
