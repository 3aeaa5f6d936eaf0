package router

import (
	"net/http"
	"strings"
	"testing"

	"github.com/linkraft/linkraft/config"
)

// Keys of the auth tests.
const (
	keyAlice = "lrk_alice-test-key"
	keyBob   = "lrk_bob-test-key"
	keyAdmin = "lrk_admin-test-key"
)

func keysConfig(t *testing.T) *config.Config {
	cfg := testConfig(t, 1000)
	cfg.APIKeys = []config.APIKey{
		{ID: "alice", Hash: config.HashAPIKey(keyAlice)},
		{ID: "bob", Hash: config.HashAPIKey(keyBob)},
		{ID: "root", Hash: config.HashAPIKey(keyAdmin), Admin: true},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func bearer(key string) []string { return []string{"Authorization", "Bearer " + key} }

// TestAuthCreateNeedsAKey: with keys configured a create without a valid
// key is a 401 JSON error with a WWW-Authenticate challenge that stores
// nothing; with one, the link records the key's ID as its owner.
func TestAuthCreateNeedsAKey(t *testing.T) {
	tr := startRouter(t, keysConfig(t))
	body := `{"url": "https://example.com/auth"}`
	for _, tc := range []struct {
		name    string
		header  []string
		invalid bool
	}{
		{"no key", nil, false},
		{"wrong key", bearer("lrk_nope"), true},
		{"empty bearer", []string{"Authorization", "Bearer "}, true},
		{"basic scheme", []string{"Authorization", "Basic YWxpY2U6eA=="}, true},
		{"key as the scheme", []string{"Authorization", keyAlice}, true},
		{"wrong X-API-Key", []string{"X-API-Key", keyAlice + "x"}, true},
		{"hash instead of key", bearer(config.HashAPIKey(keyAlice)), true},
	} {
		a := tr.do(t, http.MethodPost, "/api/v1/links", "application/json", body, tc.header...)
		if a.status != http.StatusUnauthorized || errorCode(t, a) != codeUnauthorized {
			t.Fatalf("%s: %d %s", tc.name, a.status, a.body)
		}
		ch := a.header.Get("WWW-Authenticate")
		if !strings.HasPrefix(ch, `Bearer realm="linkraft"`) || strings.Contains(ch, "invalid_token") != tc.invalid {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, ch)
		}
	}
	if creates, _ := tr.fake.counts(); creates != 0 {
		t.Fatalf("unauthenticated creates reached the shards: %d", creates)
	}
	for _, h := range [][]string{bearer(keyAlice), {"authorization", "bEaReR  " + keyAlice + " "}, {"X-API-Key", keyAlice}} {
		a := tr.do(t, http.MethodPost, "/api/v1/links", "application/json", `{"url": "https://example.com/a`+h[0]+`"}`, h...)
		if a.status != http.StatusCreated {
			t.Fatalf("create with %q: %d %s", h, a.status, a.body)
		}
		if l := decode[linkResponse](t, a); l.Owner != "alice" || tr.fake.lastCreate().req.Owner != "alice" {
			t.Fatalf("create with %q: owner %q, sent %q", h, l.Owner, tr.fake.lastCreate().req.Owner)
		}
	}
	// Bad input from a valid key is still a 400 that stores nothing.
	before, _ := tr.fake.counts()
	if a := tr.do(t, http.MethodPost, "/api/v1/links", "application/json", `{"url": "x"}`, bearer(keyAlice)...); a.status != http.StatusBadRequest {
		t.Fatalf("bad URL with a key: %d", a.status)
	}
	if after, _ := tr.fake.counts(); after != before {
		t.Fatalf("a bad create reached the shards")
	}
}

// TestAuthOwnerOnly: reading, stats and delete need the owner's key or an
// admin key; someone else's link answers exactly like a missing one.
// Redirects and QR codes stay public.
func TestAuthOwnerOnly(t *testing.T) {
	tr := startRouter(t, keysConfig(t))
	a := tr.do(t, http.MethodPost, "/api/v1/links", "application/json", `{"url": "https://example.com/mine", "title": "mine"}`, bearer(keyAlice)...)
	if a.status != http.StatusCreated {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	code := decode[linkResponse](t, a).Code
	missing := tr.ring.Codec().Encode(12345)

	// (Stats go through the same check; the fake has no click counts,
	// so TestAuthOnRealCluster covers them.)
	for _, path := range []string{"/api/v1/links/" + code} {
		if a := tr.do(t, http.MethodGet, path, "", ""); a.status != http.StatusUnauthorized || errorCode(t, a) != codeUnauthorized {
			t.Errorf("GET %s without a key: %d %s", path, a.status, a.body)
		}
		for _, key := range []string{keyAlice, keyAdmin} {
			if a := tr.do(t, http.MethodGet, path, "", "", bearer(key)...); a.status != http.StatusOK {
				t.Errorf("GET %s with %s: %d %s", path, key, a.status, a.body)
			}
		}
		other := tr.do(t, http.MethodGet, path, "", "", bearer(keyBob)...)
		none := tr.do(t, http.MethodGet, strings.Replace(path, code, missing, 1), "", "", bearer(keyBob)...)
		if other.status != http.StatusNotFound || other.body != none.body || other.header.Get("Content-Type") != none.header.Get("Content-Type") {
			t.Errorf("GET %s by another key: %d %q; a missing code: %d %q", path, other.status, other.body, none.status, none.body)
		}
	}
	if l := decode[linkResponse](t, tr.do(t, http.MethodGet, "/api/v1/links/"+code, "", "", bearer(keyAdmin)...)); l.Owner != "alice" || l.Title != "mine" {
		t.Errorf("admin's view: %+v", l)
	}
	// Stats without a key: 401 before anything else, even a bad range.
	for _, q := range []string{"", "?from=bad"} {
		if a := tr.do(t, http.MethodGet, "/api/v1/links/"+code+"/stats"+q, "", ""); a.status != http.StatusUnauthorized {
			t.Errorf("stats%s without a key: %d %s", q, a.status, a.body)
		}
	}
	// Public: the redirect and the QR code.
	if a := tr.do(t, http.MethodGet, "/"+code, "", ""); a.status != http.StatusMovedPermanently {
		t.Errorf("redirect without a key: %d", a.status)
	}
	if a := tr.do(t, http.MethodGet, "/api/v1/links/"+code+"/qr", "", ""); a.status != http.StatusOK {
		t.Errorf("QR without a key: %d %s", a.status, a.body)
	}
	// Delete: 401 without a key, 404 for bob (and the link stays), 204 for alice.
	if a := tr.do(t, http.MethodDelete, "/api/v1/links/"+code, "", ""); a.status != http.StatusUnauthorized {
		t.Errorf("DELETE without a key: %d", a.status)
	}
	if a := tr.do(t, http.MethodDelete, "/api/v1/links/"+code, "", "", bearer(keyBob)...); a.status != http.StatusNotFound || errorCode(t, a) != codeNotFound {
		t.Errorf("DELETE by bob: %d %s", a.status, a.body)
	}
	if a := tr.do(t, http.MethodGet, "/"+code, "", ""); a.status != http.StatusMovedPermanently {
		t.Fatalf("bob's refused delete removed the link: %d", a.status)
	}
	if a := tr.do(t, http.MethodDelete, "/api/v1/links/"+code, "", "", bearer(keyAlice)...); a.status != http.StatusNoContent {
		t.Errorf("DELETE by alice: %d %s", a.status, a.body)
	}
	if a := tr.do(t, http.MethodGet, "/"+code, "", ""); a.status != http.StatusGone {
		t.Errorf("redirect after delete: %d", a.status)
	}
	// An admin deletes anyone's link.
	b := decode[linkResponse](t, tr.do(t, http.MethodPost, "/api/v1/links", "application/json", `{"url": "https://example.com/bobs"}`, bearer(keyBob)...))
	if a := tr.do(t, http.MethodDelete, "/api/v1/links/"+b.Code, "", "", bearer(keyAdmin)...); a.status != http.StatusNoContent {
		t.Errorf("DELETE by admin: %d %s", a.status, a.body)
	}
}

// TestAuthReuseIsPerCaller: reuse returns the caller's own link of the
// URL, never another key's.
func TestAuthReuseIsPerCaller(t *testing.T) {
	tr := startRouter(t, keysConfig(t))
	post := func(key string) linkResponse {
		a := tr.do(t, http.MethodPost, "/api/v1/links", "application/json", `{"url": "https://example.com/shared", "reuse": true}`, bearer(key)...)
		if a.status != http.StatusCreated && a.status != http.StatusOK {
			t.Fatalf("create: %d %s", a.status, a.body)
		}
		return decode[linkResponse](t, a)
	}
	a1, b1, a2, b2 := post(keyAlice), post(keyBob), post(keyAlice), post(keyBob)
	if a1.Code == b1.Code || a1.Code != a2.Code || b1.Code != b2.Code || a2.Owner != "alice" || b2.Owner != "bob" {
		t.Fatalf("alice %s then %s, bob %s then %s", a1.Code, a2.Code, b1.Code, b2.Code)
	}
}

// TestNoKeysIsOpen: without api_keys nothing asks for a key, and links
// have no owner.
func TestNoKeysIsOpen(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	a := tr.post(t, `{"url": "https://example.com/open"}`)
	if a.status != http.StatusCreated || strings.Contains(a.body, "owner") {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	code := decode[linkResponse](t, a).Code
	// A key sent anyway is ignored.
	if a := tr.do(t, http.MethodGet, "/api/v1/links/"+code, "", "", bearer("whatever")...); a.status != http.StatusOK {
		t.Fatalf("GET: %d", a.status)
	}
	if a := tr.do(t, http.MethodDelete, "/api/v1/links/"+code, "", ""); a.status != http.StatusNoContent {
		t.Fatalf("DELETE: %d", a.status)
	}
}
