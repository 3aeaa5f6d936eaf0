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
// the result of. The window is counted in Apply, by the sequence of
// recorded request IDs, so every replica answers alike: a retry must reach
// the shard's log within RequestWindow later creates (with request IDs) of
// its first attempt to be answered from the table. The table keeps its
// entries by epochs of RequestWindow seqs and drops an epoch whole once
// the window has passed it, so it holds one to two windows of entries.
//
// 65,536 creates are tens of seconds of a shard's peak create rate on the
// benchmark machine and hours of ordinary traffic, while a router retries
// a create within its request timeout (seconds). The legacy table's
// entries (a result with its link record, ~150 bytes each before
// compression) were the largest part of a shard's state at 1,000,000 links
// with the earlier window of 250,000 (docs/BENCHMARKS.md); an entry is
// now ~25 bytes and its key.
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
//	ff ff ff ff ff | 'R' | epoch u64 | request id -> the item's entry (below)
//	ff ff ff ff ff | 'n'               -> next seq u64
//	ff ff ff ff ff | 'r' | request id  -> legacy table: the item's encoded result
//	ff ff ff ff ff | 'q' | seq u64     -> legacy table: request id (the order, for pruning)
//	ff ff ff ff ff | 'p'               -> legacy prune mark u64: every seq below it is
//	                                      forgotten; legacyDrained once the legacy table is empty
//
// Every item with a request ID takes the next seq; its entry is recorded
// under the epoch seq / requestEpochLen. An entry is
//
//	0x02 | seq uvarint | created_at_ms zigzag varint | fields hash u64 | code
//	0x03 | seq uvarint | result (an AppendResult encoding)
//
// the first for a ResultCreated (createdHash is the hash of the create's
// fields; the rest of the result is rebuilt from the retried create, see
// replayCreated), the second for any other result. Neither format byte is
// resultVersion, the first byte of the legacy table's values.
//
// Builds before the epochs kept the legacy table ('r' and 'q', all of an
// entry's result in each value): this build still reads it and prunes it by
// its order keys, as those builds did, until it is empty, and never writes
// it.
var (
	entryPrefix      = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 'R'}
	requestPrefix    = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 'r'}
	queuePrefix      = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 'q'}
	requestSeqKey    = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 'n'}
	requestPrunedKey = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 'p'}
)

// Formats of a request table entry (the value's first byte).
const (
	entryCreated = 0x02
	entryResult  = 0x03
)

// legacyDrained is the legacy prune mark once the legacy table is empty:
// nothing is left to prune or to read there.
const legacyDrained = math.MaxUint64

// requestEpochLen is how many seqs share an epoch of the request table's
// keys. It is part of the key layout: a build with another value would look
// for entries under other epochs. A variable for tests only.
var requestEpochLen uint64 = RequestWindow

func requestKey(id string) []byte {
	return append(append(make([]byte, 0, len(requestPrefix)+len(id)), requestPrefix...), id...)
}

func queueKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, len(queuePrefix)+8), queuePrefix...), seq)
}

// appendEntryKey appends the key of id's entry in epoch e to dst.
func appendEntryKey(dst []byte, e uint64, id string) []byte {
	dst = append(dst, entryPrefix...)
	dst = binary.BigEndian.AppendUint64(dst, e)
	return append(dst, id...)
}

// epochOf returns the epoch of seq.
func epochOf(seq uint64) uint64 { return seq / requestEpochLen }

// oldestEpoch returns the first epoch that may hold an entry a batch
// starting at seq answers (one recorded at or after seq - requestWindow).
func oldestEpoch(seq uint64) uint64 { return epochOf(seq - min(seq, requestWindow)) }

// createdHash returns the hash of c's fields other than CreatedAtMs: 64-bit
// FNV-1a over
//
//	partition u32 | reuse u8 | expires_at_ms zigzag varint | max_clicks uvarint |
//	redirect_status uvarint | owner, title, alias, url (each len uvarint | bytes) |
//	tag count uvarint | (tag len uvarint | tag)*
//
// The encoding and the hash are part of the stored format: every replica
// and build must compute the same.
func createdHash(c *Create) uint64 {
	var buf [4*binary.MaxVarintLen64 + 5]byte
	b := binary.BigEndian.AppendUint32(buf[:0], c.Partition)
	var reuse byte
	if c.Reuse {
		reuse = 1
	}
	b = append(b, reuse)
	b = binary.AppendVarint(b, c.ExpiresAtMs)
	b = binary.AppendUvarint(b, c.MaxClicks)
	b = binary.AppendUvarint(b, uint64(c.RedirectStatus))
	h := fnv64a(fnvOffset64, b)
	for _, s := range [...]string{c.Owner, c.Title, c.Alias, c.URL} {
		h = fnv64aString(fnv64a(h, binary.AppendUvarint(buf[:0], uint64(len(s)))), s)
	}
	h = fnv64a(h, binary.AppendUvarint(buf[:0], uint64(len(c.Tags))))
	for _, t := range c.Tags {
		h = fnv64aString(fnv64a(h, binary.AppendUvarint(buf[:0], uint64(len(t)))), t)
	}
	return h
}

// FNV-1a, 64 bits (as hash/fnv's New64a), without its allocation.
const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func fnv64a(h uint64, b []byte) uint64 {
	for _, c := range b {
		h = (h ^ uint64(c)) * fnvPrime64
	}
	return h
}

func fnv64aString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime64
	}
	return h
}

// appendEntry appends the request table entry of res, the result of
// create c recorded at seq, to dst.
func appendEntry(dst []byte, seq uint64, c *Create, res Result) []byte {
	if res.Status != ResultCreated {
		dst = binary.AppendUvarint(append(dst, entryResult), seq)
		return AppendResult(dst, res)
	}
	dst = binary.AppendUvarint(append(dst, entryCreated), seq)
	dst = binary.AppendVarint(dst, res.Record.CreatedAtMs)
	dst = binary.BigEndian.AppendUint64(dst, createdHash(c))
	return append(dst, res.Record.Code...)
}

// entrySeq returns the seq an entry was recorded at and the rest of it
// after the seq.
func entrySeq(v []byte) (seq uint64, rest []byte, err error) {
	if len(v) == 0 || (v[0] != entryCreated && v[0] != entryResult) {
		return 0, nil, fmt.Errorf("%w: request table entry %x", ErrMalformed, v)
	}
	seq, n := binary.Uvarint(v[1:])
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: request table entry seq", ErrMalformed)
	}
	return seq, v[1+n:], nil
}

// replayEntry appends to dst the answer of entry v (recorded for the same
// request ID) to a retry of create c.
func (m *Machine) replayEntry(tx raftstore.Txn, dst, v []byte, c *Create) []byte {
	_, rest, err := entrySeq(v)
	must("decode request table entry", err)
	if v[0] == entryResult {
		return append(dst, rest...)
	}
	createdAt, n := binary.Varint(rest)
	if n <= 0 || len(rest) < n+8 || len(rest) == n+8 || len(rest) > n+8+MaxCodeLength {
		must("decode request table entry", fmt.Errorf("%w: created entry %x", ErrMalformed, v))
	}
	hash, code := binary.BigEndian.Uint64(rest[n:]), string(rest[n+8:])
	return AppendResult(dst, m.replayCreated(tx, c, createdAt, hash, code))
}

// replayCreated answers a retry of create c whose first attempt made the
// link code at createdAt, with hash its createdHash.
//
// When c hashes alike (every retry does: a router resends the same create,
// with a later clock), the answer is the first one, rebuilt byte for byte:
// the record c stores under code, created at createdAt, as createAlias or
// createGenerated made it.
//
// Otherwise the request ID came with other fields (routers never do that:
// a single create has a fresh random ID and a bulk item's ID hashes the
// item). The first result is not stored, so the link is answered as it is
// stored now: the record at code when it is live (edits included), and
// ResultBadRequest, naming the code, when it was deleted or purged since.
// A created result with a record the shard no longer holds would let a
// router cache and hand out a link that is gone, and a record rebuilt
// from fields the first create may not have had would be wrong. Either
// way nothing is written, so the replicas stay alike; only the answer
// differs from that of a build with the legacy table, which kept the first
// result whole.
func (m *Machine) replayCreated(tx raftstore.Txn, c *Create, createdAt int64, hash uint64, code string) Result {
	if createdHash(c) == hash {
		rec := c.record(code)
		rec.CreatedAtMs = createdAt
		rec.Alias = c.Alias != ""
		return Result{Status: ResultCreated, Record: rec}
	}
	rec, err := Get(tx, m.place.PartitionOfCode(code), code)
	switch {
	case err == nil:
		return Result{Status: ResultCreated, Record: rec}
	case errors.Is(err, ErrNotFound) || errors.Is(err, ErrDeleted):
		return Result{Status: ResultBadRequest, Reason: fmt.Sprintf("request ID was used by another create, whose link %s is gone", code)}
	default:
		must("read the link of a request", err)
		return Result{}
	}
}

// applyBatch applies the items of b in order and returns the batch result.
func (m *Machine) applyBatch(tx raftstore.Txn, b CreateBatch) []byte {
	set := requestSetOf(tx)
	var seq uint64
	var legacy bool
	if set != nil {
		seq, legacy = set.seq, !set.legacyDrained
	} else {
		var err error
		seq, err = readSeq(tx)
		must("read request sequence", err)
		legacy = !isLegacyDrained(tx)
	}
	start := seq
	// Room for every item's result (a record, about as long as the
	// create's fields), so that out does not grow item by item.
	size := 16
	for _, it := range b.Items {
		c := &it.Create
		size += 48 + len(c.URL) + len(c.Alias) + len(c.Owner) + len(c.Title) + tagsLen(c.Tags)
	}
	out := AppendBatchResultHeader(make([]byte, 0, size), len(b.Items))
	// Each item's key and entry are built in the same two buffers
	// (Txn.Set copies them).
	var res, key, entry []byte
	var replayed []int // the items answered from the request table
	for i := range b.Items {
		it := &b.Items[i]
		if it.RequestID == "" {
			res = AppendResult(res[:0], m.applyCreate(tx, it.Create))
			out = AppendBatchItemResult(out, res)
			continue
		}
		var h uint64
		if set != nil {
			h = set.hash(it.RequestID)
		}
		v, ok, stale := lookupRequest(tx, set, h, legacy, it.RequestID, start, seq)
		if ok {
			if v[0] == resultVersion {
				res = append(res[:0], v...) // the legacy table's result
			} else {
				res = m.replayEntry(tx, res[:0], v, &it.Create)
			}
			out = AppendBatchItemResult(out, res)
			replayed = append(replayed, i)
			continue
		}
		r := m.applyCreate(tx, it.Create)
		res = AppendResult(res[:0], r)
		out = AppendBatchItemResult(out, res)
		e := epochOf(seq)
		key = appendEntryKey(key[:0], e, it.RequestID)
		entry = appendEntry(entry[:0], seq, &it.Create, r)
		must("record request", tx.Set(key, entry))
		if set != nil && !stale {
			set.add(e, h)
		}
		seq++
	}
	out = appendReplays(out, replayed)
	if seq == start {
		return out
	}
	must("store request sequence", tx.Set(requestSeqKey, binary.BigEndian.AppendUint64(nil, seq)))
	if set != nil {
		set.seq = seq
	}
	forgetEpochs(tx, set, start, seq)
	if legacy {
		pruneRequests(tx, set, start, seq)
	}
	return out
}

// lookupRequest returns the stored answer of request ID id (h its hash in
// set, if set is not nil) for an item of a batch that started at seq start,
// when the ID is remembered: an entry of the table recorded at or after
// start - requestWindow (in this batch included), else, if legacy, its
// result in the legacy table. Entries are looked up from the newest epoch
// that may hold one (that of seq, the item's) down to the oldest; the first
// found decides, since an ID is recorded again only once its earlier entry
// fell out of the window. The set spares the reads of the keys it knows are
// not stored. stale reports an entry out of the window under the key the
// item's entry takes (epochOf(seq)), which recording it replaces (only
// when requestEpochLen > requestWindow).
func lookupRequest(tx raftstore.Txn, set *requestSet, h uint64, legacy bool, id string, start, seq uint64) (v []byte, ok, stale bool) {
	var key []byte
	for e := epochOf(seq); ; e-- {
		if set == nil || set.mayHold(e, h) {
			key = appendEntryKey(key[:0], e, id)
			v, err := tx.Get(key)
			switch {
			case err == nil:
				s, _, err := entrySeq(v)
				must("decode request table entry", err)
				if s+requestWindow < start {
					// Out of the window, like every older one.
					return nil, false, e == epochOf(seq)
				}
				return v, true, false
			case !errors.Is(err, raftstore.ErrNotFound):
				must("read request table", err)
			}
		}
		if e <= oldestEpoch(start) {
			break
		}
	}
	if !legacy || (set != nil && !set.legacyMayHold(h)) {
		return nil, false, false
	}
	v, err := tx.Get(requestKey(id))
	switch {
	case err == nil:
		return v, true, false
	case !errors.Is(err, raftstore.ErrNotFound):
		must("read legacy request table", err)
	}
	return nil, false, false
}

// forgetEpochs drops the epochs no batch after one ending at seq reads (all
// below oldestEpoch(seq)) with one range delete, when a batch that started
// at start made that bound move. The range starts at the first epoch, so
// that it also covers epochs a build with another window left.
func forgetEpochs(tx raftstore.Txn, set *requestSet, start, seq uint64) {
	keep := oldestEpoch(seq)
	if keep <= oldestEpoch(start) {
		return
	}
	must("forget request epochs", tx.DeleteRange(entryPrefix, binary.BigEndian.AppendUint64(slices.Clone(entryPrefix), keep)))
	if set != nil {
		set.forgetBelow(keep)
	}
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
// requestMemoKey in the replica's raftstore.Memo): for every epoch and for
// the legacy table, how many request IDs of each 64-bit hash it holds. An
// ID whose hash it does not hold is not in the table, so applyBatch answers
// the lookup of a new request ID (almost every create) from memory instead
// of with Pebble point reads; an ID whose hash it holds (a retry, or a hash
// collision) is read from the table as before. The answer is the same
// either way, so replicas with and without the memo apply alike.
//
// It is built by one scan of both tables the first time the replica
// applies a batch after it started or restored a snapshot (the memo is
// empty then), and applyBatch, forgetEpochs and pruneRequests, the only
// writers of the tables, keep it exact: an epoch is forgotten with its map.
// At one to two RequestWindow IDs it takes about 2 to 4 MiB per replica.
// It also holds whether the legacy table is drained (its prune mark is
// legacyDrained) and the request sequence (seq, stored under
// requestSeqKey, which only applyBatch writes), so that a batch reads
// neither: at moderate load a create entry carries a few creates, and the
// sequence's Pebble read was 2-3 % of a node's CPU (docs/BENCHMARKS.md,
// "Nodes at moderate load").
type requestSet struct {
	seed          maphash.Seed
	seq           uint64
	epochs        map[uint64]map[uint64]uint32 // epoch -> hash -> count
	legacy        map[uint64]uint32            // hash -> count
	legacyDrained bool
}

// requestMemoKey is the memo key of a replica's *requestSet.
type requestMemoKey struct{}

// requestSetOf returns the request set of tx's replica, building it from
// the tables when the memo has none, or nil when tx has no memo.
func requestSetOf(tx raftstore.Txn) *requestSet {
	memo := raftstore.MemoOf(tx)
	if memo == nil {
		return nil
	}
	if v, ok := memo.Get(requestMemoKey{}); ok {
		return v.(*requestSet)
	}
	seq, err := readSeq(tx)
	must("read request sequence", err)
	s := &requestSet{seed: maphash.MakeSeed(), seq: seq, epochs: make(map[uint64]map[uint64]uint32), legacy: make(map[uint64]uint32),
		legacyDrained: isLegacyDrained(tx)}
	must("scan request table", tx.Scan(entryPrefix, prefixEnd(entryPrefix), func(k, _ []byte) bool {
		if len(k) < len(entryPrefix)+8 {
			return true // not an entry key; never written
		}
		e := binary.BigEndian.Uint64(k[len(entryPrefix):])
		s.add(e, maphash.Bytes(s.seed, k[len(entryPrefix)+8:]))
		return true
	}))
	must("scan legacy request table", tx.Scan(requestPrefix, prefixEnd(requestPrefix), func(k, _ []byte) bool {
		s.legacy[maphash.Bytes(s.seed, k[len(requestPrefix):])]++
		return true
	}))
	memo.Set(requestMemoKey{}, s)
	return s
}

// hash returns the set's hash of id.
func (s *requestSet) hash(id string) uint64 { return maphash.String(s.seed, id) }

// mayHold reports whether epoch e may hold an ID of hash h: false means it
// does not.
func (s *requestSet) mayHold(e, h uint64) bool { return s.epochs[e][h] > 0 }

// legacyMayHold reports whether the legacy table may hold an ID of hash h:
// false means it does not.
func (s *requestSet) legacyMayHold(h uint64) bool { return s.legacy[h] > 0 }

// add counts an ID of hash h, just recorded in epoch e.
func (s *requestSet) add(e, h uint64) {
	m := s.epochs[e]
	if m == nil {
		m = make(map[uint64]uint32)
		s.epochs[e] = m
	}
	m[h]++
}

// forgetBelow forgets every epoch below e, just deleted from the table.
func (s *requestSet) forgetBelow(e uint64) {
	for old := range s.epochs {
		if old < e {
			delete(s.epochs, old)
		}
	}
}

// removeLegacy uncounts id, just deleted from the legacy table.
func (s *requestSet) removeLegacy(id []byte) {
	h := maphash.Bytes(s.seed, id)
	if s.legacy[h] <= 1 {
		delete(s.legacy, h)
		return
	}
	s.legacy[h]--
}

// legacyMark returns the legacy table's prune mark; stored is false (and
// mark 0) when none is stored.
func legacyMark(r raftstore.Reader) (mark uint64, stored bool) {
	v, err := r.Get(requestPrunedKey)
	switch {
	case err == nil && len(v) == 8:
		return binary.BigEndian.Uint64(v), true
	case err == nil:
		must("read request prune mark", fmt.Errorf("%w: prune mark of %d bytes", ErrMalformed, len(v)))
	case !errors.Is(err, raftstore.ErrNotFound):
		must("read request prune mark", err)
	}
	return 0, false
}

// isLegacyDrained reports whether the legacy table's prune mark says it is
// drained.
func isLegacyDrained(r raftstore.Reader) bool {
	mark, _ := legacyMark(r)
	return mark == legacyDrained
}

// pruneRequests forgets the legacy table's request IDs that fell out of the
// window: those recorded below seq-RequestWindow and not forgotten yet (at
// or above the prune mark), at most maxPrunePerBatch of them per batch, as
// the builds that wrote the table did. start is the sequence before the
// batch; set, if not nil, is the replica's request set, which forgets them
// too. Once nothing is left to prune (no order key at or above the mark),
// it sets the mark to legacyDrained and the legacy table is not read again.
func pruneRequests(tx raftstore.Txn, set *requestSet, start, seq uint64) {
	if seq <= requestWindow {
		return
	}
	from, stored := legacyMark(tx)
	if !stored {
		// A table pruned by the earlier rule: everything below
		// start-legacyRequestWindow is forgotten.
		from = max(start, legacyRequestWindow) - legacyRequestWindow
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
	if len(ids) == 0 {
		left := false
		must("scan request order", tx.Scan(hi, prefixEnd(queuePrefix), func(_, _ []byte) bool {
			left = true
			return false
		}))
		if !left {
			to = legacyDrained
			if set != nil {
				set.legacyDrained = true
			}
		}
	}
	for _, k := range ids {
		must("forget request", tx.Delete(k))
		if set != nil {
			set.removeLegacy(k[len(requestPrefix):])
		}
	}
	if len(ids) > 0 {
		must("forget request order", tx.DeleteRange(lo, hi))
	}
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
			if !reuseFilterOf(c.Txn, c.memo, p).MayHold(reuseHashes(key)) {
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
				v.(*reuseFilter).Add(reuseHashes(key))
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
