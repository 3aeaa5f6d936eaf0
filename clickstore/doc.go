// Package clickstore is the shard side of click analytics: it merges the
// routers' click batches (clicks.Batch) into a shard's Pebble keys, inside
// a Raft apply, and answers stats queries from them.
//
// # Keys
//
// Keys are relative to the group's application range, like linkstore's.
// The per-code keys start with the code's partition, so a partition's
// clicks move with its links:
//
//	partition u32 | 's' | code | 0x00 | day u32   -> day record
//	partition u32 | 't' | code                    -> totals: version 0x01 |
//	                                                 clicks uvarint | bots uvarint
//	0xff 0xff 0xff 0xff 0xff | 'f' | router       -> last applied flush sequence
//	                                                 of router, u64
//
// The flush marks sort after every partition (partition 0xffffffff's range
// ends at 0xffffffffff), so they never fall inside a partition's range. A
// code holds no 0x00 byte (codes are [A-Za-z0-9_-]), so one code's days are
// the contiguous range [code 0x00, code 0x01).
//
// A day record is
//
//	version 0x01 | clicks uvarint | bots uvarint | len(sketch) uvarint | sketch |
//	referrers | browsers | oses | devices
//
// with the visitor sketch in axiomhq/hyperloglog's binary form (precision
// clicks.SketchPrecision, compacted before it is written so that replicas
// write the same bytes) and the four tallies in clicks.AppendTally's form,
// each capped at clicks.MaxTallyKeys keys (clicks.TopCounts). Apply merges
// the sketches in that binary form, without decoding them into the
// library's Sketch, and writes the bytes the library's Merge, Estimate and
// AppendBinary give (FuzzSketchMerge, TestApplyMatchesLibraryMerge).
//
// # Applying a batch exactly once
//
// A batch is (router, seq, deltas). [Apply] first compares seq with the
// router's stored mark: a batch at or below it was applied before and is
// skipped ([Outcome] Duplicate), otherwise the deltas are merged and the
// mark set to seq in the same Raft apply batch. The node also proposes
// each batch with the raftstore idempotency key "clk/<router>/<seq>", so a
// retry within raftstore.IdempotencyWindow gets the first result without
// an apply; the mark keeps the guarantee after that window, since a router
// sends each shard its batches strictly in sequence order and never sends
// an older one after a newer one was acknowledged. Both live in the
// group's state, so they survive restarts (raftstore's applied-index skip
// rule) and travel with snapshots: no replay or snapshot install applies a
// batch twice.
//
// Apply validates the whole batch before it writes anything, and writes
// only through the Txn, so every replica ends with byte-identical keys. It
// merges the deltas in the order of their day keys (deltas of one code and
// day in their batch order), so a batch's reads walk the
// store in key order; deltas of different keys touch different records and
// add to totals, which commute, so the result is the one batch order gives
// (TestApplyOrderMatchesBatchOrder). The node's leader proposes each batch
// already in that order ([OrderDeltas]), and Apply takes a batch in it as
// it is, so the replicas do not sort it again; a batch in any other order
// (an entry proposed before, a batch from a test) is sorted in the apply
// and stores the same bytes.
//
// # The record memo
//
// Each replica keeps, in its raftstore.Memo, what Apply last wrote for a
// code: its totals and its latest two day records (recordMemo, one map
// entry a code, at most recordMemoBudget bytes, evicted at random), so a
// code clicked again in a later flush is merged without a Pebble read. Apply writes through it, nothing else
// writes those keys, and the group's FSM empties the memo on a snapshot
// restore, so a memoized value is always the stored one: replicas with a
// warm, a cold or an evicting memo write the same bytes
// (TestApplyMatchesLibraryMerge). A command that ever writes or deletes
// click keys outside Apply (moving or purging a partition) must call
// [ForgetMemo] in the same apply.
//
// The memo also holds a clicked-code filter per partition (codefilter.go):
// a Bloom filter over the codes that have totals, so the first click of a
// code reads neither of its keys from Pebble. Every code with a day record
// has totals, so the filter's "no" is exact.
package clickstore
