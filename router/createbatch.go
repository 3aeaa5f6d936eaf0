package router

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/linkraft/linkraft/internal/coalesce"
	"github.com/linkraft/linkraft/shardrpc"
)

// Creates coalescing: under load, most of a shorten's cost on the router
// (and on the node that leads the shard) is the RPC itself (a write and a
// read on each side of a loopback or LAN connection, the HTTP framing,
// the JSON envelope), not the create. The router therefore coalesces the
// creates that arrive for one shard while that shard's RPCs are busy into
// one bulk create (shardrpc.PathBulkCreate, one Raft entry, one result per
// item), the way the bulk API sends its items. The mechanism is
// internal/coalesce's, one coalesce.Batcher per shard:
//
//   - a shard has at most createInflight create RPCs in flight;
//   - a create that finds a free slot and no batch waiting is sent at once,
//     alone, as a plain Create: an idle or lightly loaded router adds no
//     wait and no batching;
//   - otherwise it joins the shard's newest waiting batch (or opens one, as
//     its sender) and, when a slot frees, the oldest batch is sent as one
//     bulk create, with up to maxCreateBatch items and maxCreateBatchBytes
//     of them (a batch of one as a plain Create).
//
// No timer lingers: a batch only grows while the shard is busy anyway.
// The sender's context bounds its batch's wait for a slot; a waiting
// create's own context bounds its wait for the answer. Every item keeps its own RequestID, so a retried bulk create (the client
// retries not_leader and lost connections with the same IDs) stores each
// link at most once, as a retried single create does.

// createInflight bounds the create RPCs in flight per shard. Eight keep
// Raft's pipeline to the followers full (each RPC is one entry; the
// node's own batcher cannot merge bulk creates) while the creates that
// arrive meanwhile wait in batches. End to end at c=256 (3 shards), 8
// gave 6,600-7,100 creates/s where 2 gave 4,000-7,600 on the same noisy
// machine (docs/BENCHMARKS.md, "Shorten: the router's share").
const createInflight = 8

// maxCreateBatch bounds the items of one coalesced bulk create: at most
// MaxBodySize bytes each, a batch stays well inside a node's RPC body
// limit, and far below shardrpc.MaxBulkItems.
const maxCreateBatch = 256

// maxCreateBatchBytes bounds the encoded size of one coalesced bulk
// create, far inside a node's 8 MiB RPC body limit: each item counts as
// its worst-case JSON encoding (itemBytes).
const maxCreateBatchBytes = 4 << 20

// itemBytes is an upper bound of req's JSON encoding in a bulk create:
// every string byte escaped as \u00XX (6 bytes), plus the field names and
// numbers.
func itemBytes(req *shardrpc.CreateRequest) int {
	n := len(req.URL) + len(req.Alias) + len(req.Owner) + len(req.Title) + len(req.RequestID)
	for _, t := range req.Tags {
		n += len(t) + 3
	}
	return 6*n + 512
}

// createBatcher coalesces concurrent creates per shard: one
// coalesce.Batcher per shard, whose batches are bulk creates. Its zero
// value is not usable: newCreateBatcher.
type createBatcher struct {
	shards ShardClient
	bulk   BulkClient // nil: the shard client has no bulk create; every create goes alone

	mu  sync.Mutex
	per map[uint64]*createQueue
}

// createQueue is one shard's create slots and waiting batches.
type createQueue = coalesce.Batcher[shardrpc.CreateRequest, shardrpc.BulkItemResult]

// newCreateBatcher returns a batcher sending through shards (and its bulk
// create when it has one).
func newCreateBatcher(shards ShardClient) *createBatcher {
	bc, _ := shards.(BulkClient)
	return &createBatcher{shards: shards, bulk: bc, per: make(map[uint64]*createQueue)}
}

// shard returns shard's queue, creating it on first use.
func (b *createBatcher) shard(id uint64) *createQueue {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.per[id]
	if q == nil {
		q = coalesce.New(coalesce.Config[shardrpc.CreateRequest, shardrpc.BulkItemResult]{
			InFlight: createInflight,
			MaxItems: maxCreateBatch,
			MaxBytes: maxCreateBatchBytes,
			Size:     func(req shardrpc.CreateRequest) int { return itemBytes(&req) },
			Send: func(ctx context.Context, _ time.Time, items []shardrpc.CreateRequest) ([]shardrpc.BulkItemResult, error) {
				return b.send(ctx, id, items)
			},
		})
		b.per[id] = q
	}
	return q
}

// create stores req in shard, alone or as one item of a bulk create, and
// returns the link or the error a single Create would have returned (an
// item the shard refused comes back as a *shardrpc.RemoteError, so it
// maps to the same API error). ctx bounds the wait for a slot or for the
// batch's answer, and the RPC.
func (b *createBatcher) create(ctx context.Context, shard uint64, req shardrpc.CreateRequest) (shardrpc.Link, error) {
	if b.bulk == nil {
		return b.shards.Create(ctx, shard, req)
	}
	q := b.shard(shard)
	if q.TryAcquire() {
		// A free slot and nobody waiting: go alone, now.
		defer q.Release()
		return b.shards.Create(ctx, shard, req)
	}
	got, err := q.Join(ctx, time.Time{}, req)
	if errors.Is(err, coalesce.ErrGaveUp) {
		return shardrpc.Link{}, fmt.Errorf("create on shard %d: %w", shard, err)
	}
	if err != nil {
		return shardrpc.Link{}, err
	}
	if got.Error != nil {
		return shardrpc.Link{}, &shardrpc.RemoteError{Node: "shard " + strconv.FormatUint(shard, 10), Status: got.Error.Code.HTTPStatus(), Body: *got.Error}
	}
	return *got.Link, nil
}

// send sends one batch of creates to shard: a lone one (nothing joined
// its sender) as a plain Create, more as one bulk create.
func (b *createBatcher) send(ctx context.Context, shard uint64, items []shardrpc.CreateRequest) ([]shardrpc.BulkItemResult, error) {
	if len(items) == 1 {
		link, err := b.shards.Create(ctx, shard, items[0])
		if err != nil {
			return nil, err
		}
		return []shardrpc.BulkItemResult{{Link: &link}}, nil
	}
	results, err := b.bulk.BulkCreate(ctx, shard, items)
	if err == nil && len(results) != len(items) {
		return nil, fmt.Errorf("%w: shard %d answered %d results for %d creates", shardrpc.ErrProtocol, shard, len(results), len(items))
	}
	return results, err
}
