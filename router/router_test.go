package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linkraft/linkraft/shardrpc"
)

type created struct {
	Code      string `json:"code"`
	ShortURL  string `json:"short_url"`
	URL       string `json:"url"`
	CreatedAt string `json:"created_at"`
	Alias     *bool  `json:"alias"`
}

func decode[T any](t *testing.T, a answer) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(a.body), &v); err != nil {
		t.Fatalf("decode %q: %v", a.body, err)
	}
	return v
}

// errorCode checks that a is a JSON error and returns its code.
func errorCode(t *testing.T, a answer) string {
	t.Helper()
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json (body %q)", ct, a.body)
	}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(a.body), &body); err != nil || body.Error.Code == "" || body.Error.Message == "" {
		t.Errorf("body is not a JSON error: %q", a.body)
	}
	return body.Error.Code
}

func TestCreateAndRedirect(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	a := tr.post(t, `{"url": "HTTPS://Example.COM:443/a/long/path?x=1"}`)
	if a.status != http.StatusCreated {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	c := decode[created](t, a)
	if c.URL != "https://example.com/a/long/path?x=1" {
		t.Errorf("url %q, want the normalized URL", c.URL)
	}
	if c.ShortURL != "http://short.test/"+c.Code || len(c.Code) != 7 {
		t.Errorf("code %q short_url %q", c.Code, c.ShortURL)
	}
	if c.CreatedAt != "2026-11-27T06:00:00Z" {
		t.Errorf("created_at %q", c.CreatedAt)
	}
	if c.Alias != nil {
		t.Errorf("create answer has alias %v", *c.Alias)
	}
	call := tr.fake.lastCreate()
	if len(call.req.RequestID) != 32 || call.req.Partition != tr.ring.PartitionOfURL(c.URL) || call.shard != tr.ring.ShardOf(call.req.Partition) {
		t.Errorf("create call %+v", call)
	}

	for _, method := range []string{http.MethodGet, http.MethodHead} {
		r := tr.do(t, method, "/"+c.Code, "", "")
		if r.status != http.StatusMovedPermanently || r.header.Get("Location") != c.URL {
			t.Errorf("%s /%s: %d Location %q", method, c.Code, r.status, r.header.Get("Location"))
		}
	}
	if _, resolves := tr.fake.counts(); resolves != 0 {
		t.Errorf("%d resolves: a created link must be cached", resolves)
	}

	info := tr.do(t, http.MethodGet, "/api/v1/links/"+c.Code, "", "")
	if info.status != http.StatusOK {
		t.Fatalf("info: %d %s", info.status, info.body)
	}
	got := decode[created](t, info)
	if got.Code != c.Code || got.URL != c.URL || got.ShortURL != c.ShortURL || got.CreatedAt != c.CreatedAt || got.Alias == nil || *got.Alias {
		t.Errorf("info %+v, want %+v with alias false", got, c)
	}
}

func TestCreateAlias(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	a := tr.post(t, `{"url": "https://example.com/launch", "alias": "launch-day"}`)
	if a.status != http.StatusCreated {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	if c := decode[created](t, a); c.Code != "launch-day" || c.ShortURL != "http://short.test/launch-day" {
		t.Errorf("answer %+v", c)
	}
	call := tr.fake.lastCreate()
	if call.req.Alias != "launch-day" || call.req.Partition != tr.ring.PartitionOfCode("launch-day") {
		t.Errorf("create call %+v, want the alias placed by its hash", call)
	}
	// An alias of the generated shape goes to the partition of its ID.
	shaped := tr.codec.Encode(12345)
	a = tr.post(t, fmt.Sprintf(`{"url": "https://example.com/shaped", "alias": %q}`, shaped))
	if a.status != http.StatusCreated {
		t.Fatalf("create shaped alias: %d %s", a.status, a.body)
	}
	want, _ := tr.codec.PartitionOfCode(shaped)
	if call := tr.fake.lastCreate(); call.req.Partition != want || call.shard != tr.ring.ShardOf(want) {
		t.Errorf("shaped alias placed in partition %d shard %d, want %d", call.req.Partition, call.shard, want)
	}
	info := decode[created](t, tr.do(t, http.MethodGet, "/api/v1/links/launch-day", "", ""))
	if info.Alias == nil || !*info.Alias {
		t.Errorf("info of an alias: %+v", info)
	}
	// Taken.
	a = tr.post(t, `{"url": "https://example.com/other", "alias": "launch-day"}`)
	if a.status != http.StatusConflict || errorCode(t, a) != codeAliasTaken {
		t.Errorf("taken alias: %d %s", a.status, a.body)
	}
	if r := tr.do(t, http.MethodGet, "/launch-day", "", ""); r.header.Get("Location") != "https://example.com/launch" {
		t.Errorf("the taken alias changed target: %q", r.header.Get("Location"))
	}
}

func TestCreateReuse(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	first := tr.post(t, `{"url": "https://example.com/r"}`)
	again := tr.post(t, `{"url": "https://EXAMPLE.com/r", "reuse": true}`)
	if first.status != http.StatusCreated || again.status != http.StatusOK {
		t.Fatalf("statuses %d then %d, want 201 then 200", first.status, again.status)
	}
	if a, b := decode[created](t, first), decode[created](t, again); a.Code != b.Code {
		t.Errorf("reuse gave %q, first link %q", b.Code, a.Code)
	}
	if call := tr.fake.lastCreate(); !call.req.Reuse {
		t.Error("reuse not passed to the shard")
	}
	other := tr.post(t, `{"url": "https://example.com/r"}`)
	if other.status != http.StatusCreated || decode[created](t, other).Code == decode[created](t, first).Code {
		t.Errorf("without reuse: %d %s", other.status, other.body)
	}
}

func TestBadInputStoresNothing(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	long := "https://example.com/" + strings.Repeat("a", 2100)
	cases := []struct {
		name        string
		method      string
		contentType string
		body        string
		status      int
		code        string
	}{
		{"empty body", "POST", "application/json", ``, 400, codeInvalidJSON},
		{"malformed json", "POST", "application/json", `{"url": `, 400, codeInvalidJSON},
		{"syntax error", "POST", "application/json", `{"url" "x"}`, 400, codeInvalidJSON},
		{"not an object", "POST", "application/json", `["https://example.com"]`, 400, codeInvalidJSON},
		{"null", "POST", "application/json", `null`, 400, codeInvalidJSON},
		{"string", "POST", "application/json", `"https://example.com"`, 400, codeInvalidJSON},
		{"two objects", "POST", "application/json", `{"url": "https://example.com/"} {}`, 400, codeInvalidJSON},
		{"trailing garbage", "POST", "application/json", `{"url": "https://example.com/"} x`, 400, codeInvalidJSON},
		{"missing url", "POST", "application/json", `{}`, 400, codeInvalidURL},
		{"null url", "POST", "application/json", `{"url": null}`, 400, codeInvalidURL},
		{"empty url", "POST", "application/json", `{"url": ""}`, 400, codeInvalidURL},
		{"relative url", "POST", "application/json", `{"url": "/just/a/path"}`, 400, codeInvalidURL},
		{"ftp scheme", "POST", "application/json", `{"url": "ftp://example.com/file"}`, 400, codeInvalidURL},
		{"javascript scheme", "POST", "application/json", `{"url": "javascript:alert(1)"}`, 400, codeInvalidURL},
		{"no host", "POST", "application/json", `{"url": "http:///path"}`, 400, codeInvalidURL},
		{"space in url", "POST", "application/json", `{"url": "https://example.com/a b"}`, 400, codeInvalidURL},
		{"control char", "POST", "application/json", `{"url": "https://example.com/\u0001"}`, 400, codeInvalidURL},
		{"url too long", "POST", "application/json", `{"url": "` + long + `"}`, 400, codeInvalidURL},
		{"credentials", "POST", "application/json", `{"url": "https://a:b@example.com/"}`, 400, codeInvalidURL},
		{"link to ourselves", "POST", "application/json", `{"url": "http://short.test/abc"}`, 400, codeInvalidURL},
		{"link to another router", "POST", "application/json", `{"url": "https://S.example:8443/abc"}`, 400, codeInvalidURL},
		{"alias too short", "POST", "application/json", `{"url": "https://example.com/", "alias": "ab"}`, 400, codeInvalidAlias},
		{"alias too long", "POST", "application/json", `{"url": "https://example.com/", "alias": "` + strings.Repeat("a", 65) + `"}`, 400, codeInvalidAlias},
		{"alias bad chars", "POST", "application/json", `{"url": "https://example.com/", "alias": "a/b/c"}`, 400, codeInvalidAlias},
		{"alias unicode", "POST", "application/json", `{"url": "https://example.com/", "alias": "café"}`, 400, codeInvalidAlias},
		{"alias reserved", "POST", "application/json", `{"url": "https://example.com/", "alias": "healthz"}`, 400, codeInvalidAlias},
		{"alias reserved any case", "POST", "application/json", `{"url": "https://example.com/", "alias": "API"}`, 400, codeInvalidAlias},
		{"wrong url type", "POST", "application/json", `{"url": 42}`, 400, codeInvalidJSON},
		{"wrong alias type", "POST", "application/json", `{"url": "https://example.com/", "alias": ["x"]}`, 400, codeInvalidJSON},
		{"wrong reuse type", "POST", "application/json", `{"url": "https://example.com/", "reuse": "yes"}`, 400, codeInvalidJSON},
		{"unknown field", "POST", "application/json", `{"url": "https://example.com/", "bogus": 1}`, 400, codeUnknownField},
		{"field in other case", "POST", "application/json", `{"URL": "https://example.com/"}`, 400, codeUnknownField},
		{"form content type", "POST", "application/x-www-form-urlencoded", `url=https://example.com/`, 415, codeUnsupportedMedia},
		{"no content type", "POST", "", `{"url": "https://example.com/"}`, 415, codeUnsupportedMedia},
		{"json-ish content type", "POST", "application/jsonx", `{"url": "https://example.com/"}`, 415, codeUnsupportedMedia},
		{"body over 8 KiB", "POST", "application/json", `{"url": "https://example.com/", "alias": "` + strings.Repeat("x", 9000) + `"}`, 413, codeBodyTooLarge},
		{"body far over the limit", "POST", "application/json", `{"url": "https://example.com/", "alias": "` + strings.Repeat("x", 200<<10) + `"}`, 413, codeBodyTooLarge},
		{"PUT on links", "PUT", "application/json", `{"url": "https://example.com/"}`, 405, codeMethodNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := tr.do(t, tc.method, "/api/v1/links", tc.contentType, tc.body)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			if code := errorCode(t, a); code != tc.code {
				t.Errorf("error code %q, want %q (%s)", code, tc.code, a.body)
			}
			if tc.status == 405 && a.header.Get("Allow") != "GET, HEAD, POST" {
				t.Errorf("Allow %q", a.header.Get("Allow"))
			}
		})
	}
	if creates, resolves := tr.fake.counts(); creates != 0 || resolves != 0 {
		t.Fatalf("bad input reached the shards: %d creates, %d resolves", creates, resolves)
	}
	// The connection-level 413 did not break the server.
	if a := tr.post(t, `{"url": "https://example.com/"}`); a.status != http.StatusCreated {
		t.Fatalf("good create after bad ones: %d %s", a.status, a.body)
	}
}

func TestContentTypeWithParameters(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	for _, ct := range []string{"application/json; charset=utf-8", "Application/JSON", "application/json ;charset=UTF-8"} {
		a := tr.do(t, http.MethodPost, "/api/v1/links", ct, `{"url": "https://example.com/ct"}`)
		if a.status != http.StatusCreated {
			t.Errorf("Content-Type %q: %d %s", ct, a.status, a.body)
		}
	}
}

func TestNotFound(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	// Shaped like a code: asked at the shard, confirmed unknown.
	for _, path := range []string{"/nosuchcode1", "/zzzzzzz", "/api/v1/links/nosuchcode1"} {
		a := tr.do(t, http.MethodGet, path, "", "")
		if a.status != http.StatusNotFound || errorCode(t, a) != codeNotFound {
			t.Errorf("GET %s: %d %s", path, a.status, a.body)
		}
	}
	_, resolves := tr.fake.counts()
	if resolves != 3 {
		t.Errorf("%d resolves, want 3", resolves)
	}
	// Not shaped like a code (or a reserved word): no call at all.
	for _, path := range []string{"/ab", "/a.b", "/" + strings.Repeat("x", 65), "/caf%C3%A9", "/api", "/API", "/status", "/api/v1/links/a.b", "/api/v1/links/", "/api/v1/nothing", "/a/b", "/"} {
		a := tr.do(t, http.MethodGet, path, "", "")
		if a.status != http.StatusNotFound || errorCode(t, a) != codeNotFound {
			t.Errorf("GET %s: %d %s", path, a.status, a.body)
		}
	}
	if _, n := tr.fake.counts(); n != resolves {
		t.Errorf("%d resolves for paths that cannot be codes", n-resolves)
	}
	// A browser gets a page.
	a := tr.do(t, http.MethodGet, "/nosuchcode1", "", "", "Accept", "text/html,application/xhtml+xml;q=0.9")
	if a.status != http.StatusNotFound || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") || !strings.Contains(a.body, "Link not found") {
		t.Errorf("browser 404: %d %q %q", a.status, a.header.Get("Content-Type"), a.body)
	}
	// Wrong method on a code.
	a = tr.do(t, http.MethodDelete, "/nosuchcode1", "", "")
	if a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != "GET, HEAD" || errorCode(t, a) != codeMethodNotAllowed {
		t.Errorf("DELETE: %d %v %s", a.status, a.header, a.body)
	}
}

func TestRedirectMissResolvesOnceThenCaches(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	// A link created elsewhere (another router): not in this cache.
	link, err := tr.fake.Create(context.Background(), tr.ring.ShardOf(tr.ring.PartitionOfCode("elsewhere")),
		shardrpc.CreateRequest{Partition: tr.ring.PartitionOfCode("elsewhere"), URL: "https://example.com/e", Alias: "elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		a := tr.do(t, http.MethodGet, "/"+link.Code, "", "")
		if a.status != http.StatusMovedPermanently || a.header.Get("Location") != link.URL {
			t.Fatalf("redirect: %d %q", a.status, a.header.Get("Location"))
		}
	}
	if _, resolves := tr.fake.counts(); resolves != 1 {
		t.Errorf("%d resolves for 3 redirects, want 1", resolves)
	}
	if tr.CacheLen() != 1 {
		t.Errorf("cache holds %d entries", tr.CacheLen())
	}
}

func TestCacheDisabled(t *testing.T) {
	tr := startRouter(t, testConfig(t, 0))
	c := decode[created](t, tr.post(t, `{"url": "https://example.com/nocache"}`))
	for i := 0; i < 3; i++ {
		if a := tr.do(t, http.MethodGet, "/"+c.Code, "", ""); a.status != http.StatusMovedPermanently {
			t.Fatalf("redirect: %d", a.status)
		}
	}
	if _, resolves := tr.fake.counts(); resolves != 3 {
		t.Errorf("%d resolves with the cache off, want 3", resolves)
	}
}

func TestRedirectStatusFromConfig(t *testing.T) {
	cfg := testConfig(t, 1000)
	cfg.Cluster.RedirectStatus = 307
	tr := startRouter(t, cfg)
	c := decode[created](t, tr.post(t, `{"url": "https://example.com/307"}`))
	if a := tr.do(t, http.MethodGet, "/"+c.Code, "", ""); a.status != 307 {
		t.Fatalf("status %d, want 307", a.status)
	}
	cfg = testConfig(t, 1000)
	cfg.Cluster.RedirectStatus = 303
	if _, err := New(cfg, "r1", newFakeShards(tr.ring), Options{}); err == nil {
		t.Fatal("redirect status 303 accepted")
	}
	if _, err := New(testConfig(t, 1), "r9", newFakeShards(tr.ring), Options{}); err == nil {
		t.Fatal("unknown router accepted")
	}
}

func TestShardErrors(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("x: %w", shardrpc.ErrUnavailable), 503, codeUnavailable},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), 503, codeUnavailable},
		{fmt.Errorf("x: %w", shardrpc.ErrPartitionFull), 507, codePartitionFull},
		{fmt.Errorf("x: %w", shardrpc.ErrAliasTaken), 409, codeAliasTaken},
		{&shardrpc.RemoteError{Node: "n1", Status: 400, Body: shardrpc.ErrorBody{Code: shardrpc.ErrCodeBadRequest, Message: "url refused by the node"}}, 400, codeInvalidRequest},
		{fmt.Errorf("x: %w", shardrpc.ErrWrongShard), 502, codeUpstream},
		{errors.New("something else"), 502, codeUpstream},
	}
	for _, tc := range cases {
		tr.fake.set(func(f *fakeShards) { f.createErr = tc.err })
		a := tr.post(t, `{"url": "https://example.com/e"}`)
		if a.status != tc.status || errorCode(t, a) != tc.code {
			t.Errorf("create error %v: %d %s, want %d %s", tc.err, a.status, a.body, tc.status, tc.code)
		}
		if tc.status == 503 && a.header.Get("Retry-After") == "" {
			t.Errorf("503 without Retry-After")
		}
	}
	tr.fake.set(func(f *fakeShards) { f.resolveErr = fmt.Errorf("x: %w", shardrpc.ErrUnavailable) })
	for _, path := range []string{"/abcdefg", "/api/v1/links/abcdefg"} {
		if a := tr.do(t, http.MethodGet, path, "", ""); a.status != 503 || errorCode(t, a) != codeUnavailable {
			t.Errorf("GET %s with the shard down: %d %s, want 503 (never a 404)", path, a.status, a.body)
		}
	}
}

func TestPanicAnswers500AndServerLives(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	tr.fake.set(func(f *fakeShards) { f.panicOn = "boom" })
	a := tr.post(t, `{"url": "https://example.com/boom"}`)
	if a.status != http.StatusInternalServerError || errorCode(t, a) != codeInternal {
		t.Fatalf("panic: %d %s", a.status, a.body)
	}
	if a := tr.post(t, `{"url": "https://example.com/fine"}`); a.status != http.StatusCreated {
		t.Fatalf("after a panic: %d %s", a.status, a.body)
	}
}

func TestHealthAndReady(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	if a := tr.do(t, http.MethodGet, "/healthz", "", ""); a.status != 200 {
		t.Fatalf("healthz: %d", a.status)
	}
	a := tr.do(t, http.MethodGet, "/readyz", "", "")
	if a.status != 200 {
		t.Fatalf("readyz: %d %s", a.status, a.body)
	}
	tr.fake.set(func(f *fakeShards) { f.statusErr[2] = fmt.Errorf("no leader: %w", shardrpc.ErrUnavailable) })
	a = tr.do(t, http.MethodGet, "/readyz", "", "")
	if a.status != 503 || errorCode(t, a) != codeNotReady {
		t.Fatalf("readyz with shard 2 down: %d %s", a.status, a.body)
	}
	body := decode[struct {
		NotReady []uint64 `json:"not_ready"`
	}](t, a)
	if len(body.NotReady) != 1 || body.NotReady[0] != 2 {
		t.Errorf("not_ready %v, want [2]", body.NotReady)
	}
	if a := tr.do(t, http.MethodPost, "/healthz", "application/json", "{}"); a.status != 405 {
		t.Errorf("POST /healthz: %d", a.status)
	}
}

func TestShutdownBeforeServe(t *testing.T) {
	cfg := testConfig(t, 10)
	rg, _ := cfg.Ring()
	r, err := New(cfg, "r1", newFakeShards(rg), Options{IdleWorkerTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Serve(ln) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrServerClosed) {
			t.Fatalf("serve after shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve after Shutdown did not return")
	}
}
