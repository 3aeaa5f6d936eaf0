package node_test

import (
	"fmt"
	"slices"
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
