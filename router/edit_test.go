package router

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linkraft/linkraft/internal/testutil"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
)

// Edit applies an edit to the fake's link, as the shard would.
func (f *fakeShards) Edit(_ context.Context, shard uint64, req shardrpc.EditRequest) (shardrpc.Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone[req.Code] {
		return shardrpc.Link{}, fmt.Errorf("code %q: %w", req.Code, shardrpc.ErrGone)
	}
	l, ok := f.links[req.Code]
	if !ok || f.shardOf[req.Code] != shard || req.Owner != "" && l.Owner != req.Owner {
		return shardrpc.Link{}, fmt.Errorf("code %q: %w", req.Code, shardrpc.ErrNotFound)
	}
	if req.URL != nil {
		l.URL = *req.URL
	}
	if req.ExpiresAtMs != nil {
		l.ExpiresAtMs = *req.ExpiresAtMs
	}
	if req.MaxClicks != nil {
		l.MaxClicks = *req.MaxClicks
	}
	if req.Title != nil {
		l.Title = *req.Title
	}
	if req.Tags != nil {
		l.Tags = *req.Tags
		if len(l.Tags) == 0 {
			l.Tags = nil
		}
	}
	if req.RedirectStatus != nil {
		l.RedirectStatus = *req.RedirectStatus
	}
	l.UpdatedAtMs = time.Now().UnixMilli()
	f.links[req.Code] = l
	return l, nil
}

// edited is the JSON of an edited link.
type edited struct {
	Code           string   `json:"code"`
	URL            string   `json:"url"`
	Title          string   `json:"title"`
	Tags           []string `json:"tags"`
	RedirectStatus int      `json:"redirect_status"`
	ExpiresAt      string   `json:"expires_at"`
	MaxClicks      uint64   `json:"max_clicks"`
	UpdatedAt      string   `json:"updated_at"`
}

func (tr *testRouter) patch(t *testing.T, code, body string) answer {
	t.Helper()
	return tr.do(t, http.MethodPatch, "/api/v1/links/"+code, "application/json", body)
}

func TestEditLink(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	c := decode[created](t, tr.post(t, `{"url": "https://example.com/old", "title": "Old", "tags": ["a"]}`))
	if a := tr.do(t, http.MethodGet, "/"+c.Code, "", ""); a.header.Get("Location") != "https://example.com/old" {
		t.Fatalf("redirect before the edit: %d %q", a.status, a.header.Get("Location"))
	}
	a := tr.patch(t, c.Code, `{"url": "https://EXAMPLE.com/new", "title": "New", "tags": ["x", "y"], "redirect_status": 307, "max_clicks": 5, "ttl": "1h"}`)
	if a.status != http.StatusOK {
		t.Fatalf("patch: %d %s", a.status, a.body)
	}
	e := decode[edited](t, a)
	if e.Code != c.Code || e.URL != "https://example.com/new" || e.Title != "New" || strings.Join(e.Tags, ",") != "x,y" ||
		e.RedirectStatus != 307 || e.MaxClicks != 5 || e.ExpiresAt == "" || e.UpdatedAt == "" {
		t.Fatalf("edited link %+v", e)
	}
	// This router serves the edit at once (its entry was dropped).
	if a := tr.do(t, http.MethodGet, "/"+c.Code, "", ""); a.status != 307 || a.header.Get("Location") != "https://example.com/new" {
		t.Fatalf("redirect after the edit: %d %q", a.status, a.header.Get("Location"))
	}
	// null and 0 clear; left-out fields stay.
	a = tr.patch(t, c.Code, `{"title": null, "tags": null, "redirect_status": 0, "max_clicks": null, "expires_at": null}`)
	e = decode[edited](t, a)
	if a.status != 200 || e.URL != "https://example.com/new" || e.Title != "" || e.Tags != nil || e.RedirectStatus != 0 || e.MaxClicks != 0 || e.ExpiresAt != "" {
		t.Fatalf("clearing patch: %d %s", a.status, a.body)
	}
	if a := tr.do(t, http.MethodGet, "/"+c.Code, "", ""); a.status != 301 {
		t.Fatalf("redirect status after clearing it: %d", a.status)
	}

	// Bad edits: 4xx with a JSON error, the link unchanged.
	before := tr.do(t, http.MethodGet, "/api/v1/links/"+c.Code, "", "").body
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		code                    string
	}{
		{"not json", "text/plain", `{"title": "x"}`, 415, codeUnsupportedMedia},
		{"too large", "application/json", `{"title": "` + strings.Repeat("x", MaxBodySize) + `"}`, 413, codeBodyTooLarge},
		{"malformed", "application/json", `{"title": `, 400, codeInvalidJSON},
		{"array", "application/json", `[]`, 400, codeInvalidJSON},
		{"null", "application/json", `null`, 400, codeInvalidJSON},
		{"two objects", "application/json", `{"title": "a"} {}`, 400, codeInvalidJSON},
		{"empty", "application/json", `{}`, 400, codeInvalidRequest},
		{"alias", "application/json", `{"alias": "new-alias"}`, 400, codeUnknownField},
		{"unknown", "application/json", `{"colour": "red"}`, 400, codeUnknownField},
		{"url null", "application/json", `{"url": null}`, 400, codeInvalidURL},
		{"url number", "application/json", `{"url": 5}`, 400, codeInvalidURL},
		{"bad url", "application/json", `{"url": "ftp://example.com/"}`, 400, codeInvalidURL},
		{"own domain", "application/json", `{"url": "https://short.test/x"}`, 400, codeInvalidURL},
		{"title type", "application/json", `{"title": 5}`, 400, codeInvalidTitle},
		{"title control", "application/json", `{"title": "a\u0007"}`, 400, codeInvalidTitle},
		{"tags dup", "application/json", `{"tags": ["a", "a"]}`, 400, codeInvalidTags},
		{"tags type", "application/json", `{"tags": "a"}`, 400, codeInvalidTags},
		{"tags null item", "application/json", `{"tags": ["a", null]}`, 400, codeInvalidTags},
		{"status", "application/json", `{"redirect_status": 303}`, 400, codeInvalidRedirectStatus},
		{"status type", "application/json", `{"redirect_status": "301"}`, 400, codeInvalidRedirectStatus},
		{"max_clicks negative", "application/json", `{"max_clicks": -1}`, 400, codeInvalidLimits},
		{"ttl short", "application/json", `{"ttl": "1ms"}`, 400, codeInvalidLimits},
		{"ttl type", "application/json", `{"ttl": 60}`, 400, codeInvalidLimits},
		{"expires past", "application/json", `{"expires_at": "2001-01-01T00:00:00Z"}`, 400, codeInvalidLimits},
		{"both expiries", "application/json", `{"expires_at": null, "ttl": "1h"}`, 400, codeInvalidLimits},
		{"good and bad", "application/json", `{"title": "fine", "redirect_status": 300}`, 400, codeInvalidRedirectStatus},
	} {
		a := tr.do(t, http.MethodPatch, "/api/v1/links/"+c.Code, tc.contentType, tc.body)
		if a.status != tc.status || errorCode(t, a) != tc.code {
			t.Errorf("%s: %d %.200s, want %d %s", tc.name, a.status, a.body, tc.status, tc.code)
		}
	}
	if after := tr.do(t, http.MethodGet, "/api/v1/links/"+c.Code, "", "").body; after != before {
		t.Fatalf("bad edits changed the link:\n%s\n%s", before, after)
	}

	// Unknown, impossible, deleted; a subresource.
	unknown := tr.codec.Encode(777_777)
	if a := tr.patch(t, unknown, `{"title": "x"}`); a.status != 404 || errorCode(t, a) != codeNotFound {
		t.Errorf("unknown code: %d %s", a.status, a.body)
	}
	if a := tr.patch(t, "no", `{"title": "x"}`); a.status != 404 {
		t.Errorf("impossible code: %d %s", a.status, a.body)
	}
	if a := tr.do(t, http.MethodDelete, "/api/v1/links/"+c.Code, "", ""); a.status != 204 {
		t.Fatalf("delete: %d", a.status)
	}
	if a := tr.patch(t, c.Code, `{"title": "x"}`); a.status != 410 || errorCode(t, a) != codeGone {
		t.Errorf("deleted link: %d %s", a.status, a.body)
	}
	if a := tr.do(t, http.MethodPatch, "/api/v1/links/"+c.Code+"/stats", "application/json", `{}`); a.status != 405 || a.header.Get("Allow") != allowGetHead {
		t.Errorf("PATCH of stats: %d Allow %q", a.status, a.header.Get("Allow"))
	}
}

// TestEditOnRealCluster edits links through one router of a real cluster
// and checks that the other router, which cached them, serves the new
// target within its cache TTL (the delete's bound), and that a link
// edited to a later expiry after it expired redirects again at both.
func TestEditOnRealCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	t.Cleanup(func() { waitWorkerCleaners(t) })
	c := nodetest.Start(t, nodetest.Options{Routers: 2, CodeSecret: "router-edit-code"})
	c.WaitLeaders()
	const ttl = time.Second
	_, a, _ := startClusterRouter(t, c.Config(), "r1", Options{CacheTTL: ttl, DisableClicks: true})
	_, b, _ := startClusterRouter(t, c.Config(), "r2", Options{CacheTTL: ttl, DisableClicks: true})
	for _, base := range []string{a, b} {
		testutil.EventuallyEvery(t, 20*time.Millisecond, 30*time.Second, base+"/readyz", func() error {
			if st, _, err := get(base, "/readyz"); err != nil || st != 200 {
				return fmt.Errorf("status %d, %v", st, err)
			}
			return nil
		})
	}
	create := func(body string) string {
		t.Helper()
		resp, err := httpClient.Post(a+"/api/v1/links", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var cr created
		if err := decodeBody(resp, &cr); err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("create: %d %v", resp.StatusCode, err)
		}
		return cr.Code
	}
	patch := func(base, code, body string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPatch, base+"/api/v1/links/"+code, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e edited
		if err := decodeBody(resp, &e); err != nil || resp.StatusCode != 200 {
			t.Fatalf("patch %s: %d %v", code, resp.StatusCode, err)
		}
	}
	location := func(base, code string) (int, string) {
		t.Helper()
		resp, err := httpClient.Get(base + "/" + code)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}

	code := create(`{"url": "https://example.com/edit/before", "alias": "real-edited"}`)
	for _, base := range []string{a, b} {
		if st, loc := location(base, code); st != 301 || loc != "https://example.com/edit/before" {
			t.Fatalf("redirect at %s before the edit: %d %q", base, st, loc)
		}
	}
	patch(a, code, `{"url": "https://example.com/edit/after", "redirect_status": 302}`)
	edit := time.Now()
	if st, loc := location(a, code); st != 302 || loc != "https://example.com/edit/after" {
		t.Fatalf("redirect at the editing router: %d %q", st, loc)
	}
	testutil.EventuallyEvery(t, 20*time.Millisecond, ttl+5*time.Second, "r2 to serve the edit", func() error {
		if st, loc := location(b, code); st != 302 || loc != "https://example.com/edit/after" {
			return fmt.Errorf("%d %q", st, loc)
		}
		return nil
	})
	// The bound: the TTL plus the replication lag of the replica asked;
	// a generous margin for a loaded machine.
	if took := time.Since(edit); took > ttl+2*time.Second {
		t.Errorf("r2 served the old target for %s after the edit; the bound is %s plus replication lag", took, ttl)
	}

	// Revive an expired link: both routers cached it as expired.
	short := create(`{"url": "https://example.com/edit/short", "ttl": "1s"}`)
	for _, base := range []string{a, b} {
		testutil.EventuallyEvery(t, 20*time.Millisecond, 10*time.Second, "expiry at "+base, func() error {
			if st, _ := location(base, short); st != http.StatusGone {
				return fmt.Errorf("status %d", st)
			}
			return nil
		})
	}
	patch(b, short, `{"ttl": "1h"}`)
	for _, base := range []string{a, b} {
		testutil.EventuallyEvery(t, 20*time.Millisecond, ttl+5*time.Second, "revived at "+base, func() error {
			if st, loc := location(base, short); st != 301 || loc != "https://example.com/edit/short" {
				return fmt.Errorf("%d %q", st, loc)
			}
			return nil
		})
	}
	// The record shows the edit.
	resp, err := httpClient.Get(a + "/api/v1/links/" + code)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&rec); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if rec["url"] != "https://example.com/edit/after" || rec["updated_at"] == nil {
		t.Fatalf("record after the edit: %v", rec)
	}
}

// TestAuthEditAndBulk: with API keys, PATCH and bulk creates need a valid
// key (401, nothing changed or stored); a bulk create records the key as
// every link's owner; a PATCH of another key's link is the 404 of a
// missing code and changes nothing, while the owner and an admin may edit.
func TestAuthEditAndBulk(t *testing.T) {
	tr := startRouter(t, keysConfig(t))
	body := bulkBody(`{"url": "https://example.com/auth-bulk/1"}`, `{"url": "https://example.com/auth-bulk/2"}`)
	for _, h := range [][]string{nil, bearer("wrong")} {
		if a := tr.bulk(t, body, h...); a.status != 401 || errorCode(t, a) != codeUnauthorized || a.header.Get("WWW-Authenticate") == "" {
			t.Fatalf("bulk without a valid key: %d %s", a.status, a.body)
		}
	}
	if creates, _ := tr.fake.counts(); creates != 0 {
		t.Fatalf("%d creates without a key", creates)
	}
	a := tr.bulk(t, body, bearer(keyAlice)...)
	got := decode[bulkAnswer](t, a)
	if a.status != 200 || got.Succeeded != 2 {
		t.Fatalf("bulk with a key: %d %s", a.status, a.body)
	}
	code := got.Results[0].Link.Code
	tr.fake.mu.Lock()
	owner := tr.fake.links[code].Owner
	tr.fake.mu.Unlock()
	if owner != "alice" {
		t.Fatalf("bulk-created link owned by %q, want alice", owner)
	}

	patch := func(key, body string) answer {
		t.Helper()
		var h []string
		if key != "" {
			h = bearer(key)
		}
		return tr.do(t, http.MethodPatch, "/api/v1/links/"+code, "application/json", body, h...)
	}
	if a := patch("", `{"title": "x"}`); a.status != 401 || errorCode(t, a) != codeUnauthorized {
		t.Fatalf("patch without a key: %d %s", a.status, a.body)
	}
	if a := patch(keyBob, `{"title": "bob's"}`); a.status != 404 || errorCode(t, a) != codeNotFound {
		t.Fatalf("patch of another key's link: %d %s", a.status, a.body)
	}
	if a := patch(keyAlice, `{"title": "alice's"}`); a.status != 200 || decode[edited](t, a).Title != "alice's" {
		t.Fatalf("patch by the owner: %d %s", a.status, a.body)
	}
	if a := patch(keyAdmin, `{"title": "admin's"}`); a.status != 200 || decode[edited](t, a).Title != "admin's" {
		t.Fatalf("patch by an admin: %d %s", a.status, a.body)
	}
	// The same Idempotency-Key from two callers names different creates.
	if bulkRequestID("alice", []byte("k"), 0, []byte(`{}`)) == bulkRequestID("bob", []byte("k"), 0, []byte(`{}`)) {
		t.Fatal("two callers' items share a request ID")
	}
}
