package linkstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"

	"github.com/linkraft/linkraft/raftstore"
)

// TypeCreateBatch carries many creates in one command (CreateBatch), so that
// a leader can put the creates that arrive while a proposal is in flight
// into one Raft entry. Batch types start at 0x10, leaving 0x04 to 0x0f to
// single commands.
const TypeCreateBatch CommandType = 0x10

// ResultBatch is the status of the result of a CreateBatch: one result per
// item follows, then the replay trailer (see DecodeBatchResultReplays).
// DecodeResult does not accept it. A batch result is never stored: it goes
// from the machine to the proposer's node (and, in the binary bulk create
// answer, to its client).
const ResultBatch Status = 0x10

// Limits of a CreateBatch. Apply refuses a batch beyond them.
const (
	// MaxBatchItems bounds the creates of one batch: a bulk create of the
	// API (at most 1,000 links) is one batch per shard. (It was 256 before
	// bulk creates; a replica of that version refuses a larger batch, so
	// upgrade every node before the routers.)
	MaxBatchItems = 1000
	// MaxRequestID bounds an item's request ID in bytes.
	MaxRequestID = 128
)

// RequestWindow is how many creates with a request ID a shard remembers
// the result of. The table is pruned in Apply, by the count of recorded
// request IDs, so every replica keeps the same entries: a retry must reach
// the shard's log within RequestWindow later creates (with request IDs) of
// its first attempt to be answered from the table.
//
// 65,536 creates are tens of seconds of a shard's peak create rate on the
// benchmark machine and hours of ordinary traffic, while a router retries
// a create within its request timeout (seconds). The table's entries (a
// result with its link record, ~150 bytes each before compression) were the
// largest part of a shard's state at 1,000,000 links with the earlier
// window of 250,000 (docs/BENCHMARKS.md).
const RequestWindow = 65_536

// legacyRequestWindow is the window the table was pruned with before the
// prune mark (requestPrunedKey) existed: a table without the mark has
// forgotten every request recorded below next seq - legacyRequestWindow.
// A variable for tests only.
var legacyRequestWindow uint64 = 250_000

// maxPrunePerBatch bounds the request IDs one batch forgets, so that the
// first batches after the window shrank (up to 184,464 IDs to forget)
// spread that work instead of stalling one apply. A variable for tests
// only.
var maxPrunePerBatch uint64 = 4096

// requestWindow is RequestWindow; tests shrink it to exercise pruning.
var requestWindow uint64 = RequestWindow

// BatchItem is one create of a CreateBatch.
type BatchItem struct {
	// RequestID, if not empty, makes the create idempotent: an item whose
	// request ID is in the shard's request table (a create with the same
	// ID applied before, in this batch or an earlier one) is not applied
	// again but answered with the first result.
	RequestID string
	// Create is the create to apply.
	Create Create
}

// CreateBatch applies its items in order, each as a Create would be
// applied alone (later items see earlier items' writes), and answers one
// result per item.
type CreateBatch struct {
	Items []BatchItem
}

// Type returns TypeCreateBatch.
func (CreateBatch) Type() CommandType { return TypeCreateBatch }

// AppendBatchHeader appends the start of a CreateBatch command of count
// items to dst; append each item with AppendBatchItem after it.
//
//	version 0x01 | 0x10 | count uvarint | item*
func AppendBatchHeader(dst []byte, count int) []byte {
	dst = append(dst, commandVersion, byte(TypeCreateBatch))
	return binary.AppendUvarint(dst, uint64(count))
}

// AppendBatchItem appends one item of a CreateBatch: the request ID and
// the create's command encoding (as AppendCreate writes it), each prefixed
// by its length.
//
//	len uvarint | request id | len uvarint | create command
func AppendBatchItem(dst []byte, requestID string, create []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(requestID)))
	dst = append(dst, requestID...)
	dst = binary.AppendUvarint(dst, uint64(len(create)))
	return append(dst, create...)
}

// AppendCreateBatch appends the command encoding of b to dst.
func AppendCreateBatch(dst []byte, b CreateBatch) []byte {
	dst = AppendBatchHeader(dst, len(b.Items))
	var create []byte
	for _, it := range b.Items {
		create = AppendCreate(create[:0], it.Create)
		dst = AppendBatchItem(dst, it.RequestID, create)
	}
	return dst
}

func decodeCreateBatch(b []byte) (CreateBatch, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return CreateBatch{}, fmt.Errorf("%w: batch count", ErrMalformed)
	}
	if count == 0 || count > MaxBatchItems {
		return CreateBatch{}, fmt.Errorf("%w: batch of %d items, want 1 to %d", ErrMalformed, count, MaxBatchItems)
	}
	b = b[n:]
	items := make([]BatchItem, count)
	for i := range items {
		id, rest, err := cutLength(b, MaxRequestID)
		if err != nil {
			return CreateBatch{}, fmt.Errorf("batch item %d request id: %w", i, err)
		}
		cmd, rest, err := cutLength(rest, len(rest))
		if err != nil {
			return CreateBatch{}, fmt.Errorf("batch item %d create: %w", i, err)
		}
		if len(cmd) < 2 || cmd[0] != commandVersion || CommandType(cmd[1]) != TypeCreate {
			return CreateBatch{}, fmt.Errorf("%w: batch item %d is not a create", ErrMalformed, i)
		}
		c, err := decodeCreate(cmd[2:])
		if err != nil {
			return CreateBatch{}, fmt.Errorf("batch item %d: %w", i, err)
		}
		items[i] = BatchItem{RequestID: string(id), Create: c}
		b = rest
	}
	if len(b) != 0 {
		return CreateBatch{}, fmt.Errorf("%w: %d bytes after the batch", ErrMalformed, len(b))
	}
	return CreateBatch{Items: items}, nil
}

// cutLength splits a uvarint length (at most limit) and that many bytes
// off the front of b.
func cutLength(b []byte, limit int) (field, rest []byte, err error) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(limit) || l > uint64(len(b)-n) {
		return nil, nil, fmt.Errorf("%w: length", ErrMalformed)
	}
	b = b[n:]
	return b[:l], b[l:], nil
}

// Keys of the request table, outside every partition's range (after
// partition 0xffffffff, like clickstore's flush marks):
//
//	ff ff ff ff ff | 'r' | request id  -> the item's encoded result
//	ff ff ff ff ff | 'q' | seq u64     -> request id (the order, for pruning)
//	ff ff ff ff ff | 'n'               -> next seq u64
//	ff ff ff ff ff | 'p'               -> prune mark u64: every seq below it is forgotten
var (
	requestPrefix    = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 'r'}
	queuePrefix      = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 'q'}
	requestSeqKey    = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 'n'}
	requestPrunedKey = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 'p'}
)

func requestKey(id string) []byte {
	return append(append(make([]byte, 0, len(requestPrefix)+len(id)), requestPrefix...), id...)
}

func queueKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, len(queuePrefix)+8), queuePrefix...), seq)
}

// applyBatch applies the items of b in order and returns the batch result.
func (m *Machine) applyBatch(tx raftstore.Txn, b CreateBatch) []byte {
	seq, err := readSeq(tx)
	must("read request sequence", err)
	start := seq
	set := requestSetOf(tx)
	// Room for every item's result (a record, about as long as the
	// create's fields), so that out does not grow item by item.
	size := 16
	for _, it := range b.Items {
		c := &it.Create
		size += 48 + len(c.URL) + len(c.Alias) + len(c.Owner) + len(c.Title) + tagsLen(c.Tags)
	}
	out := AppendBatchResultHeader(make([]byte, 0, size), len(b.Items))
	// The request and order keys of each item are built in the same two
	// buffers (Txn.Set copies them).
	var res, key, order []byte
	var replayed []int // the items answered from the request table
	for i, it := range b.Items {
		if it.RequestID == "" {
			res = AppendResult(res[:0], m.applyCreate(tx, it.Create))
			out = AppendBatchItemResult(out, res)
			continue
		}
		key = append(append(key[:0], requestPrefix...), it.RequestID...)
		if set == nil || set.mayHold(it.RequestID) {
			v, err := tx.Get(key)
			switch {
			case err == nil:
				out = AppendBatchItemResult(out, v)
				replayed = append(replayed, i)
				continue
			case !errors.Is(err, raftstore.ErrNotFound):
				must("read request table", err)
			}
		}
		res = AppendResult(res[:0], m.applyCreate(tx, it.Create))
		out = AppendBatchItemResult(out, res)
		must("record request", tx.Set(key, res))
		order = binary.BigEndian.AppendUint64(append(order[:0], queuePrefix...), seq)
		must("record request order", tx.Set(order, key[len(requestPrefix):]))
		if set != nil {
			set.add(it.RequestID)
		}
		seq++
	}
	out = appendReplays(out, replayed)
	if seq == start {
		return out
	}
	must("store request sequence", tx.Set(requestSeqKey, binary.BigEndian.AppendUint64(nil, seq)))
	m.pruneRequests(tx, set, start, seq)
	return out
}

// appendReplays appends the batch result's replay trailer: the count of
// replayed items (answered from the request table with the result of an
// earlier entry) and their indexes, each a uvarint, in ascending order.
func appendReplays(dst []byte, replayed []int) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(replayed)))
	for _, i := range replayed {
		dst = binary.AppendUvarint(dst, uint64(i))
	}
	return dst
}

// requestSet is a replica's memo of its request table (under
// requestMemoKey in the replica's raftstore.Memo): for every 64-bit hash,
// how many request IDs with that hash the table holds. An ID whose hash it
// does not hold is not in the table, so applyBatch answers the lookup of a
// new request ID (almost every create) from memory instead of with a
// Pebble point read; an ID whose hash it holds (a retry, or a hash
// collision) is read from the table as before. The answer is the same
// either way, so replicas with and without the memo apply alike.
//
// It is built by one scan of the table the first time the replica applies
// a batch after it started or restored a snapshot (the memo is empty then),
// and applyBatch and pruneRequests, the only writers of the table, keep it
// exact. At RequestWindow IDs it takes about 2 MiB per replica.
type requestSet struct {
	seed  maphash.Seed
	count map[uint64]uint32
}

// requestMemoKey is the memo key of a replica's *requestSet.
type requestMemoKey struct{}

// requestSetOf returns the request set of tx's replica, building it from
// the table when the memo has none, or nil when tx has no memo.
func requestSetOf(tx raftstore.Txn) *requestSet {
	memo := raftstore.MemoOf(tx)
	if memo == nil {
		return nil
	}
	if v, ok := memo.Get(requestMemoKey{}); ok {
		return v.(*requestSet)
	}
	s := &requestSet{seed: maphash.MakeSeed(), count: make(map[uint64]uint32)}
	upper := append(slices.Clone(requestPrefix[:len(requestPrefix)-1]), requestPrefix[len(requestPrefix)-1]+1)
	must("scan request table", tx.Scan(requestPrefix, upper, func(k, _ []byte) bool {
		s.count[maphash.Bytes(s.seed, k[len(requestPrefix):])]++
		return true
	}))
	memo.Set(requestMemoKey{}, s)
	return s
}

// mayHold reports whether the table may hold id: false means it does not.
func (s *requestSet) mayHold(id string) bool {
	return s.count[maphash.String(s.seed, id)] > 0
}

// add counts id, just recorded in the table.
func (s *requestSet) add(id string) { s.count[maphash.String(s.seed, id)]++ }

// remove uncounts id, just deleted from the table.
func (s *requestSet) remove(id []byte) {
	h := maphash.Bytes(s.seed, id)
	if s.count[h] <= 1 {
		delete(s.count, h)
		return
	}
	s.count[h]--
}

// pruneRequests forgets the request IDs that fell out of the window: those
// recorded below seq-RequestWindow and not forgotten yet (at or above the
// prune mark), at most maxPrunePerBatch of them per batch. start is the
// sequence before the batch; set, if not nil, is the replica's request set,
// which forgets them too.
func (m *Machine) pruneRequests(tx raftstore.Txn, set *requestSet, start, seq uint64) {
	if seq <= requestWindow {
		return
	}
	var from uint64
	switch v, err := tx.Get(requestPrunedKey); {
	case err == nil && len(v) == 8:
		from = binary.BigEndian.Uint64(v)
	case err == nil:
		must("read request prune mark", fmt.Errorf("%w: prune mark of %d bytes", ErrMalformed, len(v)))
	case errors.Is(err, raftstore.ErrNotFound):
		// A table pruned by the earlier rule: everything below
		// start-legacyRequestWindow is forgotten.
		from = max(start, legacyRequestWindow) - legacyRequestWindow
	default:
		must("read request prune mark", err)
	}
	to := min(seq-requestWindow, from+maxPrunePerBatch)
	if to <= from {
		return
	}
	lo, hi := queueKey(from), queueKey(to)
	var ids [][]byte
	must("scan request order", tx.Scan(lo, hi, func(_, v []byte) bool {
		ids = append(ids, requestKey(string(v)))
		return true
	}))
	for _, k := range ids {
		must("forget request", tx.Delete(k))
		if set != nil {
			set.remove(k[len(requestPrefix):])
		}
	}
	must("forget request order", tx.DeleteRange(lo, hi))
	must("store request prune mark", tx.Set(requestPrunedKey, binary.BigEndian.AppendUint64(nil, to)))
}

// allocCache is the Txn every command applies through (Machine.Apply): it
// keeps the allocator values (NextKey) of the partitions the command
// touches in memory and writes each once, when the command ends (flush),
// instead of reading and writing the key for every create of a batch.
// Across commands it keeps them in the replica's raftstore.Memo, when the
// Txn has one, so a partition's allocator is read from Pebble once after
// the replica starts (or restores a snapshot) rather than once per batch:
// with hundreds of partitions per shard, a batch's creates mostly fall in
// distinct partitions, and that read was one of the three point lookups of
// every create on every replica. Every other key goes to the Txn. The
// state the command leaves is the same as without the cache, and the memo
// holds exactly the stored values (see raftstore.Memo).
type allocCache struct {
	raftstore.Txn
	memo *raftstore.Memo // nil: no memo across commands
	vals map[uint32]cachedAlloc
}

type cachedAlloc struct {
	v     []byte // nil: no allocator stored yet
	dirty bool
}

// allocMemoKey is the memo key of a partition's allocator; the memoized
// value is its stored bytes ([]byte, nil when none is stored).
type allocMemoKey uint32

// Memo returns the replica's memo (nil when the Txn has none), so that the
// commands applied through the cache find it (raftstore.MemoOf).
func (c *allocCache) Memo() *raftstore.Memo { return c.memo }

func newAllocCache(tx raftstore.Txn) *allocCache {
	return &allocCache{Txn: tx, memo: raftstore.MemoOf(tx), vals: make(map[uint32]cachedAlloc)}
}

// nextKeyPartition returns the partition of an allocator key.
func nextKeyPartition(key []byte) (uint32, bool) {
	if len(key) != 5 || key[4] != kindNext {
		return 0, false
	}
	return binary.BigEndian.Uint32(key), true
}

func (c *allocCache) Get(key []byte) ([]byte, error) {
	p, ok := nextKeyPartition(key)
	if !ok {
		if p, ok := reuseKeyPartition(key); ok && c.memo != nil {
			if !reuseFilterOf(c.Txn, c.memo, p).mayHold(reuseHashes(key)) {
				return nil, raftstore.ErrNotFound
			}
		}
		return c.Txn.Get(key)
	}
	a, cached := c.vals[p]
	if !cached && c.memo != nil {
		if v, ok := c.memo.Get(allocMemoKey(p)); ok {
			a, cached = cachedAlloc{v: v.([]byte)}, true
			c.vals[p] = a
		}
	}
	if !cached {
		v, err := c.Txn.Get(key)
		if err != nil && !errors.Is(err, raftstore.ErrNotFound) {
			return nil, err
		}
		a = cachedAlloc{v: v}
		c.vals[p] = a
		if c.memo != nil {
			c.memo.Set(allocMemoKey(p), v)
		}
	}
	if a.v == nil {
		return nil, raftstore.ErrNotFound
	}
	return append([]byte(nil), a.v...), nil
}

func (c *allocCache) Set(key, value []byte) error {
	p, ok := nextKeyPartition(key)
	if !ok {
		if p, ok := reuseKeyPartition(key); ok && c.memo != nil {
			if v, ok := c.memo.Get(reuseFilterKey(p)); ok {
				v.(*reuseFilter).add(reuseHashes(key))
			}
		}
		return c.Txn.Set(key, value)
	}
	c.vals[p] = cachedAlloc{v: append([]byte(nil), value...), dirty: true}
	return nil
}

// Delete deletes key; an allocator key is forgotten by the cache and the
// memo as well.
func (c *allocCache) Delete(key []byte) error {
	if p, ok := nextKeyPartition(key); ok {
		delete(c.vals, p)
		if c.memo != nil {
			c.memo.Delete(allocMemoKey(p))
		}
	}
	return c.Txn.Delete(key)
}

// DeleteRange deletes a range. No command deletes allocators today (the
// request table's pruning deletes ranges above every partition); if a range
// ever holds one, the cache writes its allocators first and then forgets
// them, and the memo forgets everything, which keeps both exact.
func (c *allocCache) DeleteRange(lower, upper []byte) error {
	if rangeHasAllocator(lower, upper) {
		c.flush()
		clear(c.vals)
		if c.memo != nil {
			c.memo.Clear()
		}
	}
	return c.Txn.DeleteRange(lower, upper)
}

// rangeHasAllocator reports whether [lower, upper) (upper nil: unbounded)
// contains an allocator key (NextKey of some partition).
func rangeHasAllocator(lower, upper []byte) bool {
	// Allocator keys sort by partition: the first one at or after lower
	// is that of lower's first four bytes (zero-padded), or of the next
	// partition.
	var pb [4]byte
	copy(pb[:], lower)
	p := uint64(binary.BigEndian.Uint32(pb[:]))
	if bytes.Compare(NextKey(uint32(p)), lower) < 0 {
		p++
		if p > math.MaxUint32 {
			return false
		}
	}
	return upper == nil || bytes.Compare(NextKey(uint32(p)), upper) < 0
}

// flush writes the allocators the command changed, in partition order, and
// memoizes them.
func (c *allocCache) flush() {
	ps := make([]uint32, 0, len(c.vals))
	for p, a := range c.vals {
		if a.dirty {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps)
	for _, p := range ps {
		v := c.vals[p].v
		must("store allocator", c.Txn.Set(NextKey(p), v))
		c.vals[p] = cachedAlloc{v: v}
		if c.memo != nil {
			c.memo.Set(allocMemoKey(p), v)
		}
	}
}

func readSeq(r raftstore.Reader) (uint64, error) {
	v, err := r.Get(requestSeqKey)
	if errors.Is(err, raftstore.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: request sequence of %d bytes", ErrMalformed, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// AppendBatchResultHeader appends the start of a batch result of count
// items; each item result follows (AppendBatchItemResult):
//
//	version 0x01 | 0x10 | count uvarint | { len uvarint | result }*
//
// where each result is an AppendResult encoding.
func AppendBatchResultHeader(dst []byte, count int) []byte {
	dst = append(dst, resultVersion, byte(ResultBatch))
	return binary.AppendUvarint(dst, uint64(count))
}

// AppendBatchItemResult appends one item's encoded result.
func AppendBatchItemResult(dst, res []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(res)))
	return append(dst, res...)
}

// DecodeBatchResult decodes the result of a CreateBatch into one encoded
// result per item (each for DecodeResult; they alias b). A batch refused as
// a whole (ResultBadRequest: it did not decode) is returned as an error
// wrapping ErrBatchRefused. It never panics. See DecodeBatchResultReplays
// for which items were replayed.
func DecodeBatchResult(b []byte) ([][]byte, error) {
	items, _, _, err := DecodeBatchResultReplays(b)
	return items, err
}

// DecodeBatchResultReplays is DecodeBatchResult that also returns which
// items were replayed (replayed[i]: item i's request ID was in the request
// table, so its result is that of the entry that first applied it, not of
// this one; the others were applied by this entry) and end, the length of
// the items' part of b: b[:end] is the result without the replay trailer,
// the batch result of builds before the trailer, which DecodeBatchResult
// reads too (every item fresh).
func DecodeBatchResultReplays(b []byte) (items [][]byte, replayed []bool, end int, err error) {
	if len(b) < 2 {
		return nil, nil, 0, fmt.Errorf("%w: batch result of %d bytes", ErrMalformed, len(b))
	}
	if b[0] != resultVersion {
		return nil, nil, 0, fmt.Errorf("%w: result version %#x", ErrUnknownVersion, b[0])
	}
	if Status(b[1]) != ResultBatch {
		r, err := DecodeResult(b)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("batch result: %w", err)
		}
		return nil, nil, 0, fmt.Errorf("%w: %s: %s", ErrBatchRefused, r.Status, r.Reason)
	}
	count, n := binary.Uvarint(b[2:])
	if n <= 0 || count > MaxBatchItems {
		return nil, nil, 0, fmt.Errorf("%w: batch result count", ErrMalformed)
	}
	rest := b[2+n:]
	items = make([][]byte, count)
	for i := range items {
		res, r, err := cutLength(rest, len(rest))
		if err != nil {
			return nil, nil, 0, fmt.Errorf("batch result item %d: %w", i, err)
		}
		items[i], rest = res, r
	}
	end = len(b) - len(rest)
	replayed = make([]bool, count)
	if len(rest) == 0 {
		return items, replayed, end, nil
	}
	k, n := binary.Uvarint(rest)
	if n <= 0 || k > count {
		return nil, nil, 0, fmt.Errorf("%w: batch result replay count", ErrMalformed)
	}
	rest = rest[n:]
	prev := -1
	for range k {
		i, n := binary.Uvarint(rest)
		if n <= 0 || i >= count || int(i) <= prev {
			return nil, nil, 0, fmt.Errorf("%w: batch result replay index", ErrMalformed)
		}
		rest = rest[n:]
		replayed[i], prev = true, int(i)
	}
	if len(rest) != 0 {
		return nil, nil, 0, fmt.Errorf("%w: %d bytes after the batch result", ErrMalformed, len(rest))
	}
	return items, replayed, end, nil
}

// ErrBatchRefused is returned by DecodeBatchResult for a batch that was
// refused as a whole.
var ErrBatchRefused = errors.New("linkstore: batch refused")
