package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/linkraft/linkraft/node"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shardrpc"
)

// dumpGroup returns every application key and value of a replica and the
// applied index they are at.
func dumpGroup(g *raftstore.Group) ([][2][]byte, uint64, error) {
	before := g.AppliedIndex()
	var kvs [][2][]byte
	err := g.Read(context.Background(), raftstore.ReadLocal, func(r raftstore.Reader) error {
		return r.Scan(nil, nil, func(k, v []byte) bool {
			kvs = append(kvs, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			return true
		})
	})
	if err == nil && g.AppliedIndex() != before {
		err = errors.New("still applying")
	}
	return kvs, before, err
}

// sameReplicas fails unless every running replica of shard holds the same
// bytes at the same applied index.
func sameReplicas(c *nodetest.Cluster, shard uint64) error {
	var ref [][2][]byte
	var refIdx uint64
	first := ""
	for _, id := range c.Running() {
		g := c.Node(id).Group(shard)
		if g == nil {
			continue
		}
		kvs, idx, err := dumpGroup(g)
		if err != nil {
			return fmt.Errorf("%s: %w", id, err)
		}
		if first == "" {
			ref, refIdx, first = kvs, idx, id
			continue
		}
		if idx != refIdx {
			return fmt.Errorf("%s applied %d, %s %d", id, idx, first, refIdx)
		}
		if len(kvs) != len(ref) {
			return fmt.Errorf("%s holds %d keys, %s %d", id, len(kvs), first, len(ref))
		}
		for i := range kvs {
			if !bytes.Equal(kvs[i][0], ref[i][0]) || !bytes.Equal(kvs[i][1], ref[i][1]) {
				return fmt.Errorf("%s and %s differ at key %x", id, first, kvs[i][0])
			}
		}
	}
	return nil
}

// TestPurgeSweepOnCluster lets the leaders' background sweep purge expired
// links on a real 3-node cluster: every replica then answers gone for them
// (a tombstone, like a delete), links that expire later or never stay, the
// replicas end byte-identical, and a purged alias is never issued again.
func TestPurgeSweepOnCluster(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{NodeOptions: func(_ string, o *node.Options) {
		o.PurgeInterval = 50 * time.Millisecond
		o.PurgeGrace = -1    // purge at expiry
		o.PurgeScanLimit = 3 // many ticks per pass: exercises the cursor
	}})
	r, cl := clusterClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	soon := time.Now().Add(time.Second).UnixMilli()
	var expiring, staying []string
	for i := 0; i < 12; i++ {
		p := partitionOf(t, r, 1, i)
		req := shardrpc.CreateRequest{Partition: p, URL: fmt.Sprintf("https://example.com/purge/%d", i)}
		switch i % 3 {
		case 0:
			req.ExpiresAtMs = soon
		case 1:
			req.ExpiresAtMs = time.Now().Add(time.Hour).UnixMilli()
		}
		link, err := cl.Create(ctx, 1, req)
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			expiring = append(expiring, link.Code)
		} else {
			staying = append(staying, link.Code)
		}
	}
	alias, ap := aliasOf(t, r, 1, "purged-alias")
	if _, err := cl.Create(ctx, 1, shardrpc.CreateRequest{Partition: ap, URL: "https://example.com/a", Alias: alias, ExpiresAtMs: soon}); err != nil {
		t.Fatal(err)
	}
	expiring = append(expiring, alias)

	for _, id := range c.NodeIDs() {
		for _, code := range expiring {
			c.Eventually("purge of "+code+" at "+id, func() error {
				a := (rpc{t: t}).call(c.RPCAddr(id), shardrpc.PathResolve, 1, shardrpc.ResolveRequest{Code: code})
				if a.status != 410 {
					return fmt.Errorf("answer %s", a)
				}
				return nil
			})
		}
	}
	for _, code := range staying {
		if _, err := cl.Resolve(ctx, 1, code); err != nil {
			t.Fatalf("a link that expires later or never was purged: %s: %v", code, err)
		}
	}
	var purged uint64
	for _, id := range c.NodeIDs() {
		purged += c.Node(id).PurgedLinks()
	}
	if purged != uint64(len(expiring)) {
		t.Fatalf("nodes report %d purged links, want %d", purged, len(expiring))
	}
	c.Eventually("identical replicas", func() error { return sameReplicas(c, 1) })
	if _, err := cl.Create(ctx, 1, shardrpc.CreateRequest{Partition: ap, URL: "https://example.com/a", Alias: alias}); !errors.Is(err, shardrpc.ErrAliasTaken) {
		t.Fatalf("re-creating a purged alias: %v, want ErrAliasTaken", err)
	}
}
