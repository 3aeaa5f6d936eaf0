package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
)

// entriesDuring runs do and returns how many Raft log entries shard's
// leader appended meanwhile. A leader change appends entries of its own
// (a fresh leader may still be appending its term's first ones when its
// term is reported: see the change feed read below),
// so when the term moved during do, do runs again (it must be
// repeatable), up to five times.
func entriesDuring(t *testing.T, cl *shardrpc.Client, shard uint64, do func()) uint64 {
	t.Helper()
	status := func() shardrpc.Status {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		st, err := cl.Status(ctx, shard)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	for attempt := 1; ; attempt++ {
		// A leader appends entries of its own early in its term: its
		// no-op, then a Barrier at the term's first linearizable read.
		// Let both happen before counting: a change feed read is a
		// linearizable read, answered once the no-op is applied.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := cl.Changes(ctx, shard, 0, 0)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		before := status()
		do()
		after := status()
		if after.Term == before.Term || attempt == 5 {
			return after.LastIndex - before.LastIndex
		}
		t.Logf("shard %d changed term (%d -> %d) during the measurement; again", shard, before.Term, after.Term)
	}
}

// TestBulkCreateOnCluster sends bulk creates to a real cluster: good,
// bad and duplicate-alias items are answered item by item in order, the
// whole bulk is one Raft entry, a retry with the same request IDs stores
// nothing twice, and requests that concern the whole bulk are refused
// whole without an entry.
func TestBulkCreateOnCluster(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r, cl := clusterClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	alias, ap := aliasOf(t, r, 1, "bulk-alias")
	var items []shardrpc.CreateRequest
	for i := 0; i < 300; i++ { // more than the batcher's 256
		items = append(items, shardrpc.CreateRequest{Partition: partitionOf(t, r, 1, i), URL: fmt.Sprintf("https://example.com/bulk/%d", i), RequestID: fmt.Sprintf("bulk-%d", i)})
	}
	items = append(items,
		shardrpc.CreateRequest{Partition: ap, URL: "https://example.com/alias", Alias: alias, RequestID: "bulk-alias-1"},
		shardrpc.CreateRequest{Partition: ap, URL: "https://example.com/alias2", Alias: alias, RequestID: "bulk-alias-2"}, // taken by the item before
		shardrpc.CreateRequest{Partition: ap, URL: "", RequestID: "bulk-empty"},                                           // refused by the machine
		shardrpc.CreateRequest{Partition: partitionOf(t, r, 1, 0), URL: "https://example.com/neg", ExpiresAtMs: -5, RequestID: "bulk-neg"},
	)
	var res []shardrpc.BulkItemResult
	// Repeatable: a repeat carries the same request IDs.
	if n := entriesDuring(t, cl, 1, func() {
		var err error
		if res, err = cl.BulkCreate(ctx, 1, items); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Fatalf("a bulk create of %d items took %d Raft entries, want 1", len(items), n)
	}
	codes := map[string]bool{}
	for i := 0; i < 301; i++ {
		if res[i].Link == nil || !res[i].Link.Created || res[i].Link.URL != items[i].URL {
			t.Fatalf("item %d: %+v %+v", i, res[i].Link, res[i].Error)
		}
		if codes[res[i].Link.Code] {
			t.Fatalf("code %s given twice", res[i].Link.Code)
		}
		codes[res[i].Link.Code] = true
	}
	if res[300].Link.Code != alias {
		t.Fatalf("alias item: %+v", res[300].Link)
	}
	for i, want := range map[int]shardrpc.Code{301: shardrpc.ErrCodeAliasTaken, 302: shardrpc.ErrCodeBadRequest, 303: shardrpc.ErrCodeBadRequest} {
		if res[i].Error == nil || res[i].Error.Code != want {
			t.Fatalf("item %d: %+v %+v, want %s", i, res[i].Link, res[i].Error, want)
		}
	}
	if got, err := cl.Resolve(ctx, 1, alias); err != nil || got.URL != "https://example.com/alias" {
		t.Fatalf("the taken alias changed: %+v, %v", got, err)
	}
	// A retry (same request IDs) gets the same answers and makes no link.
	again, err := cl.BulkCreate(ctx, 1, items)
	if err != nil {
		t.Fatal(err)
	}
	for i := range again {
		if (again[i].Link == nil) != (res[i].Link == nil) || again[i].Link != nil && again[i].Link.Code != res[i].Link.Code {
			t.Fatalf("retried item %d: %+v, first %+v", i, again[i].Link, res[i].Link)
		}
	}
	fresh, err := cl.Create(ctx, 1, shardrpc.CreateRequest{Partition: partitionOf(t, r, 1, 0), URL: "https://example.com/after"})
	if err != nil || codes[fresh.Code] {
		t.Fatalf("create after the retry: %+v, %v", fresh, err)
	}

	// Refused whole, without an entry.
	leader := c.WaitLeader(1)
	other := shardrpc.CreateRequest{Partition: partitionOf(t, r, 2, 0), URL: "https://example.com/other"}
	tooMany := make([]shardrpc.CreateRequest, shardrpc.MaxBulkItems+1)
	for i := range tooMany {
		tooMany[i] = items[0]
	}
	for name, tc := range map[string]struct {
		body   any
		status int
	}{
		"empty":        {shardrpc.BulkCreateRequest{}, 400},
		"too many":     {shardrpc.BulkCreateRequest{Items: tooMany}, 400},
		"wrong shard":  {shardrpc.BulkCreateRequest{Items: []shardrpc.CreateRequest{items[0], other}}, 421},
		"partition":    {shardrpc.BulkCreateRequest{Items: []shardrpc.CreateRequest{{Partition: 1 << 20, URL: "https://x/"}}}, 400},
		"request id":   {shardrpc.BulkCreateRequest{Items: []shardrpc.CreateRequest{{Partition: items[0].Partition, URL: "https://x/", RequestID: string(make([]byte, 129))}}}, 400},
		"not json":     {"[", 400},
		"items object": {map[string]any{"items": map[string]any{}}, 400},
	} {
		if n := entriesDuring(t, cl, 1, func() {
			if a := (rpc{t: t}).call(c.RPCAddr(leader), shardrpc.PathBulkCreate, 1, tc.body); a.status != tc.status {
				t.Errorf("%s: %s, want %d", name, a, tc.status)
			}
		}); n != 0 {
			t.Errorf("%s: a refused bulk create appended %d entries", name, n)
		}
	}
	if _, err := cl.BulkCreate(ctx, 1, nil); !errors.Is(err, shardrpc.ErrBadRequest) {
		t.Fatalf("client bulk create of nothing: %v", err)
	}
}

// TestBulkCreateBinaryOnCluster: the binary bulk create RPC stores and
// answers what the JSON one does (a retry over one call of a bulk first
// sent over the other gets the first results, equal field by field), tags
// the links its entry applied with the entry's index and replayed ones
// with none, answers a version 1 request in version 1, and refuses a bulk
// that is bad as a whole, malformed bytes included, with a JSON error and
// without an entry.
func TestBulkCreateBinaryOnCluster(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r, bin := clusterClient(t, c)
	js := shardrpc.NewClient(c.Config(), shardrpc.ClientOptions{IdleConnTimeout: 100 * time.Millisecond, BulkCreateJSON: true})
	t.Cleanup(js.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	items := func(prefix string) []shardrpc.CreateRequest {
		alias, ap := aliasOf(t, r, 1, prefix+"-alias")
		var its []shardrpc.CreateRequest
		for i := 0; i < 20; i++ {
			its = append(its, shardrpc.CreateRequest{Partition: partitionOf(t, r, 1, i), URL: fmt.Sprintf("https://example.com/%s/%d", prefix, i), RequestID: fmt.Sprintf("%s-%d", prefix, i),
				Owner: "o1", Title: "t", Tags: []string{"a", "b"}, RedirectStatus: 302, ExpiresAtMs: 4102444800000, MaxClicks: 9})
		}
		return append(its,
			shardrpc.CreateRequest{Partition: ap, URL: "https://example.com/alias", Alias: alias, RequestID: prefix + "-alias-1"},
			shardrpc.CreateRequest{Partition: ap, URL: "https://example.com/alias2", Alias: alias, RequestID: prefix + "-alias-2"},
			shardrpc.CreateRequest{Partition: ap, URL: "", RequestID: prefix + "-empty"},
			shardrpc.CreateRequest{Partition: partitionOf(t, r, 1, 0), URL: "https://example.com/reuse", Reuse: true, RequestID: prefix + "-reuse"},
		)
	}
	for _, tc := range []struct {
		name         string
		first, retry *shardrpc.Client
	}{{"json-then-binary", js, bin}, {"binary-then-json", bin, js}} {
		its := items(tc.name)
		first, err := tc.first.BulkCreate(ctx, 1, its)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		again, err := tc.retry.BulkCreate(ctx, 1, its)
		if err != nil {
			t.Fatalf("%s: retry: %v", tc.name, err)
		}
		// The binary call tags the links its entry applied with the
		// entry's index; a retry's links are replays, never tagged.
		firstIndex := uint64(0)
		for i, r := range first {
			switch {
			case r.Link == nil:
			case tc.first == js && r.Link.AppliedIndex != 0:
				t.Fatalf("%s: JSON item %d tagged with index %d", tc.name, i, r.Link.AppliedIndex)
			case tc.first == bin && (r.Link.AppliedIndex == 0 || firstIndex != 0 && r.Link.AppliedIndex != firstIndex):
				t.Fatalf("%s: item %d tagged with index %d, the others %d", tc.name, i, r.Link.AppliedIndex, firstIndex)
			default:
				firstIndex = r.Link.AppliedIndex
			}
		}
		if st, err := bin.Status(ctx, 1); err != nil || tc.first == bin && firstIndex > st.AppliedIndex {
			t.Fatalf("%s: links tagged with index %d, leader applied %d (%v)", tc.name, firstIndex, st.AppliedIndex, err)
		}
		for i, r := range again {
			if r.Link != nil && r.Link.AppliedIndex != 0 {
				t.Fatalf("%s: replayed item %d tagged with index %d", tc.name, i, r.Link.AppliedIndex)
			}
			if first[i].Link != nil {
				first[i].Link.AppliedIndex = 0
			}
		}
		if !reflect.DeepEqual(first, again) {
			t.Fatalf("%s: retry answered\n%s\nfirst\n%s", tc.name, dumpResults(again), dumpResults(first))
		}
		for i := 0; i < 20; i++ {
			if l := first[i].Link; l == nil || !l.Created || l.URL != its[i].URL || l.Title != "t" || l.RedirectStatus != 302 || l.MaxClicks != 9 || len(l.Tags) != 2 {
				t.Fatalf("%s: item %d: %+v %+v", tc.name, i, first[i].Link, first[i].Error)
			}
		}
		if first[21].Error == nil || first[21].Error.Code != shardrpc.ErrCodeAliasTaken || first[22].Error == nil || first[22].Error.Code != shardrpc.ErrCodeBadRequest {
			t.Fatalf("%s: refused items: %+v %+v", tc.name, first[21].Error, first[22].Error)
		}
	}

	leader := c.WaitLeader(1)
	v1Items := items("v1")[:3]
	a := (rpc{t: t}).call(c.RPCAddr(leader), shardrpc.PathBulkCreateBinary, 1, shardrpc.AppendBulkCreateRequestVersion(nil, shardrpc.BulkWireVersion1, v1Items))
	if a.status != 200 || len(a.body) == 0 || a.body[0] != shardrpc.BulkWireVersion1 {
		t.Fatalf("version 1 request: %s", a)
	}
	if res, err := shardrpc.DecodeBulkCreateResponse(a.body, v1Items); err != nil || res[0].Link == nil || !res[0].Link.Created || res[0].Link.AppliedIndex != 0 {
		t.Fatalf("version 1 answer: %+v, %v", res, err)
	}

	good := items("refused")[:2]
	other := shardrpc.CreateRequest{Partition: partitionOf(t, r, 2, 0), URL: "https://example.com/other"}
	for name, tc := range map[string]struct {
		body   []byte
		status int
	}{
		"empty":       {nil, 400},
		"malformed":   {[]byte{shardrpc.BulkWireVersion, 1, 0xff}, 400},
		"version":     {shardrpc.AppendBulkCreateRequestVersion(nil, 0x09, good), 400},
		"JSON":        {[]byte(`{"items":[{"partition":1,"url":"https://x/"}]}`), 400},
		"wrong shard": {shardrpc.AppendBulkCreateRequest(nil, []shardrpc.CreateRequest{good[0], other}), 421},
		"partition":   {shardrpc.AppendBulkCreateRequest(nil, []shardrpc.CreateRequest{{Partition: 1 << 20, URL: "https://x/"}}), 400},
		"status":      {shardrpc.AppendBulkCreateRequest(nil, []shardrpc.CreateRequest{{Partition: good[0].Partition, URL: "https://x/", RedirectStatus: 303}}), 400},
		"request id":  {shardrpc.AppendBulkCreateRequest(nil, []shardrpc.CreateRequest{{Partition: good[0].Partition, URL: "https://x/", RequestID: string(make([]byte, 129))}}), 400},
	} {
		if n := entriesDuring(t, bin, 1, func() {
			a := (rpc{t: t}).call(c.RPCAddr(leader), shardrpc.PathBulkCreateBinary, 1, tc.body)
			var e shardrpc.ErrorBody
			if a.status != tc.status || json.Unmarshal(a.body, &e) != nil || e.Message == "" {
				t.Errorf("%s: %s, want %d with an ErrorBody", name, a, tc.status)
			}
		}); n != 0 {
			t.Errorf("%s: a refused bulk create appended %d entries", name, n)
		}
	}
}

func dumpResults(rs []shardrpc.BulkItemResult) string {
	b, _ := json.Marshal(rs)
	return string(b)
}

// TestCreateAnswerAppliedIndex: a single create's answer carries the
// index of the entry that applied it (at most the leader's applied index
// after the answer); a retry with the same request ID, answered from the
// request table, carries none.
func TestCreateAnswerAppliedIndex(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r, cl := clusterClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req := shardrpc.CreateRequest{Partition: partitionOf(t, r, 1, 0), URL: "https://example.com/indexed", RequestID: "indexed-1"}
	first, err := cl.Create(ctx, 1, req)
	if err != nil {
		t.Fatal(err)
	}
	st, err := cl.Status(ctx, 1)
	if err != nil || first.AppliedIndex == 0 || first.AppliedIndex > st.AppliedIndex {
		t.Fatalf("create tagged with index %d, leader applied %d (%v)", first.AppliedIndex, st.AppliedIndex, err)
	}
	again, err := cl.Create(ctx, 1, req)
	if err != nil || again.Code != first.Code || again.AppliedIndex != 0 {
		t.Fatalf("retried create: %+v, %v; first %+v", again, err, first)
	}
	second, err := cl.Create(ctx, 1, shardrpc.CreateRequest{Partition: req.Partition, URL: "https://example.com/indexed/2", RequestID: "indexed-2"})
	if err != nil || second.AppliedIndex <= first.AppliedIndex {
		t.Fatalf("a later create tagged with index %d, the first %d (%v)", second.AppliedIndex, first.AppliedIndex, err)
	}
}
