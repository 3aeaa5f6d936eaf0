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

// TestDeleteOnCluster deletes links through the RPC of a real 3-node
// cluster: every replica answers gone afterwards (a local read may), the
// code is never given out again, a retried delete with the same request ID
// is answered as deleted, and all of it survives a restart of every node.
func TestDeleteOnCluster(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r, cl := clusterClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	p := partitionOf(t, r, 1, 0)
	gen, err := cl.Create(ctx, 1, shardrpc.CreateRequest{Partition: p, URL: "https://example.com/delete-me"})
	if err != nil {
		t.Fatal(err)
	}
	alias, ap := aliasOf(t, r, 1, "gone-alias")
	if _, err := cl.Create(ctx, 1, shardrpc.CreateRequest{Partition: ap, URL: "https://example.com/alias", Alias: alias}); err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{gen.Code, alias} {
		if _, err := cl.Delete(ctx, 1, code); err != nil {
			t.Fatalf("delete %s: %v", code, err)
		}
		if _, err := cl.Resolve(ctx, 1, code); !errors.Is(err, shardrpc.ErrGone) {
			t.Fatalf("resolve of deleted %s: %v, want ErrGone", code, err)
		}
		if _, err := cl.Delete(ctx, 1, code); !errors.Is(err, shardrpc.ErrGone) {
			t.Fatalf("second delete of %s: %v, want ErrGone", code, err)
		}
	}
	// Every replica answers gone to a local read once it applied the delete.
	for _, id := range c.NodeIDs() {
		c.Eventually("gone at "+id, func() error {
			a := (rpc{t: t}).call(c.RPCAddr(id), shardrpc.PathResolve, 1, shardrpc.ResolveRequest{Code: gen.Code})
			if a.status != 410 || a.errorBody(t).Code != shardrpc.ErrCodeGone {
				return fmt.Errorf("answer %s", a)
			}
			return nil
		})
	}
	// A deleted alias cannot be created again, not even for the same URL.
	if _, err := cl.Create(ctx, 1, shardrpc.CreateRequest{Partition: ap, URL: "https://example.com/alias", Alias: alias}); !errors.Is(err, shardrpc.ErrAliasTaken) {
		t.Fatalf("re-creating a deleted alias: %v, want ErrAliasTaken", err)
	}
	// The allocator moves on: a create of the same URL gets a new code.
	again, err := cl.Create(ctx, 1, shardrpc.CreateRequest{Partition: p, URL: "https://example.com/delete-me", Reuse: true})
	if err != nil || again.Code == gen.Code || !again.Created {
		t.Fatalf("create after delete: %+v, %v", again, err)
	}
	// An unknown code is not found, confirmed by the leader.
	unknown := r.Codec().Encode(999_999)
	if _, err := cl.Delete(ctx, r.ShardOf(r.PartitionOfCode(unknown)), unknown); !errors.Is(err, shardrpc.ErrNotFound) {
		t.Fatalf("delete of an unknown code: %v, want ErrNotFound", err)
	}
	// A retried delete (same request ID) gets the first answer again.
	leader := c.WaitLeader(1)
	req := shardrpc.DeleteRequest{Code: again.Code, RequestID: "retry-1"}
	for i := 0; i < 2; i++ {
		if a := (rpc{t: t}).call(c.RPCAddr(leader), shardrpc.PathDelete, 1, req); a.status != 200 {
			t.Fatalf("delete attempt %d: %s", i, a)
		}
	}
	// Bad requests.
	if a := (rpc{t: t}).call(c.RPCAddr(leader), shardrpc.PathDelete, 1, shardrpc.DeleteRequest{}); a.status != 400 {
		t.Fatalf("delete without code: %s", a)
	}
	if a := (rpc{t: t}).call(c.RPCAddr(leader), shardrpc.PathDelete, 2, shardrpc.DeleteRequest{Code: gen.Code}); a.status != 421 || a.errorBody(t).Code != shardrpc.ErrCodeWrongShard {
		t.Fatalf("delete at the wrong shard: %s", a)
	}

	// Limits are stored with the link (record version 0x02).
	limited, err := cl.Create(ctx, 1, shardrpc.CreateRequest{Partition: p, URL: "https://example.com/limited", ExpiresAtMs: 4_102_444_800_000, MaxClicks: 7})
	if err != nil || limited.ExpiresAtMs != 4_102_444_800_000 || limited.MaxClicks != 7 {
		t.Fatalf("create with limits: %+v, %v", limited, err)
	}
	if a := (rpc{t: t}).call(c.RPCAddr(leader), shardrpc.PathCreate, 1, shardrpc.CreateRequest{Partition: p, URL: "https://x/", ExpiresAtMs: -1}); a.status != 400 {
		t.Fatalf("negative expiry: %s", a)
	}

	for _, id := range c.NodeIDs() {
		c.RestartNode(id)
	}
	c.WaitLeaders()
	for _, code := range []string{gen.Code, alias, again.Code} {
		if _, err := cl.Resolve(ctx, 1, code); !errors.Is(err, shardrpc.ErrGone) {
			t.Fatalf("resolve of deleted %s after restart: %v, want ErrGone", code, err)
		}
	}
	if got, err := cl.Resolve(ctx, 1, limited.Code); err != nil || got.ExpiresAtMs != limited.ExpiresAtMs || got.MaxClicks != 7 {
		t.Fatalf("resolve of the limited link after restart: %+v, %v", got, err)
	}
}
