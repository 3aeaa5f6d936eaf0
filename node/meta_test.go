package node_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
	"github.com/valyala/fasthttp"
)

// TestCreateCarriesLinkFields: owner, title, tags and redirect status go
// through the create RPC into the record, and every replica's resolve
// returns them.
func TestCreateCarriesLinkFields(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r := mustRing(t, c.Config())
	cl := rpc{t: t}
	const shard = 1
	leader := c.WaitLeader(shard)
	req := shardrpc.CreateRequest{
		Partition: partitionOf(t, r, shard, 0), URL: "https://fields.example/", RequestID: "fields-1",
		Owner: "alice", Title: "A title", Tags: []string{"news", "q:3"}, RedirectStatus: 307,
	}
	a := cl.call(c.RPCAddr(leader), shardrpc.PathCreate, shard, req)
	if a.status != fasthttp.StatusOK {
		t.Fatalf("create: %s", a)
	}
	l := a.link(t)
	same := func(got shardrpc.Link) bool {
		return got.Owner == req.Owner && got.Title == req.Title && slices.Equal(got.Tags, req.Tags) &&
			got.RedirectStatus == req.RedirectStatus && got.UpdatedAtMs == 0
	}
	if !l.Created || !same(l) {
		t.Fatalf("created %+v", l)
	}
	fid := follower(t, c, shard, leader)
	c.Eventually("the follower to serve the fields", func() error {
		a := cl.call(c.RPCAddr(fid), shardrpc.PathResolve, shard, shardrpc.ResolveRequest{Code: l.Code})
		if a.status != fasthttp.StatusOK {
			return fmt.Errorf("resolve: %s", a)
		}
		if got := a.link(t); !same(got) {
			return fmt.Errorf("resolved %+v", got)
		}
		return nil
	})
	// A reuse create by another owner makes its own link; by the same
	// owner it finds this one.
	bob := cl.call(c.RPCAddr(leader), shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: req.Partition, URL: req.URL, Owner: "bob", Reuse: true})
	if bob.status != fasthttp.StatusOK || bob.link(t).Code == l.Code || bob.link(t).Owner != "bob" {
		t.Fatalf("bob's reuse create: %s", bob)
	}
	again := cl.call(c.RPCAddr(leader), shardrpc.PathCreate, shard, shardrpc.CreateRequest{Partition: req.Partition, URL: req.URL, Owner: "alice", Reuse: true})
	if again.status != fasthttp.StatusOK || again.link(t).Code != l.Code || again.link(t).Created {
		t.Fatalf("alice's reuse create: %s, want %s", again, l.Code)
	}
}

// TestListRPC: the list RPC pages a shard's links newest first at the
// leader, filters by owner, and refuses bad requests with 400.
func TestListRPC(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r := mustRing(t, c.Config())
	cl := rpc{t: t}
	const shard = 2
	leader := c.WaitLeader(shard)
	laddr := c.RPCAddr(leader)
	var codes []string
	for i := range 12 {
		owner := "alice"
		if i%3 == 0 {
			owner = "bob"
		}
		a := cl.call(laddr, shardrpc.PathCreate, shard, shardrpc.CreateRequest{
			Partition: partitionOf(t, r, shard, i), URL: fmt.Sprintf("https://list.example/%d", i), Owner: owner, Title: fmt.Sprintf("n%d", i),
		})
		if a.status != fasthttp.StatusOK {
			t.Fatalf("create: %s", a)
		}
		if owner == "alice" {
			codes = append(codes, a.link(t).Code)
		}
	}
	var got []string
	var after *shardrpc.Position
	for {
		a := cl.call(laddr, shardrpc.PathList, shard, shardrpc.ListRequest{Owner: "alice", Limit: 3, After: after})
		if a.status != fasthttp.StatusOK {
			t.Fatalf("list: %s", a)
		}
		var res shardrpc.ListResponse
		if err := json.Unmarshal(a.body, &res); err != nil {
			t.Fatal(err)
		}
		for i, l := range res.Links {
			if l.Owner != "alice" {
				t.Fatalf("bob's link listed for alice: %+v", l)
			}
			if i > 0 && l.CreatedAtMs > res.Links[i-1].CreatedAtMs {
				t.Fatalf("not newest first: %+v", res.Links)
			}
			got = append(got, l.Code)
		}
		if !res.More {
			break
		}
		last := res.Links[len(res.Links)-1]
		after = &shardrpc.Position{CreatedAtMs: last.CreatedAtMs, Code: last.Code}
	}
	if len(got) != len(codes) {
		t.Fatalf("listed %d of alice's %d links", len(got), len(codes))
	}
	slices.Sort(got)
	slices.Sort(codes)
	if !slices.Equal(got, codes) {
		t.Fatalf("listed %v, want %v", got, codes)
	}
	for name, req := range map[string]shardrpc.ListRequest{
		"limit 0":     {All: true},
		"limit 1001":  {All: true, Limit: 1001},
		"no owner":    {Limit: 5},
		"bad tag":     {All: true, Limit: 5, Tag: "a b"},
		"long q":      {All: true, Limit: 5, Query: strings.Repeat("q", 257)},
		"bad owner":   {Owner: "a/b", Limit: 5},
		"empty after": {All: true, Limit: 5, After: &shardrpc.Position{}},
	} {
		if a := cl.call(laddr, shardrpc.PathList, shard, req); a.status != fasthttp.StatusBadRequest || a.errorBody(t).Code != shardrpc.ErrCodeBadRequest {
			t.Errorf("%s: %s", name, a)
		}
	}
	fid := follower(t, c, shard, leader)
	if a := cl.call(c.RPCAddr(fid), shardrpc.PathList, shard, shardrpc.ListRequest{All: true, Limit: 5}); a.status != fasthttp.StatusMisdirectedRequest {
		t.Errorf("list at a follower: %s", a)
	}
}
