package node_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
	"github.com/valyala/fasthttp"
)

// binRecord decodes a 200 answer of the binary resolve RPC.
func (a answer) binRecord(t *testing.T) linkstore.Record {
	t.Helper()
	raw, _, err := shardrpc.DecodeResolveResponse(a.body)
	if err != nil {
		t.Fatalf("binary resolve answer %q: %v", a.body, err)
	}
	rec, err := linkstore.DecodeRecord(raw)
	if err != nil {
		t.Fatalf("record in the answer %q: %v", raw, err)
	}
	return rec
}

func binResolve(code string, linearizable bool) []byte {
	return shardrpc.AppendResolveRequest(nil, code, linearizable)
}

// TestResolveBinary: the binary resolve RPC answers the stored record
// (every field, the owner's, title, tags and redirect status included) at
// the leader and (once applied) at a follower, keeps the JSON resolve's
// error model (not_leader with the leader, maybe_stale locally and
// not_found only when linearizable, gone after a delete, wrong_shard) and
// refuses every malformed request with 400 bad_request.
func TestResolveBinary(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{})
	r := mustRing(t, c.Config())
	cl := rpc{t: t}
	const shard = 2
	leader := c.WaitLeader(shard)
	laddr := c.RPCAddr(leader)
	faddr := c.RPCAddr(follower(t, c, shard, leader))

	alias, ap := aliasOf(t, r, shard, "bin")
	created := cl.createAtLeader(c, shard, shardrpc.CreateRequest{Partition: ap, URL: "https://example.com/binary?q=1", Alias: alias, ExpiresAtMs: 4102444800000, RequestID: "bin-1",
		Owner: "key1", Title: "binary", Tags: []string{"go", "news"}, RedirectStatus: 307})
	if created.status != fasthttp.StatusOK {
		t.Fatalf("create: %s", created)
	}
	want := created.link(t)
	if want.Title != "binary" || len(want.Tags) != 2 || want.RedirectStatus != 307 || want.Owner != "key1" {
		t.Fatalf("created %+v without its fields", want)
	}
	gen := cl.createAtLeader(c, shard, shardrpc.CreateRequest{Partition: partitionOf(t, r, shard, 1), URL: "https://example.com/gen", RequestID: "bin-2"})
	if gen.status != fasthttp.StatusOK {
		t.Fatalf("create: %s", gen)
	}

	for _, l := range []shardrpc.Link{want, gen.link(t)} {
		a := cl.call(laddr, shardrpc.PathResolveBinary, shard, binResolve(l.Code, true))
		if a.status != fasthttp.StatusOK {
			t.Fatalf("linearizable binary resolve of %s at the leader: %s", l.Code, a)
		}
		got := shardrpc.LinkFromRecord(a.binRecord(t))
		l.Created, l.AppliedIndex = false, 0 // a create answer carries its entry's index
		if !reflect.DeepEqual(got, l) {
			t.Fatalf("binary resolve: %+v, want %+v", got, l)
		}
		// The answer carries the leader's applied index, read before
		// the record; a version 1 request gets a version 1 answer.
		if _, applied, err := shardrpc.DecodeResolveResponse(a.body); err != nil || applied == 0 || applied > c.Node(leader).Group(shard).AppliedIndex() {
			t.Fatalf("applied index of the answer: %d %v (the leader applied %d)", applied, err, c.Node(leader).Group(shard).AppliedIndex())
		}
		a1 := cl.call(laddr, shardrpc.PathResolveBinary, shard, shardrpc.AppendResolveRequestVersion(nil, shardrpc.ResolveWireVersion1, l.Code, true))
		if a1.status != fasthttp.StatusOK || len(a1.body) == 0 || a1.body[0] != shardrpc.ResolveWireVersion1 {
			t.Fatalf("version 1 request: %s", a1)
		}
		if got1 := shardrpc.LinkFromRecord(a1.binRecord(t)); !reflect.DeepEqual(got1, l) {
			t.Fatalf("version 1 answer: %+v, want %+v", got1, l)
		}
		c.Eventually("the follower to apply "+l.Code, func() error {
			a := cl.call(faddr, shardrpc.PathResolveBinary, shard, binResolve(l.Code, false))
			if a.status != fasthttp.StatusOK {
				return fmt.Errorf("local binary resolve at the follower: %s", a)
			}
			if got := shardrpc.LinkFromRecord(a.binRecord(t)); !reflect.DeepEqual(got, l) {
				return fmt.Errorf("local binary resolve: %+v, want %+v", got, l)
			}
			return nil
		})
		a = cl.call(faddr, shardrpc.PathResolveBinary, shard, binResolve(l.Code, true))
		if e := a.errorBody(t); a.status != fasthttp.StatusMisdirectedRequest || e.Code != shardrpc.ErrCodeNotLeader || e.LeaderRPC != laddr {
			t.Fatalf("linearizable binary resolve at a follower: %s", a)
		}
	}

	missing := r.Codec().Encode(func() uint64 { lo, hi := r.Codec().Range(partitionOf(t, r, shard, 0)); return lo + (hi-lo)/2 }())
	if a := cl.call(laddr, shardrpc.PathResolveBinary, shard, binResolve(missing, true)); a.status != fasthttp.StatusNotFound || a.errorBody(t).Code != shardrpc.ErrCodeNotFound {
		t.Fatalf("linearizable binary resolve of a missing code: %s", a)
	}
	for _, addr := range []string{laddr, faddr} {
		if a := cl.call(addr, shardrpc.PathResolveBinary, shard, binResolve(missing, false)); a.status != fasthttp.StatusNotFound || a.errorBody(t).Code != shardrpc.ErrCodeMaybeStale {
			t.Fatalf("local binary resolve of a missing code at %s: %s", addr, a)
		}
	}

	// A deleted link: gone, from the leader and from a follower that
	// applied the tombstone.
	if a, err := cl.atLeader(c, shard, shardrpc.PathDelete, shardrpc.DeleteRequest{Code: alias, RequestID: "bin-del"}); err != nil || a.status != fasthttp.StatusOK {
		t.Fatalf("delete: %s, %v", a, err)
	}
	if a := cl.call(laddr, shardrpc.PathResolveBinary, shard, binResolve(alias, true)); a.status != fasthttp.StatusGone || a.errorBody(t).Code != shardrpc.ErrCodeGone {
		t.Fatalf("binary resolve of a deleted link: %s", a)
	}
	c.Eventually("the follower to apply the delete", func() error {
		if a := cl.call(faddr, shardrpc.PathResolveBinary, shard, binResolve(alias, false)); a.status != fasthttp.StatusGone {
			return fmt.Errorf("binary resolve of a deleted link at the follower: %s", a)
		}
		return nil
	})

	other := r.Codec().Encode(func() uint64 { lo, _ := r.Codec().Range(partitionOf(t, r, 3, 0)); return lo }())
	bad := []struct {
		name   string
		shard  uint64
		body   []byte
		status int
		code   shardrpc.Code
	}{
		{"empty body", shard, nil, 400, shardrpc.ErrCodeBadRequest},
		{"JSON body", shard, []byte(`{"code":"abcdefg"}`), 400, shardrpc.ErrCodeBadRequest},
		{"unknown version", shard, append([]byte{0x03}, binResolve(missing, false)[1:]...), 400, shardrpc.ErrCodeBadRequest},
		{"unknown flag", shard, []byte{0x01, 0x02, 1, 'a'}, 400, shardrpc.ErrCodeBadRequest},
		{"code length 0", shard, []byte{0x01, 0x00, 0}, 400, shardrpc.ErrCodeBadRequest},
		{"code length 65", shard, append([]byte{0x01, 0x00, 65}, make([]byte, 65)...), 400, shardrpc.ErrCodeBadRequest},
		{"short code", shard, []byte{0x01, 0x00, 5, 'a', 'b'}, 400, shardrpc.ErrCodeBadRequest},
		{"trailing bytes", shard, append(binResolve(missing, false), 'x'), 400, shardrpc.ErrCodeBadRequest},
		{"code of another shard", shard, binResolve(other, false), 421, shardrpc.ErrCodeWrongShard},
		{"unknown shard", 99, binResolve(missing, false), 404, shardrpc.ErrCodeUnknownShard},
		{"no shard header", 0, binResolve(missing, false), 400, shardrpc.ErrCodeBadRequest},
	}
	for _, tc := range bad {
		a := cl.call(laddr, shardrpc.PathResolveBinary, tc.shard, tc.body)
		if a.status != tc.status || a.errorBody(t).Code != tc.code {
			t.Errorf("%s: %s, want %d %s", tc.name, a, tc.status, tc.code)
		}
	}
}

// TestResolveBinarySecret: the binary resolve is refused without the RPC
// secret, like every call.
func TestResolveBinarySecret(t *testing.T) {
	const secret = "s3cret-rpc"
	c := nodetest.Start(t, nodetest.Options{Nodes: 1, Shards: 1, RPCSecret: secret})
	addr := c.RPCAddr(c.WaitLeader(1))
	for _, s := range []string{"", "wrong"} {
		a := rpc{t: t, secret: s}.call(addr, shardrpc.PathResolveBinary, 1, binResolve("abcdefg", false))
		if a.status != fasthttp.StatusUnauthorized || a.errorBody(t).Code != shardrpc.ErrCodeUnauthorized {
			t.Fatalf("secret %q: %s, want 401 unauthorized", s, a)
		}
	}
	a := rpc{t: t, secret: secret}.call(addr, shardrpc.PathResolveBinary, 1, binResolve("abcdefg", false))
	if a.status != fasthttp.StatusNotFound || a.errorBody(t).Code != shardrpc.ErrCodeMaybeStale {
		t.Fatalf("with the secret: %s, want 404 maybe_stale", a)
	}
}

// TestResolveBinaryDoesNotAllocate: the node's side of a binary resolve
// that finds its link locally (the cold redirect's common case) allocates
// nothing: header parsing, the key, the Pebble Get and the answer all use
// reused buffers.
func TestResolveBinaryDoesNotAllocate(t *testing.T) {
	c := nodetest.Start(t, nodetest.Options{Nodes: 1, Shards: 1, Partitions: 8})
	r := mustRing(t, c.Config())
	addr := c.RPCAddr(c.WaitLeader(1))
	a := rpc{t: t}.call(addr, shardrpc.PathCreate, 1, shardrpc.CreateRequest{Partition: partitionOf(t, r, 1, 0), URL: "https://example.com/no-alloc", RequestID: "na-1"})
	if a.status != fasthttp.StatusOK {
		t.Fatalf("create: %s", a)
	}
	code := a.link(t).Code
	h := c.Node("n1").Handler()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(fasthttp.MethodPost)
	ctx.Request.SetRequestURI(shardrpc.PathResolveBinary)
	ctx.Request.Header.Set(shardrpc.HeaderShard, "1")
	ctx.Request.SetBody(binResolve(code, false))
	serve := func() {
		ctx.Response.Reset()
		h(&ctx)
		if ctx.Response.StatusCode() != fasthttp.StatusOK {
			t.Fatalf("binary resolve: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
	serve()
	if rec := (answer{status: 200, body: ctx.Response.Body()}).binRecord(t); rec.URL != "https://example.com/no-alloc" {
		t.Fatalf("record %+v", rec)
	}
	if raceEnabled {
		t.Skip("allocation counts are not checked under the race detector")
	}
	if n := testing.AllocsPerRun(200, serve); n != 0 {
		t.Fatalf("a local binary resolve allocates %.1f times, want 0", n)
	}
}

// FuzzResolveBinaryRPC feeds arbitrary bodies and shard headers to a live
// node's binary resolve: it never panics; a 200 carries a record that
// decodes, anything else is an ErrorBody whose code matches its status.
func FuzzResolveBinaryRPC(f *testing.F) {
	f.Add("1", []byte("\x01\x00\x07abcdefg"))
	f.Add("1", []byte("\x01\x01\x07abcdefg"))
	f.Add("1", []byte("\x01\x00\x40"))
	f.Add("1", []byte("\x01\x00\x00"))
	f.Add("0", []byte("\x01\x00\x01a"))
	f.Add("18446744073709551616", []byte("\x01\x00\x01a"))
	f.Add("1", []byte(`{"code":"abcdefg"}`))
	h, code := startFuzzNode(f)
	f.Add("1", binResolve(code, false))
	f.Add("1", binResolve(code, true))
	f.Fuzz(func(t *testing.T, shard string, body []byte) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(fasthttp.MethodPost)
		ctx.Request.SetRequestURI(shardrpc.PathResolveBinary)
		ctx.Request.Header.Set(shardrpc.HeaderShard, shard)
		ctx.Request.SetBody(body)
		h(&ctx)
		status, raw := ctx.Response.StatusCode(), ctx.Response.Body()
		if status == fasthttp.StatusOK {
			rec, _, err := shardrpc.DecodeResolveResponse(raw)
			if err == nil {
				_, err = linkstore.DecodeRecord(rec)
			}
			if err != nil {
				t.Fatalf("200 with %q: %v", raw, err)
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
