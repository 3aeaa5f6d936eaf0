// Package linkstore is the state machine of a linkraft shard: the links,
// the custom aliases, the reuse index and the per-partition ID allocator. It
// implements raftstore.StateMachine; every replica of a shard applies the
// same commands in the same order and ends with byte-identical keys.
//
// # Commands
//
// A command is binary, compact (it is the write hot path and is stored in
// every replica's Raft log):
//
//	+---------+------+-----------------+
//	| version | type | payload         |
//	| 0x01    | u8   | by type         |
//	+---------+------+-----------------+
//
// Create (type 0x01):
//
//	flags u8 (bit 0: reuse, bit 1: limits) | partition u32 |
//	created_at_ms zigzag varint |
//	[expires_at_ms zigzag varint | max_clicks uvarint, with bit 1] |
//	alias length uvarint | alias | url (the rest of the command)
//
// A create with limits (an expiry or a click limit) neither reuses a link
// nor feeds the reuse index.
//
// Click batch (type 0x02): the clicks.AppendBatch encoding of a router's
// flush, merged by package clickstore at most once per (router, sequence);
// the result is ResultClicksApplied or ResultClicksDuplicate.
//
// Delete (type 0x03):
//
//	partition u32 | deleted_at_ms zigzag varint | code (the rest)
//
// It replaces the link record by a tombstone (below) and removes the reuse
// index entry when it points at the code; the result is ResultDeleted,
// ResultNotFound (nothing stored at the code) or ResultGone (a tombstone
// already). Deleting never frees a code: see Allocation.
//
// Edit (type 0x04):
//
//	fields u8 | partition u32 | updated_at_ms zigzag varint |
//	code length u8 | code | owner length u8 | owner | the fields' values
//
// sets the fields named by the bits of fields (url, expiry, click limit,
// title, tags, redirect status; see AppendEdit) and stores updated_at_ms;
// the others keep their values. Every value is checked as a create's (a
// bad one refuses the whole edit). The result is ResultEdited with the
// record, ResultNotFound (nothing stored, or another owner's link when
// owner is set) or ResultGone (a tombstone). A new URL or new limits take
// the link out of the reuse index.
//
// Purge (type 0x05), proposed by the leader's background sweep (package
// node):
//
//	cutoff_ms zigzag varint | count uvarint (1..256) |
//	{ partition u32 | code length u8 | code }*
//
// Each listed link whose stored expiry is at or before cutoff_ms (chosen
// by the proposer; Apply reads no clock) is removed as a Delete would
// remove it, with its expiry as the tombstone's time; other items are
// skipped. The result is version 0x01 | 0x0b | purged count uvarint
// (DecodePurgeResult). A purge with a bad item is refused whole.
//
// Create batch (type 0x10):
//
//	count uvarint (1..1000) | { len uvarint | request id (<= 128 bytes) |
//	                           len uvarint | create command (0x01 0x01 ...) }*
//
// A leader puts the creates that arrive while its previous proposal is in
// flight into one Raft entry (package node). The items apply in order,
// each exactly as the create alone would (later items see earlier items'
// writes; a partition's allocator is written once per batch, and read
// from Pebble once per replica life: it stays in the replica's
// raftstore.Memo between commands), and the result is
//
//	version 0x01 | 0x10 | count uvarint | { len uvarint | result }*
//
// one ordinary result per item (DecodeBatchResult). A batch that does not
// decode is refused whole (ResultBadRequest) and changes nothing.
//
// Idempotency is per item, kept here rather than in raftstore's table
// (which knows one key per entry): an item with a request ID first looks
// the ID up in the request table; if it is there, the stored result is the
// answer and nothing is applied; otherwise the create applies and its
// result is recorded under the ID. A retry therefore never makes a second
// link, whether it lands in a later batch, at another leader, or in the
// same batch. The table is pruned in Apply: once more than RequestWindow
// request IDs were recorded, each batch forgets the oldest ones (from the
// prune mark up, at most 4096 per batch), so every replica holds the same
// table and snapshots carry it. A replica keeps, in its raftstore.Memo, the
// 64-bit hashes of the IDs its table holds (built by one scan of the table
// after it starts or restores a snapshot, then kept exact by the batches'
// own writes and prunes), so the lookup of a new request ID, almost every
// create's, is a map access rather than a Pebble read: a create reads one
// key fewer, with the same answer.
//
// Likewise the reuse index lookup of a generated create: a replica keeps a
// Bloom filter per partition over the partition's reuse index keys
// (reusefilter.go), built by a scan of that partition's 'u' keys on the
// first lookup after a start or snapshot restore, fed by every reuse key
// written, rebuilt when it holds four times the keys it was built with
// (and at least 256; 16 or more bits per key); a URL the filter has never
// seen is not indexed, without a read. With the allocator memo, a
// generated create with a request ID reads nothing from Pebble unless it
// is a retry or its URL is indexed already.
//
// New command types get new type bytes; a
// replica that does not know a type answers ResultBadRequest without
// touching state, which is deterministic across replicas of one version.
//
// # Results
//
// Apply returns a result for the proposer:
//
//	version 0x01 | status u8 | payload
//
// where the payload is the link record for ResultCreated and ResultExisting,
// a human-readable reason for ResultBadRequest, and empty otherwise. Results
// are small because raftstore keeps the result of every command proposed
// with an idempotency key.
//
// # Data keys
//
// Keys are relative to the group's application range (raftstore adds the
// group prefix). Every key starts with its partition, big-endian, so that a
// partition is one contiguous key range that can later move between shards:
//
//	partition u32 | 'c' | code          -> link record
//	partition u32 | 'n'                 -> allocator: offset u64 big-endian |
//	                                       flags u8 (bit 0: aliases of
//	                                       generated shape exist)
//	partition u32 | 'u' | sha256(url)   -> code of the partition's first
//	                                       generated link of that URL
//
// and, after every partition's range (like package clickstore's flush
// marks), the request table of create batches (see batch.go):
//
//	ff ff ff ff ff | 'R' | epoch u64 | request id -> the item's entry: seq,
//	                                       and created_at_ms, a hash of the
//	                                       create and the code, or the result
//	ff ff ff ff ff | 'n'                -> next seq u64
//	ff ff ff ff ff | 'r' | request id   -> legacy table: the item's result
//	ff ff ff ff ff | 'q' | seq u64      -> legacy table: request id (record order)
//	ff ff ff ff ff | 'p'                -> legacy table's prune mark u64
//
// # Link records
//
//	version 0x01 | flags u8 (bit 0: alias) | created_at_ms zigzag varint |
//	code length u8 | code | url (the rest of the record)
//
// or, for a link with an expiry or a click limit (not both zero),
//
//	version 0x02 | flags u8 | created_at_ms zigzag varint |
//	expires_at_ms zigzag varint | max_clicks uvarint |
//	code length u8 | code | url
//
// A link without limits is still written as version 0x01, so records
// stored before limits existed and new ones read alike.
//
// A deleted link leaves a tombstone at its link key instead:
//
//	0x00 | deleted_at_ms zigzag varint
//
// (0x00 is never a record version.) Get answers ErrDeleted for it.
//
// With a 7-character code and an 80-byte URL a record is about 96 bytes,
// its key 12 bytes, and the reuse index entry 37 + 7 bytes.
//
// # Allocation
//
// Partition p owns the IDs [lo, hi) = codec.Range(p). A generated create
// takes id = lo + offset, encodes it (codec.Encode) and, when a record
// already exists at that code (a custom alias of generated shape holds it),
// moves on to the next ID. That check costs a lookup, so it is made only
// in partitions where an alias of generated shape was ever stored (the
// allocator's flag, set by such an alias's create). The new offset is
// stored with the record, in the same batch. When id reaches hi the partition is exhausted. Aliases of
// generated shape must be created in the partition their code decodes to
// (ring.PartitionOfCode), so that the one allocator that could produce that
// code is the one that skips it: no two links ever share a code.
//
// A tombstone keeps a deleted code taken forever: a generated code's ID is
// behind the allocator's offset already, an alias create finds the key
// occupied (ResultAliasTaken), and a tombstone of generated shape sits in
// a partition whose allocator flag is set (the alias's create set it), so
// the allocator skips it too.
package linkstore
