package node_test

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
	"github.com/valyala/fasthttp"
)

// FuzzRPC feeds arbitrary bodies, paths and shard headers to a live node's
// RPC handler: it never panics, and every answer is 200 with a JSON body
// (a multi-resolve answer that decodes, on PathResolveMany) or an ErrorBody
// of a contract code (405 and unknown paths aside, whose code is
// bad_request).
func FuzzRPC(f *testing.F) {
	f.Add(byte(0), "1", []byte(`{"partition":3,"url":"https://x.example/","alias":"fuzz-alias","request_id":"r1"}`))
	f.Add(byte(0), "1", []byte(`{"partition":4294967295,"url":""}`))
	f.Add(byte(1), "1", []byte(`{"code":"abcdefg","linearizable":true}`))
	f.Add(byte(1), "1", []byte(`{"code":""}`))
	f.Add(byte(2), "1", []byte(`{}`))
	f.Add(byte(2), "x", []byte(nil))
	f.Add(byte(3), "1", []byte("\x01\x02r1\x01"))
	f.Add(byte(4), "1", []byte(`{"code":"abcdefg","from":"2026-01-01","to":"2026-01-31"}`))
	f.Add(byte(5), "18446744073709551615", []byte(`[`))
	f.Add(byte(6), "1", []byte(`{"code":"abcdefg","request_id":"d1"}`))
	f.Add(byte(6), "1", []byte(`{"code":""}`))
	f.Add(byte(7), "1", []byte(`{"node_id":"n1"}`))
	f.Add(byte(7), "1", []byte(`{"node_id":"n2"}`))
	f.Add(byte(8), "1", []byte(`{"node_id":"n1"}`))
	f.Add(byte(8), "1", []byte(`{"node_id":""}`))
	f.Add(byte(9), "1", []byte(`{"node_id":"n1","applied_index":5,"target":3}`))
	f.Add(byte(9), "2", []byte(`{"node_id":"n1","applied_index":18446744073709551615}`))
	f.Add(byte(10), "1", []byte(`{"all":true,"limit":5,"q":"x","after":{"created_at_ms":5,"code":"abc"}}`))
	f.Add(byte(10), "1", []byte(`{"owner":"alice","limit":0}`))
	f.Add(byte(11), "1", []byte(`{"items":[{"partition":3,"url":"https://x.example/","request_id":"b1"},{"partition":3,"url":""}]}`))
	f.Add(byte(11), "1", []byte(`{"items":[]}`))
	f.Add(byte(12), "1", []byte(`{"code":"abcdefg","title":"t","tags":["a"],"redirect_status":302,"expires_at_ms":0}`))
	f.Add(byte(12), "1", []byte(`{"code":"abcdefg","redirect_status":65837}`))
	f.Add(byte(13), "1", shardrpc.AppendResolveManyRequest(nil, []string{"abcdefg", "zzzzzzz"}))
	f.Add(byte(13), "2", shardrpc.AppendResolveManyRequest(nil, []string{"abcdefg"}))
	c := nodetest.Start(f, nodetest.Options{Nodes: 1, Shards: 1, Partitions: 8})
	c.WaitLeader(1)
	h := c.Node("n1").Handler()
	const unknownPath = "/rpc/v1/other"
	paths := []string{shardrpc.PathCreate, shardrpc.PathResolve, shardrpc.PathStatus, shardrpc.PathClicks, shardrpc.PathStats, unknownPath, shardrpc.PathDelete,
		shardrpc.PathGroupState, shardrpc.PathGroupJoin, shardrpc.PathGroupPromote,
		shardrpc.PathList, shardrpc.PathBulkCreate, shardrpc.PathEdit, shardrpc.PathResolveMany}
	f.Fuzz(func(t *testing.T, op byte, shard string, body []byte) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(fasthttp.MethodPost)
		path := paths[int(op)%len(paths)]
		ctx.Request.SetRequestURI(path)
		ctx.Request.Header.Set(shardrpc.HeaderShard, shard)
		ctx.Request.SetBody(body)
		h(&ctx)
		status := ctx.Response.StatusCode()
		raw := ctx.Response.Body()
		if status == fasthttp.StatusOK && path == shardrpc.PathResolveMany {
			// The one binary answer here: it must decode as the answer
			// to the codes the request carried.
			codes, err := shardrpc.DecodeResolveManyRequest(body, nil)
			if err != nil {
				t.Fatalf("200 to a multi-resolve the decoder refuses: %v", err)
			}
			if _, err := shardrpc.DecodeResolveManyResponse(raw, len(codes), nil); err != nil {
				t.Fatalf("200 with %q: %v", raw, err)
			}
			return
		}
		if status == fasthttp.StatusOK {
			if !json.Valid(raw) {
				t.Fatalf("200 with a body that is not JSON: %q", raw)
			}
			return
		}
		var e shardrpc.ErrorBody
		if err := json.Unmarshal(raw, &e); err != nil || e.Message == "" {
			t.Fatalf("%d with a body that is not an ErrorBody: %q", status, raw)
		}
		if e.Code.HTTPStatus() != status && !(status == fasthttp.StatusNotFound && e.Code == shardrpc.ErrCodeBadRequest) {
			t.Fatalf("%d with code %s (%d)", status, e.Code, e.Code.HTTPStatus())
		}
		if _, err := strconv.ParseUint(shard, 10, 64); err != nil && e.Code != shardrpc.ErrCodeBadRequest && path != unknownPath {
			t.Fatalf("shard header %q accepted: %d %s", shard, status, e.Code)
		}
	})
}
