package router

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/linkraft/linkraft/shardrpc"
)

// Creates coalescing: under load, most of a shorten's cost on the router
// (and on the node that leads the shard) is the RPC itself (a write and a
// read on each side of a loopback or LAN connection, the HTTP framing,
// the JSON envelope), not the create. The router therefore coalesces the
// creates that arrive for one shard while that shard's RPCs are busy into
// one bulk create (shardrpc.PathBulkCreate, one Raft entry, one result per
// item), the way the bulk API sends its items:
//
//   - a shard has at most createInflight create RPCs in flight;
//   - a create that finds a free slot and no batch waiting is sent at once,
//     alone, as a plain Create: an idle or lightly loaded router adds no
//     wait and no batching;
//   - otherwise it joins the shard's waiting batch (or opens one, as its
//     sender) and the batch is sent as one bulk create when a slot frees,
//     with up to maxCreateBatch items and maxCreateBatchBytes of them.
//
// No timer lingers: a batch only grows while the shard is busy anyway.
// Every item keeps its own RequestID, so a retried bulk create (the client
// retries not_leader and lost connections with the same IDs) stores each
// link at most once, as a retried single create does.

// createInflight bounds the create RPCs in flight per shard. Eight keep
// Raft's pipeline to the followers full (each RPC is one entry; the
// node's own batcher cannot merge bulk creates) while the creates that
// arrive meanwhile wait in one batch. End to end at c=256 (3 shards), 8
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

// createBatcher coalesces concurrent creates per shard. Its zero value is
// not usable: newCreateBatcher.
type createBatcher struct {
	shards ShardClient
	bulk   BulkClient // nil: the shard client has no bulk create; every create goes alone

	mu  sync.Mutex
	per map[uint64]*shardCreates
}

// shardCreates is one shard's in-flight slots and waiting batch.
type shardCreates struct {
	slots   chan struct{} // a token per RPC in flight, capacity createInflight
	pending *createBatch  // guarded by createBatcher.mu; nil: none waiting
}

// createBatch is one bulk create being filled or sent. items and its
// size are guarded by createBatcher.mu until the batch is sealed (taken
// out of pending); results and err are written once by the sender before
// done closes.
type createBatch struct {
	items   []shardrpc.CreateRequest
	size    int // sum of the items' itemBytes
	results []shardrpc.BulkItemResult
	err     error
	done    chan struct{}
}

// newCreateBatcher returns a batcher sending through shards (and its bulk
// create when it has one).
func newCreateBatcher(shards ShardClient) *createBatcher {
	bc, _ := shards.(BulkClient)
	return &createBatcher{shards: shards, bulk: bc, per: make(map[uint64]*shardCreates)}
}

// shard returns shard's state, creating it on first use.
func (b *createBatcher) shard(id uint64) *shardCreates {
	s := b.per[id]
	if s == nil {
		s = &shardCreates{slots: make(chan struct{}, createInflight)}
		b.per[id] = s
	}
	return s
}

// create stores req in shard, alone or as one item of a bulk create, and
// returns the link or the error a single Create would have returned (an
// item the shard refused comes back as a *shardrpc.RemoteError, so it
// maps to the same API error). ctx bounds the wait for a slot and the RPC.
func (b *createBatcher) create(ctx context.Context, shard uint64, req shardrpc.CreateRequest) (shardrpc.Link, error) {
	if b.bulk == nil {
		return b.shards.Create(ctx, shard, req)
	}
	b.mu.Lock()
	s := b.shard(shard)
	if s.pending == nil {
		select {
		case s.slots <- struct{}{}:
			// A free slot and nobody waiting: go alone, now.
			b.mu.Unlock()
			defer func() { <-s.slots }()
			return b.shards.Create(ctx, shard, req)
		default:
		}
	}
	size := itemBytes(&req)
	batch := s.pending
	if batch != nil && batch.size+size > maxCreateBatchBytes {
		s.pending = nil // sealed: too big to take this one too
		batch = nil
	}
	sender := batch == nil
	if sender {
		batch = &createBatch{done: make(chan struct{})}
		s.pending = batch
	}
	idx := len(batch.items)
	batch.items = append(batch.items, req)
	batch.size += size
	if len(batch.items) == maxCreateBatch {
		s.pending = nil // full: the next create opens another batch
	}
	b.mu.Unlock()

	if sender {
		b.send(ctx, shard, s, batch)
	} else {
		<-batch.done
	}
	if batch.err != nil {
		return shardrpc.Link{}, batch.err
	}
	got := batch.results[idx]
	if got.Error != nil {
		return shardrpc.Link{}, &shardrpc.RemoteError{Node: "shard " + strconv.FormatUint(shard, 10), Status: got.Error.Code.HTTPStatus(), Body: *got.Error}
	}
	return *got.Link, nil
}

// send waits for a slot of s, seals batch and sends it, then records the
// outcome and wakes its other creates.
func (b *createBatcher) send(ctx context.Context, shard uint64, s *shardCreates, batch *createBatch) {
	defer close(batch.done)
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		b.mu.Lock()
		if s.pending == batch {
			s.pending = nil
		}
		b.mu.Unlock()
		batch.err = fmt.Errorf("create on shard %d: waiting for a free RPC slot: %w", shard, ctx.Err())
		return
	}
	defer func() { <-s.slots }()
	b.mu.Lock()
	if s.pending == batch {
		s.pending = nil
	}
	items := batch.items
	b.mu.Unlock()
	if len(items) == 1 {
		link, err := b.shards.Create(ctx, shard, items[0])
		if err != nil {
			batch.err = err
			return
		}
		batch.results = []shardrpc.BulkItemResult{{Link: &link}}
		return
	}
	batch.results, batch.err = b.bulk.BulkCreate(ctx, shard, items)
	if batch.err == nil && len(batch.results) != len(items) {
		batch.err = fmt.Errorf("%w: shard %d answered %d results for %d creates", shardrpc.ErrProtocol, shard, len(batch.results), len(items))
	}
}
