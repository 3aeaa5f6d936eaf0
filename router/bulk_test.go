package router

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
)

// bulkAnswer is the body of a bulk create's 200.
type bulkAnswer struct {
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Results   []struct {
		Status int      `json:"status"`
		Link   *created `json:"link"`
		Error  *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	} `json:"results"`
}

func (tr *testRouter) bulk(t *testing.T, body string, header ...string) answer {
	t.Helper()
	return tr.do(t, http.MethodPost, pathBulk, "application/json", body, header...)
}

// bulkBody returns {"links": [items...]}.
func bulkBody(items ...string) string {
	return `{"links": [` + strings.Join(items, ", ") + `]}`
}

// TestBulkCreateItems checks a bulk create item by item, with the shard
// client that has no bulk RPC (one create per item): every bad item gets
// its own 4xx and is never sent to a shard, the good ones are created, and
// the results keep the request's order.
func TestBulkCreateItems(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	items := []string{
		`{"url": "https://example.com/b/0"}`,
		`{"url": "not a url"}`,
		`{"url": "https://example.com/b/2", "alias": "bulk-two"}`,
		`{"url": "https://example.com/b/3", "alias": "x"}`,
		`{"url": "https://example.com/b/4", "alias": "stats"}`,
		`{"url": "https://example.com/b/5", "ttl": "1ms"}`,
		`{"url": "https://example.com/b/6", "colour": "red"}`,
		`17`,
		`{"url": "https://example.com/b/8", "alias": "bulk-two"}`,
		`{"url": "https://example.com/b/9", "ttl": "72h", "max_clicks": 5}`,
		`{}`,
		`{"url": "https://short.test/self"}`,
		`{"url": "https://example.com/b/12", "title": "Bulk twelve", "tags": ["t1", "t2"], "redirect_status": 302}`,
		`{"url": "https://example.com/b/13", "redirect_status": 303}`,
	}
	a := tr.bulk(t, bulkBody(items...))
	if a.status != http.StatusOK {
		t.Fatalf("bulk: %d %s", a.status, a.body)
	}
	got := decode[bulkAnswer](t, a)
	want := []struct {
		status int
		code   string
	}{
		{201, ""}, {400, codeInvalidURL}, {201, ""}, {400, codeInvalidAlias}, {400, codeInvalidAlias},
		{400, codeInvalidLimits}, {400, codeUnknownField}, {400, codeInvalidJSON}, {409, codeAliasTaken},
		{201, ""}, {400, codeInvalidURL}, {400, codeInvalidURL}, {201, ""}, {400, codeInvalidRedirectStatus},
	}
	if len(got.Results) != len(want) || got.Succeeded != 4 || got.Failed != 10 {
		t.Fatalf("answer %s", a.body)
	}
	sent := 0
	for i, w := range want {
		res := got.Results[i]
		if res.Status != w.status {
			t.Errorf("item %d: status %d (%s), want %d", i, res.Status, a.body, w.status)
			continue
		}
		switch {
		case w.code == "" && (res.Link == nil || res.Error != nil || res.Link.URL != fmt.Sprintf("https://example.com/b/%d", i)):
			t.Errorf("item %d: %+v", i, res)
		case w.code != "" && (res.Link != nil || res.Error == nil || res.Error.Code != w.code || res.Error.Message == ""):
			t.Errorf("item %d: %+v, want error %s", i, res, w.code)
		}
		if w.code == "" || w.code == codeAliasTaken {
			sent++
		}
	}
	tr.fake.mu.Lock()
	for _, call := range tr.fake.creates {
		if call.req.URL == "https://example.com/b/12" && (call.req.Title != "Bulk twelve" || len(call.req.Tags) != 2 || call.req.RedirectStatus != 302) {
			t.Errorf("the fields of an item did not reach its shard: %+v", call.req)
		}
	}
	tr.fake.mu.Unlock()
	if got.Results[2].Link.Code != "bulk-two" {
		t.Errorf("alias item: %+v", got.Results[2].Link)
	}
	if creates, _ := tr.fake.counts(); creates != sent {
		t.Errorf("%d creates reached the shards, want %d (bad items must not)", creates, sent)
	}
	if r := tr.do(t, http.MethodGet, "/bulk-two", "", ""); r.header.Get("Location") != "https://example.com/b/2" {
		t.Errorf("redirect of a bulk-created alias: %d %q", r.status, r.header.Get("Location"))
	}
}

// TestBulkCreateBadRequests: a bulk create that is bad as a whole is a 4xx
// with a JSON error, and nothing reaches a shard.
func TestBulkCreateBadRequests(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	many := make([]string, MaxBulkLinks+1)
	for i := range many {
		many[i] = `{"url": "https://example.com/m"}`
	}
	huge := bulkBody(`{"url": "https://example.com/` + strings.Repeat("a", MaxBulkBodySize) + `"}`)
	cases := []struct {
		name, contentType, body string
		header                  []string
		status                  int
		code                    string
	}{
		{"not json", "text/plain", bulkBody(`{"url": "https://example.com/"}`), nil, 415, codeUnsupportedMedia},
		{"empty body", "application/json", ``, nil, 400, codeInvalidJSON},
		{"malformed", "application/json", `{"links": [`, nil, 400, codeInvalidJSON},
		{"array", "application/json", `[{"url": "https://example.com/"}]`, nil, 400, codeInvalidJSON},
		{"null", "application/json", `null`, nil, 400, codeInvalidJSON},
		{"two objects", "application/json", `{"links": []} {}`, nil, 400, codeInvalidJSON},
		{"no links", "application/json", `{}`, nil, 400, codeInvalidRequest},
		{"links null", "application/json", `{"links": null}`, nil, 400, codeInvalidJSON},
		{"links object", "application/json", `{"links": {"url": "https://example.com/"}}`, nil, 400, codeInvalidJSON},
		{"zero links", "application/json", `{"links": []}`, nil, 400, codeInvalidRequest},
		{"unknown field", "application/json", `{"links": [{"url": "https://example.com/"}], "dry_run": true}`, nil, 400, codeUnknownField},
		{"too many", "application/json", bulkBody(many...), nil, 413, codeTooManyLinks},
		{"too large", "application/json", huge, nil, 413, codeBodyTooLarge},
		{"bad key", "application/json", bulkBody(`{"url": "https://example.com/"}`), []string{headerIdempotencyKey, "a key"}, 400, codeInvalidRequest},
		{"long key", "application/json", bulkBody(`{"url": "https://example.com/"}`), []string{headerIdempotencyKey, strings.Repeat("k", 129)}, 400, codeInvalidRequest},
	}
	for _, tc := range cases {
		a := tr.do(t, http.MethodPost, pathBulk, tc.contentType, tc.body, tc.header...)
		if a.status != tc.status || errorCode(t, a) != tc.code {
			t.Errorf("%s: %d %.200s, want %d %s", tc.name, a.status, a.body, tc.status, tc.code)
		}
	}
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		if a := tr.do(t, m, pathBulk, "", ""); a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != "POST" {
			t.Errorf("%s %s: %d Allow %q", m, pathBulk, a.status, a.header.Get("Allow"))
		}
	}
	if creates, _ := tr.fake.counts(); creates != 0 {
		t.Fatalf("%d creates reached the shards", creates)
	}
	// "bulk" is no alias.
	if a := tr.post(t, `{"url": "https://example.com/", "alias": "bulk"}`); a.status != 400 || errorCode(t, a) != codeInvalidAlias {
		t.Errorf("alias bulk: %d %s", a.status, a.body)
	}
}

// TestBulkCreateOnCluster sends bulk creates through a router to a real
// 3-shard cluster: items spread over every shard, each shard appends
// exactly one Raft entry per bulk, a duplicate alias in the same bulk is a
// 409 in its slot, every created link redirects, and a resent request with
// the same Idempotency-Key returns the same links and appends nothing new
// to the link tables.
func TestBulkCreateOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	// Registered before the cluster, so it runs after the nodes stopped.
	t.Cleanup(func() { waitWorkerCleaners(t) })
	c := nodetest.Start(t, nodetest.Options{})
	c.WaitLeaders()
	cfg := c.Config()
	_, base, _ := startClusterRouter(t, cfg, "r1", Options{DisableClicks: true})
	rg, err := cfg.Ring()
	if err != nil {
		t.Fatal(err)
	}
	cl := shardrpc.NewClient(cfg, shardrpc.ClientOptions{IdleConnTimeout: 100 * time.Millisecond})
	t.Cleanup(cl.Close)
	// entriesDuring runs do and returns how many Raft entries each
	// shard's leader appended meanwhile; when a term moved (a leader
	// change appends entries of its own) do runs again, up to 5 times.
	entriesDuring := func(do func()) map[uint64]uint64 {
		t.Helper()
		status := func() map[uint64]shardrpc.Status {
			out := map[uint64]shardrpc.Status{}
			for _, s := range rg.Shards() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				st, err := cl.Status(ctx, s)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				out[s] = st
			}
			return out
		}
		for attempt := 1; ; attempt++ {
			// The routers' change feeds read linearizably, and the first
			// such read of a term appends a Raft barrier entry: run it
			// now, so that a stable term appends none during do.
			for _, s := range rg.Shards() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, err := cl.Changes(ctx, s, 0, 0)
				cancel()
				if err != nil {
					t.Fatal(err)
				}
			}
			before := status()
			do()
			after := status()
			stable := true
			n := map[uint64]uint64{}
			for s := range after {
				n[s] = after[s].LastIndex - before[s].LastIndex
				stable = stable && after[s].Term == before[s].Term
			}
			if stable || attempt == 5 {
				return n
			}
			t.Logf("a term changed during the measurement; again")
		}
	}

	var items []string
	perShard := map[uint64]int{}
	for i := 0; i < 400; i++ {
		u := fmt.Sprintf("https://example.com/cluster-bulk/%d", i)
		items = append(items, fmt.Sprintf(`{"url": %q}`, u))
		perShard[rg.ShardOf(rg.PartitionOfURL(u))]++
	}
	items = append(items,
		`{"url": "https://example.com/alias-1", "alias": "cluster-bulk-alias"}`,
		`{"url": "https://example.com/alias-2", "alias": "cluster-bulk-alias"}`,
		`{"url": "ftp://example.com/bad"}`,
	)
	for _, s := range rg.Shards() {
		if perShard[s] == 0 {
			t.Fatalf("no item for shard %d: the test does not cover every shard", s)
		}
	}
	post := func(key string) (int, bulkAnswer) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+pathBulk, strings.NewReader(bulkBody(items...)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(headerIdempotencyKey, key)
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var ans bulkAnswer
		if err := decodeBody(resp, &ans); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, ans
	}

	var status int
	var ans bulkAnswer
	// Repeatable: the same Idempotency-Key gives the same request IDs.
	entries := entriesDuring(func() { status, ans = post("key-1") })
	for _, s := range rg.Shards() {
		if entries[s] != 1 {
			t.Errorf("shard %d appended %d Raft entries for its part of one bulk create, want 1", s, entries[s])
		}
	}
	if status != 200 || len(ans.Results) != len(items) || ans.Succeeded != 401 || ans.Failed != 2 {
		t.Fatalf("bulk: %d %+v", status, ans)
	}
	if ans.Results[400].Status != 201 || ans.Results[400].Link.Code != "cluster-bulk-alias" ||
		ans.Results[401].Status != 409 || ans.Results[401].Error.Code != codeAliasTaken ||
		ans.Results[402].Status != 400 || ans.Results[402].Error.Code != codeInvalidURL {
		raw, _ := json.Marshal(ans.Results[400:])
		t.Fatalf("alias and bad items: %s", raw)
	}
	codes := map[string]bool{}
	for i, res := range ans.Results[:401] {
		if res.Status != 201 || res.Link == nil || codes[res.Link.Code] {
			t.Fatalf("item %d: %+v", i, res)
		}
		codes[res.Link.Code] = true
	}
	for _, i := range []int{0, 199, 399, 400} {
		resp, err := httpClient.Get(base + "/" + ans.Results[i].Link.Code)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); loc != ans.Results[i].Link.URL {
			t.Errorf("redirect of item %d: %d %q", i, resp.StatusCode, loc)
		}
	}

	// The same request with the same key: the same links, none new.
	_, again := post("key-1")
	for i := range ans.Results {
		a, b := ans.Results[i], again.Results[i]
		if a.Status != b.Status || (a.Link == nil) != (b.Link == nil) || a.Link != nil && a.Link.Code != b.Link.Code {
			t.Fatalf("resent item %d: %+v, first %+v", i, b, a)
		}
	}
	// Another key: new links (the alias is taken by then).
	_, other := post("key-2")
	if other.Results[0].Link == nil || codes[other.Results[0].Link.Code] || other.Results[400].Status != 409 {
		t.Fatalf("a new key made no new links: %+v %+v", other.Results[0], other.Results[400])
	}
}
