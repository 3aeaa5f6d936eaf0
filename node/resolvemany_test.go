package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
	"github.com/valyala/fasthttp"
)

// manyAnswer decodes a 200 answer of the multi-resolve RPC to want items.
func (a answer) manyItems(t *testing.T, want int) []shardrpc.ResolveManyItem {
	t.Helper()
	if a.status != fasthttp.StatusOK {
		t.Fatalf("multi-resolve: %s", a)
	}
	items, err := shardrpc.DecodeResolveManyResponse(a.body, want, nil)
	if err != nil {
		t.Fatalf("multi-resolve answer %q: %v", a.body, err)
	}
	return items
}

// TestResolveManyRPC: each item of a multi-resolve is answered as a local
// binary resolve of that code alone: the stored record with the applied
// index (at the leader and, once applied, at a follower), gone after a
// delete, maybe_stale for a code never created (only the leader can say
// not found), wrong_shard for another shard's code; a malformed request
// is refused as a whole with 400 bad_request.
func TestResolveManyRPC(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r := mustRing(t, c.Config())
	cl := rpc{t: t}
	const shard = 2
	leader := c.WaitLeader(shard)
	laddr := c.RPCAddr(leader)
	faddr := c.RPCAddr(follower(t, c, shard, leader))

	var links []shardrpc.Link
	for i := range 3 {
		a := cl.createAtLeader(c, shard, shardrpc.CreateRequest{Partition: partitionOf(t, r, shard, i), URL: fmt.Sprintf("https://example.com/many/%d", i), RequestID: fmt.Sprintf("many-%d", i), Title: "t", Tags: []string{"x"}})
		if a.status != fasthttp.StatusOK {
			t.Fatalf("create: %s", a)
		}
		l := a.link(t)
		l.Created, l.AppliedIndex = false, 0 // a create answer carries its entry's index
		links = append(links, l)
	}
	if a, err := cl.atLeader(c, shard, shardrpc.PathDelete, shardrpc.DeleteRequest{Code: links[2].Code, RequestID: "many-del"}); err != nil || a.status != fasthttp.StatusOK {
		t.Fatalf("delete: %s, %v", a, err)
	}
	missing := r.Codec().Encode(func() uint64 { lo, hi := r.Codec().Range(partitionOf(t, r, shard, 0)); return lo + (hi-lo)/2 }())
	other := r.Codec().Encode(func() uint64 { lo, _ := r.Codec().Range(partitionOf(t, r, 3, 0)); return lo }())
	codes := []string{links[0].Code, missing, links[2].Code, other, links[1].Code, links[0].Code}
	body := shardrpc.AppendResolveManyRequest(nil, codes)

	check := func(addr string, items []shardrpc.ResolveManyItem) error {
		for i, want := range []any{links[0], shardrpc.ErrCodeMaybeStale, shardrpc.ErrCodeGone, shardrpc.ErrCodeWrongShard, links[1], links[0]} {
			it := items[i]
			switch w := want.(type) {
			case shardrpc.Link:
				if it.Err != nil {
					return fmt.Errorf("%s: item %d (%s): %+v", addr, i, codes[i], *it.Err)
				}
				rec, err := linkstore.DecodeRecord(it.Record)
				if err != nil {
					return fmt.Errorf("%s: item %d: record: %w", addr, i, err)
				}
				if got := shardrpc.LinkFromRecord(rec); !reflect.DeepEqual(got, w) {
					return fmt.Errorf("%s: item %d: %+v, want %+v", addr, i, got, w)
				}
				if it.Applied == 0 {
					return fmt.Errorf("%s: item %d without its applied index", addr, i)
				}
			case shardrpc.Code:
				if it.Err == nil || it.Err.Code != w || it.Err.Message == "" {
					return fmt.Errorf("%s: item %d (%s): %+v, want %s", addr, i, codes[i], it, w)
				}
			}
		}
		return nil
	}
	if err := check(laddr, cl.call(laddr, shardrpc.PathResolveMany, shard, body).manyItems(t, len(codes))); err != nil {
		t.Fatal(err)
	}
	c.Eventually("the follower to apply the creates and the delete", func() error {
		a := cl.call(faddr, shardrpc.PathResolveMany, shard, body)
		if a.status != fasthttp.StatusOK {
			return fmt.Errorf("multi-resolve at the follower: %s", a)
		}
		return check(faddr, a.manyItems(t, len(codes)))
	})

	bad := []struct {
		name   string
		shard  uint64
		body   []byte
		status int
		code   shardrpc.Code
	}{
		{"empty body", shard, nil, 400, shardrpc.ErrCodeBadRequest},
		{"single resolve body", shard, shardrpc.AppendResolveRequest(nil, missing, false), 400, shardrpc.ErrCodeBadRequest},
		{"unknown version", shard, append([]byte{0x02}, body[1:]...), 400, shardrpc.ErrCodeBadRequest},
		{"zero items", shard, []byte{shardrpc.ResolveManyWireVersion, 0, 0, 0}, 400, shardrpc.ErrCodeBadRequest},
		{"truncated", shard, body[:len(body)-1], 400, shardrpc.ErrCodeBadRequest},
		{"unknown shard", 99, body, 404, shardrpc.ErrCodeUnknownShard},
	}
	for _, tc := range bad {
		a := cl.call(laddr, shardrpc.PathResolveMany, tc.shard, tc.body)
		if a.status != tc.status || a.errorBody(t).Code != tc.code {
			t.Errorf("%s: %s, want %d %s", tc.name, a, tc.status, tc.code)
		}
	}
}

// TestResolveManyConcurrentClient: many concurrent cold resolves through
// the client (which coalesces them into multi-resolves while a shard's
// resolve RPCs are busy) each return their own link; a deleted link is
// gone; a code never created is not found, confirmed by the leader; a
// code resolved right after its create is found, never a false not
// found. Then with the leader of every shard down the same resolves go to
// the next replica and still answer, and after it comes back as well.
func TestResolveManyConcurrentClient(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r, cl := clusterClient(t, c)
	ctx := func() context.Context {
		cx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		t.Cleanup(cancel)
		return cx
	}

	type want struct {
		shard uint64
		url   string // "": not found; "gone": deleted
	}
	codes := map[string]want{}
	var order []string
	for _, shard := range []uint64{1, 2, 3} {
		for i := range 40 {
			u := fmt.Sprintf("https://example.com/%d/%d", shard, i)
			l, err := cl.Create(ctx(), shard, shardrpc.CreateRequest{Partition: partitionOf(t, r, shard, i), URL: u})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			codes[l.Code] = want{shard, u}
			order = append(order, l.Code)
		}
		gone := order[len(order)-1]
		if _, err := cl.Delete(ctx(), shard, gone); err != nil {
			t.Fatalf("delete: %v", err)
		}
		codes[gone] = want{shard, "gone"}
		missing := r.Codec().Encode(func() uint64 { lo, hi := r.Codec().Range(partitionOf(t, r, shard, 0)); return lo + (hi-lo)/2 }())
		codes[missing] = want{shard, ""}
		order = append(order, missing)
	}

	resolveAll := func(phase string) {
		t.Helper()
		const workers = 64
		errs := make(chan error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := range 3 * len(order) / workers {
					code := order[(w*7+i)%len(order)]
					exp := codes[code]
					l, err := cl.Resolve(ctx(), exp.shard, code)
					switch {
					case exp.url == "gone" && errors.Is(err, shardrpc.ErrGone):
					case exp.url == "" && errors.Is(err, shardrpc.ErrNotFound):
					case exp.url != "" && exp.url != "gone" && err == nil && l.URL == exp.url && l.Code == code:
					default:
						errs <- fmt.Errorf("%s: resolve %s: %+v, %v; want %q", phase, code, l, err, exp.url)
						return
					}
				}
			})
		}
		// Creates and resolves at once: a code resolved right after its
		// create is found.
		for i := range 10 {
			shard := uint64(1 + i%3)
			u := fmt.Sprintf("https://example.com/fresh/%s/%d", phase, i)
			l, err := cl.Create(ctx(), shard, shardrpc.CreateRequest{Partition: partitionOf(t, r, shard, i), URL: u})
			if err != nil {
				t.Fatalf("%s: create: %v", phase, err)
			}
			if got, err := cl.Resolve(ctx(), shard, l.Code); err != nil || got.URL != u {
				t.Fatalf("%s: resolve right after the create of %s: %+v, %v", phase, l.Code, got, err)
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	resolveAll("all up")

	// Every shard's leader down at once (all three on one node when they
	// share it; else one node, the leader of shard 1): the local reads go
	// to the next replica, the leader fallback follows the new leader.
	down := c.WaitLeader(1)
	c.StopNode(down)
	c.WaitLeaders()
	resolveAll("leader down")
	c.StartNode(down)
	c.WaitLeaders()
	resolveAll("leader back")
}

// startFuzzNode starts a one-node cluster with one shard for a fuzz
// target, creates one link on it and returns the node's RPC handler and
// the link's code (for seeds that hit a stored record).
func startFuzzNode(f *testing.F) (fasthttp.RequestHandler, string) {
	f.Helper()
	c := nodetest.Start(f, nodetest.Options{Nodes: 1, Shards: 1, Partitions: 8})
	c.WaitLeader(1)
	r, err := c.Config().Ring()
	if err != nil {
		f.Fatal(err)
	}
	ans, err := (rpc{}).do(c.RPCAddr("n1"), fasthttp.MethodPost, shardrpc.PathCreate, 1, shardrpc.CreateRequest{Partition: r.PartitionsOf(1)[0], URL: "https://example.com/fuzz", RequestID: "fz"})
	if err != nil || ans.status != fasthttp.StatusOK {
		f.Fatalf("create: %v %v", ans, err)
	}
	var l shardrpc.Link
	if err := json.Unmarshal(ans.body, &l); err != nil {
		f.Fatal(err)
	}
	return c.Node("n1").Handler(), l.Code
}

// FuzzResolveManyRPC feeds arbitrary bodies to a live node's
// multi-resolve: it never panics; a 200 decodes to as many items as the
// request holds, anything else is an ErrorBody whose code matches its
// status.
func FuzzResolveManyRPC(f *testing.F) {
	f.Add(shardrpc.AppendResolveManyRequest(nil, []string{"abcdefg", "zzzzzzz"}))
	f.Add([]byte{shardrpc.ResolveManyWireVersion, 0, 0, 0})
	f.Add([]byte{shardrpc.ResolveManyWireVersion, 0, 0, 1, 64})
	f.Add([]byte(`{"code":"abcdefg"}`))
	h, code := startFuzzNode(f)
	f.Add(shardrpc.AppendResolveManyRequest(nil, []string{code, "abcdefg", code}))
	f.Fuzz(func(t *testing.T, body []byte) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(fasthttp.MethodPost)
		ctx.Request.SetRequestURI(shardrpc.PathResolveMany)
		ctx.Request.Header.Set(shardrpc.HeaderShard, "1")
		ctx.Request.SetBody(body)
		h(&ctx)
		status, raw := ctx.Response.StatusCode(), ctx.Response.Body()
		if status == fasthttp.StatusOK {
			codes, err := shardrpc.DecodeResolveManyRequest(body, nil)
			if err != nil {
				t.Fatalf("200 to a request the decoder refuses: %v", err)
			}
			items, err := shardrpc.DecodeResolveManyResponse(raw, len(codes), nil)
			if err != nil {
				t.Fatalf("200 with %q: %v", raw, err)
			}
			for i, it := range items {
				if it.Err == nil {
					if _, err := linkstore.DecodeRecord(it.Record); err != nil {
						t.Fatalf("item %d: record %q: %v", i, it.Record, err)
					}
				}
			}
			return
		}
		var e shardrpc.ErrorBody
		if err := json.Unmarshal(raw, &e); err != nil || e.Message == "" {
			t.Fatalf("%d with a body that is not an ErrorBody: %q", status, raw)
		}
		if e.Code.HTTPStatus() != status {
			t.Fatalf("%d with code %s (%d)", status, e.Code, e.Code.HTTPStatus())
		}
	})
}
