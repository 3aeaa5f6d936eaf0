package router

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/shardrpc"
)

// List is the fake's list: the shard's links in list order, filtered like
// linkstore.List, stopping at req.Limit or, when listScan > 0, after
// examining listScan links (with a frontier), like a shard at its budget.
func (f *fakeShards) List(_ context.Context, shard uint64, req shardrpc.ListRequest) (shardrpc.ListResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return shardrpc.ListResponse{}, f.listErr
	}
	var mine []shardrpc.Link
	for code, l := range f.links {
		if f.shardOf[code] == shard {
			mine = append(mine, l)
		}
	}
	pos := func(l shardrpc.Link) linkstore.Position {
		return linkstore.Position{CreatedAtMs: l.CreatedAtMs, Code: l.Code}
	}
	slices.SortFunc(mine, func(a, b shardrpc.Link) int {
		if pos(a).Before(pos(b)) {
			return -1
		}
		return 1
	})
	var res shardrpc.ListResponse
	var last *shardrpc.Position
	scanned := 0
	for _, l := range mine {
		if req.After != nil && !(linkstore.Position{CreatedAtMs: req.After.CreatedAtMs, Code: req.After.Code}).Before(pos(l)) {
			continue
		}
		if len(res.Links) == req.Limit {
			res.More = true
			break
		}
		if f.listScan > 0 && scanned == f.listScan {
			res.Frontier = last
			break
		}
		scanned++
		last = &shardrpc.Position{CreatedAtMs: l.CreatedAtMs, Code: l.Code}
		rec := linkstore.Record{Code: l.Code, URL: l.URL, Title: l.Title, Tags: l.Tags}
		q := strings.ToLower(req.Query)
		if (req.All || l.Owner == req.Owner) && (q == "" || strings.Contains(strings.ToLower(rec.Code+" "+rec.URL+" "+rec.Title), q)) &&
			(req.Tag == "" || slices.Contains(l.Tags, req.Tag)) {
			res.Links = append(res.Links, l)
		}
	}
	return res, nil
}

// listAll follows next_cursor from the first page to the last and returns
// the codes in order.
func listAll(t *testing.T, tr *testRouter, query string, header ...string) []string {
	t.Helper()
	var codes []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatalf("list %q does not end", query)
		}
		q := query
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		a := tr.do(t, http.MethodGet, "/api/v1/links?"+q, "", "", header...)
		if a.status != http.StatusOK {
			t.Fatalf("list %q: %d %s", q, a.status, a.body)
		}
		page := decode[listResponse](t, a)
		for _, l := range page.Links {
			codes = append(codes, l.Code)
		}
		if page.NextCursor == "" {
			return codes
		}
		cursor = page.NextCursor
	}
}

// TestListPagesAcrossShards: the merged pages, followed through their
// cursors, give every link once, newest first (ties by code), at any page
// size and while shards stop at their scan budget.
func TestListPagesAcrossShards(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	var want []shardrpc.Link
	for i := range 90 {
		tr.fake.mu.Lock()
		tr.fake.now = 1_760_000_000_000 + int64(i/3)*1000 // three links per instant
		tr.fake.mu.Unlock()
		body := fmt.Sprintf(`{"url": "https://example.com/list/%d", "title": "item %d"}`, i, i)
		if i%4 == 0 {
			body = fmt.Sprintf(`{"url": "https://example.com/list/%d", "tags": ["four"]}`, i)
		}
		a := tr.post(t, body)
		if a.status != http.StatusCreated {
			t.Fatalf("create: %d %s", a.status, a.body)
		}
		l := decode[linkResponse](t, a)
		want = append(want, shardrpc.Link{Code: l.Code, CreatedAtMs: tr.fake.now})
	}
	shards := map[uint64]bool{}
	for _, l := range want {
		shards[tr.ring.ShardOf(tr.ring.PartitionOfCode(l.Code))] = true
	}
	if len(shards) < 3 {
		t.Fatalf("links on %d shards; the test needs all 3", len(shards))
	}
	slices.SortFunc(want, func(a, b shardrpc.Link) int {
		if (linkstore.Position{CreatedAtMs: a.CreatedAtMs, Code: a.Code}).Before(linkstore.Position{CreatedAtMs: b.CreatedAtMs, Code: b.Code}) {
			return -1
		}
		return 1
	})
	var codes []string
	for _, l := range want {
		codes = append(codes, l.Code)
	}
	for _, scan := range []int{0, 5, 1} {
		tr.fake.mu.Lock()
		tr.fake.listScan = scan
		tr.fake.mu.Unlock()
		for _, limit := range []int{1, 7, 50, 1000} {
			if got := listAll(t, tr, fmt.Sprintf("limit=%d", limit)); !slices.Equal(got, codes) {
				t.Fatalf("scan %d limit %d:\n got %v\nwant %v", scan, limit, got, codes)
			}
		}
	}
	tr.fake.mu.Lock()
	tr.fake.listScan = 0
	tr.fake.mu.Unlock()
	// The default page is 50 links, the newest.
	first := decode[listResponse](t, tr.do(t, http.MethodGet, "/api/v1/links", "", ""))
	if len(first.Links) != 50 || first.Links[0].Code != codes[0] || first.NextCursor == "" {
		t.Fatalf("default page: %d links, first %s, cursor %q", len(first.Links), first.Links[0].Code, first.NextCursor)
	}
	// Filters: tag, and q over code, URL and title, case-insensitive.
	var four, item1 []string
	tr.fake.mu.Lock()
	for _, c := range codes {
		var i int
		if _, err := fmt.Sscanf(tr.fake.links[c].URL, "https://example.com/list/%d", &i); err != nil {
			t.Fatal(err)
		}
		if i%4 == 0 {
			four = append(four, c)
		} else if strings.HasPrefix(fmt.Sprint(i), "1") {
			item1 = append(item1, c) // title "item 1", "item 1x"
		}
	}
	tr.fake.mu.Unlock()
	if got := listAll(t, tr, "tag=four&limit=4"); !slices.Equal(got, four) {
		t.Fatalf("tag=four: %v, want %v", got, four)
	}
	if got := listAll(t, tr, "q=ITEM+1&limit=3"); !slices.Equal(got, item1) || len(item1) != 9 {
		t.Fatalf("q=ITEM 1: %v, want %v", got, item1)
	}
	if got := listAll(t, tr, "q="+codes[5]); !slices.Contains(got, codes[5]) {
		t.Fatalf("q by code: %v", got)
	}
}

// TestListBadQueries: every bad parameter and a tampered or foreign cursor
// is a 400 (403 for another key's owner) with a JSON error.
func TestListBadQueries(t *testing.T) {
	tr := startRouter(t, keysConfig(t))
	for i := range 5 {
		tr.do(t, http.MethodPost, "/api/v1/links", "application/json", fmt.Sprintf(`{"url": "https://example.com/b/%d"}`, i), bearer(keyAlice)...)
	}
	page := decode[listResponse](t, tr.do(t, http.MethodGet, "/api/v1/links?limit=2", "", "", bearer(keyAlice)...))
	if len(page.Links) != 2 || page.NextCursor == "" {
		t.Fatalf("first page: %+v", page)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(page.NextCursor)
	flipped := append([]byte(nil), raw...)
	flipped[2] ^= 1
	for _, tc := range []struct {
		name, query string
		status      int
		code        string
	}{
		{"limit 0", "limit=0", 400, codeInvalidRequest},
		{"limit 1001", "limit=1001", 400, codeInvalidRequest},
		{"limit word", "limit=ten", 400, codeInvalidRequest},
		{"limit negative", "limit=-1", 400, codeInvalidRequest},
		{"limit empty", "limit=", 400, codeInvalidRequest},
		{"limit twice", "limit=1&limit=2", 400, codeInvalidRequest},
		{"unknown parameter", "sort=asc", 400, codeInvalidRequest},
		{"long q", "q=" + strings.Repeat("q", 257), 400, codeInvalidRequest},
		{"q not UTF-8", "q=%ff", 400, codeInvalidRequest},
		{"bad tag", "tag=a+b", 400, codeInvalidTags},
		{"empty tag", "tag=", 400, codeInvalidTags},
		{"cursor garbage", "cursor=!!!", 400, codeInvalidCursor},
		{"cursor empty", "cursor=", 400, codeInvalidCursor},
		{"cursor flipped bit", "cursor=" + base64.RawURLEncoding.EncodeToString(flipped), 400, codeInvalidCursor},
		{"cursor cut", "cursor=" + page.NextCursor[:len(page.NextCursor)-2], 400, codeInvalidCursor},
		{"cursor of another query", "q=x&cursor=" + page.NextCursor, 400, codeInvalidCursor},
		{"another owner", "owner=bob", 403, codeForbidden},
	} {
		a := tr.do(t, http.MethodGet, "/api/v1/links?"+tc.query, "", "", bearer(keyAlice)...)
		if a.status != tc.status || errorCode(t, a) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, a.status, a.body, tc.status, tc.code)
		}
	}
	// Bob's cursor for his own list does not work for alice's.
	if a := tr.do(t, http.MethodGet, "/api/v1/links?cursor="+page.NextCursor, "", "", bearer(keyBob)...); a.status != 400 {
		t.Errorf("alice's cursor used by bob: %d %s", a.status, a.body)
	}
	if a := tr.do(t, http.MethodGet, "/api/v1/links", "", ""); a.status != http.StatusUnauthorized {
		t.Errorf("list without a key: %d", a.status)
	}
	if a := tr.do(t, http.MethodPut, "/api/v1/links", "application/json", "{}"); a.status != 405 || a.header.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("PUT: %d %q", a.status, a.header.Get("Allow"))
	}
}

// TestListOwners: a key lists its own links; an admin lists every link
// or one owner's.
func TestListOwners(t *testing.T) {
	tr := startRouter(t, keysConfig(t))
	mine := map[string][]string{}
	for i := range 12 {
		key, id := keyAlice, "alice"
		if i%3 == 0 {
			key, id = keyBob, "bob"
		}
		a := tr.do(t, http.MethodPost, "/api/v1/links", "application/json", fmt.Sprintf(`{"url": "https://example.com/o/%d"}`, i), bearer(key)...)
		mine[id] = append(mine[id], decode[linkResponse](t, a).Code)
	}
	same := func(got, want []string) bool {
		g, w := slices.Clone(got), slices.Clone(want)
		slices.Sort(g)
		slices.Sort(w)
		return slices.Equal(g, w)
	}
	if got := listAll(t, tr, "limit=5", bearer(keyAlice)...); !same(got, mine["alice"]) {
		t.Errorf("alice lists %v, want %v", got, mine["alice"])
	}
	if got := listAll(t, tr, "limit=5&owner=bob", bearer(keyBob)...); !same(got, mine["bob"]) {
		t.Errorf("bob with his own owner: %v", got)
	}
	if got := listAll(t, tr, "limit=5", bearer(keyAdmin)...); !same(got, append(slices.Clone(mine["alice"]), mine["bob"]...)) {
		t.Errorf("admin lists %v", got)
	}
	if got := listAll(t, tr, "owner=bob", bearer(keyAdmin)...); !same(got, mine["bob"]) {
		t.Errorf("admin lists bob's: %v", got)
	}
}

func FuzzDecodeCursor(f *testing.F) {
	cfg := testConfig(f, 0)
	rg, err := cfg.Ring()
	if err != nil {
		f.Fatal(err)
	}
	r, err := New(cfg, "r1", newFakeShards(rg), Options{Logger: testLogger(f)})
	if err != nil {
		f.Fatal(err)
	}
	scope := listScope{owner: "alice", query: "x"}
	f.Add(r.encodeCursor(linkstore.Position{CreatedAtMs: 1_760_000_000_000, Code: "abcdefg"}, scope))
	f.Add(r.encodeCursor(linkstore.Position{CreatedAtMs: -1, Code: "a"}, scope))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, c string) {
		p, err := r.decodeCursor(c, scope)
		if err != nil {
			return
		}
		if p.Code == "" || len(p.Code) > linkstore.MaxCodeLength {
			t.Fatalf("decoded a cursor with code %q", p.Code)
		}
		if again, err := r.decodeCursor(r.encodeCursor(p, scope), scope); err != nil || again != p {
			t.Fatalf("cursor %+v does not round-trip: %+v %v", p, again, err)
		}
		if _, err := r.decodeCursor(c, listScope{all: true}); err == nil {
			t.Fatalf("cursor accepted for another scope")
		}
	})
}
