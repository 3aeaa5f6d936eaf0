package node_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
)

func ptr[T any](v T) *T { return &v }

// TestEditOnCluster edits links through the RPC of a real cluster: every
// replica serves the new fields, a retried edit (same request ID) is
// applied once, unknown and deleted codes are not_found and gone, another
// owner's link is not_found, and bad edits are 400 without a Raft entry
// or with one that changes nothing.
func TestEditOnCluster(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r, cl := clusterClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	p := partitionOf(t, r, 1, 0)
	link, err := cl.Create(ctx, 1, shardrpc.CreateRequest{Partition: p, URL: "https://example.com/before", ExpiresAtMs: time.Now().Add(-time.Second).UnixMilli() + 2000})
	if err != nil {
		t.Fatal(err)
	}
	edited, err := cl.Edit(ctx, 1, shardrpc.EditRequest{Code: link.Code, URL: ptr("https://example.com/after"), Title: ptr("After"),
		Tags: &[]string{"a"}, RedirectStatus: ptr(302), ExpiresAtMs: ptr(int64(0)), MaxClicks: ptr(uint64(9))})
	if err != nil {
		t.Fatal(err)
	}
	if edited.URL != "https://example.com/after" || edited.Title != "After" || len(edited.Tags) != 1 || edited.RedirectStatus != 302 ||
		edited.ExpiresAtMs != 0 || edited.MaxClicks != 9 || edited.UpdatedAtMs == 0 || edited.CreatedAtMs != link.CreatedAtMs {
		t.Fatalf("edited link: %+v", edited)
	}
	for _, id := range c.NodeIDs() {
		c.Eventually("the edit at "+id, func() error {
			got := (rpc{t: t}).call(c.RPCAddr(id), shardrpc.PathResolve, 1, shardrpc.ResolveRequest{Code: link.Code})
			if got.status != 200 || got.link(t).URL != "https://example.com/after" {
				return fmt.Errorf("answer %s", got)
			}
			return nil
		})
	}
	// A retry with the same request ID is answered, not applied again.
	leader := c.WaitLeader(1)
	req := shardrpc.EditRequest{Code: link.Code, Title: ptr("retried"), RequestID: "edit-retry"}
	first := (rpc{t: t}).call(c.RPCAddr(leader), shardrpc.PathEdit, 1, req)
	if _, err := cl.Edit(ctx, 1, shardrpc.EditRequest{Code: link.Code, Title: ptr("later")}); err != nil {
		t.Fatal(err)
	}
	again := (rpc{t: t}).call(c.RPCAddr(leader), shardrpc.PathEdit, 1, req)
	if first.status != 200 || again.status != 200 || string(first.body) != string(again.body) {
		t.Fatalf("retried edit: %s then %s", first, again)
	}
	if got, _ := cl.Resolve(ctx, 1, link.Code); got.Title != "later" {
		t.Fatalf("the retry was applied again: title %q", got.Title)
	}

	// Owners.
	owned, err := cl.Create(ctx, 1, shardrpc.CreateRequest{Partition: p, URL: "https://example.com/owned", Owner: "key-a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Edit(ctx, 1, shardrpc.EditRequest{Code: owned.Code, Owner: "key-b", Title: ptr("x")}); !errors.Is(err, shardrpc.ErrNotFound) {
		t.Fatalf("edit of another owner's link: %v", err)
	}
	if e, err := cl.Edit(ctx, 1, shardrpc.EditRequest{Code: owned.Code, Owner: "key-a", Title: ptr("x")}); err != nil || e.Title != "x" {
		t.Fatalf("edit by the owner: %+v, %v", e, err)
	}

	// Unknown and deleted.
	unknown := r.Codec().Encode(999_999)
	if _, err := cl.Edit(ctx, r.ShardOf(r.PartitionOfCode(unknown)), shardrpc.EditRequest{Code: unknown, Title: ptr("x")}); !errors.Is(err, shardrpc.ErrNotFound) {
		t.Fatalf("edit of an unknown code: %v", err)
	}
	if _, err := cl.Delete(ctx, 1, owned.Code); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Edit(ctx, 1, shardrpc.EditRequest{Code: owned.Code, Title: ptr("x")}); !errors.Is(err, shardrpc.ErrGone) {
		t.Fatalf("edit of a deleted link: %v", err)
	}

	// Bad edits.
	leader = c.WaitLeader(1)
	for name, tc := range map[string]struct {
		req    any
		status int
	}{
		"no code":         {shardrpc.EditRequest{Title: ptr("x")}, 400},
		"no field":        {shardrpc.EditRequest{Code: link.Code}, 400},
		"status":          {shardrpc.EditRequest{Code: link.Code, RedirectStatus: ptr(65536 + 301)}, 400},
		"empty url":       {shardrpc.EditRequest{Code: link.Code, URL: ptr("")}, 400},
		"negative expiry": {shardrpc.EditRequest{Code: link.Code, ExpiresAtMs: ptr(int64(-1))}, 400},
		"bad tags":        {shardrpc.EditRequest{Code: link.Code, Tags: &[]string{"a b"}}, 400},
		"wrong shard":     {shardrpc.EditRequest{Code: link.Code, Title: ptr("x")}, 421},
		"not json":        {"{", 400},
	} {
		shard := uint64(1)
		if name == "wrong shard" {
			shard = 2
		}
		if a := (rpc{t: t}).call(c.RPCAddr(leader), shardrpc.PathEdit, shard, tc.req); a.status != tc.status {
			t.Errorf("%s: %s, want %d", name, a, tc.status)
		}
	}
	if got, err := cl.Resolve(ctx, 1, link.Code); err != nil || got.URL != "https://example.com/after" || got.Title != "later" || len(got.Tags) != 1 {
		t.Fatalf("bad edits changed the link: %+v, %v", got, err)
	}
}
