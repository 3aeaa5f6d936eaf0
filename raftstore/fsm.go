package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// IdempotencyWindow is how many log indexes an idempotency key is remembered
// for. The FSM deletes, in apply (so identically on every replica), the key
// of a command applied at index i once the applied index passes
// i+IdempotencyWindow. A retry of a command must reach the log within that
// many entries of the first attempt to be recognised as a duplicate.
const IdempotencyWindow = 100_000

// envelopeV1 is the first byte of every command envelope.
const envelopeV1 byte = 1

// maxIdemKey bounds the idempotency key of one command.
const maxIdemKey = 1 << 10

// ErrBadEnvelope is the result of a log entry whose command envelope cannot be
// decoded. It is never produced by Group.Propose's own encoding.
var ErrBadEnvelope = errors.New("raftstore: malformed command envelope")

// appendEnvelope appends [version][len(idemKey) uvarint][idemKey][cmd].
func appendEnvelope(dst, idemKey, cmd []byte) []byte {
	dst = append(dst, envelopeV1)
	dst = binary.AppendUvarint(dst, uint64(len(idemKey)))
	dst = append(dst, idemKey...)
	return append(dst, cmd...)
}

// decodeEnvelope splits an envelope into its idempotency key (nil when
// empty) and command. Both alias b.
func decodeEnvelope(b []byte) (idemKey, cmd []byte, err error) {
	if len(b) == 0 || b[0] != envelopeV1 {
		return nil, nil, fmt.Errorf("%w: unknown version", ErrBadEnvelope)
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 {
		return nil, nil, fmt.Errorf("%w: bad key length", ErrBadEnvelope)
	}
	b = b[1+k:]
	if n > maxIdemKey || n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("%w: key length %d", ErrBadEnvelope, n)
	}
	if n > 0 {
		idemKey = b[:n:n]
	}
	return idemKey, b[n:], nil
}

// fsm is the persistent raft.BatchingFSM of one group. raft calls ApplyBatch,
// Snapshot and Restore from its single FSM goroutine, never concurrently.
type fsm struct {
	db      *pebble.DB
	group   uint64
	machine StateMachine
	logger  hclog.Logger
	restore restoreEnv // where and how Restore writes its sstable

	appliedKey []byte
	applied    atomic.Uint64 // last applied index, as committed to Pebble

	restores atomic.Uint64 // completed Restore calls (snapshot installs)
	// restoreSeq is odd while a Restore runs and moves by 2 with each
	// (see Group.AppliedEpoch).
	restoreSeq atomic.Uint64

	// memo is the machine's Memo (see there): empty at start, emptied by
	// Restore. Only raft's FSM goroutine touches it.
	memo *Memo
}

var _ raft.BatchingFSM = (*fsm)(nil)

func newFSM(db *pebble.DB, group uint64, m StateMachine, logger hclog.Logger, env restoreEnv) (*fsm, error) {
	f := &fsm{db: db, group: group, machine: m, logger: logger, restore: env,
		appliedKey: metaKey(group, metaApplied, nil), memo: NewMemo()}
	idx, err := readApplied(db, f.appliedKey)
	if err != nil {
		return nil, fmt.Errorf("raftstore: group %d: %w", group, err)
	}
	f.applied.Store(idx)
	return f, nil
}

func readApplied(r pebble.Reader, key []byte) (uint64, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read applied index: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("applied index holds %d bytes, want 8", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// Apply applies one entry. raft uses ApplyBatch; Apply exists for the
// raft.FSM interface.
func (f *fsm) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies entries in one Pebble batch that also records the new
// applied index. Entries at or below the stored applied index were applied
// before a restart and are skipped (their result is nil: nobody waits for
// it). A Pebble write failure here cannot be reported to raft and would
// leave replicas diverged, so it panics.
func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	applied := f.applied.Load()
	last := applied
	b := f.db.NewIndexedBatch()
	defer b.Close()
	txn := newBatchTxn(b, f.group)
	txn.memo = f.memo
	for i, l := range logs {
		if l.Index <= applied {
			continue
		}
		if l.Type == raft.LogCommand {
			out[i] = f.applyCommand(b, txn, l)
		}
		last = l.Index
	}
	if last == applied {
		return out
	}
	if last > IdempotencyWindow {
		f.pruneIdempotency(b, last-IdempotencyWindow)
	}
	if err := b.Set(f.appliedKey, binary.BigEndian.AppendUint64(nil, last), nil); err != nil {
		panic(fmt.Sprintf("raftstore: group %d: record applied index %d: %v", f.group, last, err))
	}
	// NoSync: the entries are in the synced raft log, which shares this WAL;
	// see "Durability" in the package documentation.
	if err := b.Commit(pebble.NoSync); err != nil {
		panic(fmt.Sprintf("raftstore: group %d: commit apply batch up to %d: %v", f.group, last, err))
	}
	f.applied.Store(last)
	return out
}

// applyCommand applies one command entry inside the batch and returns its
// result ([]byte) or an error.
func (f *fsm) applyCommand(b *pebble.Batch, txn *batchTxn, l *raft.Log) interface{} {
	idemKey, cmd, err := decodeEnvelope(l.Data)
	if err != nil {
		return fmt.Errorf("raftstore: group %d: entry %d: %w", f.group, l.Index, err)
	}
	var ik []byte
	if idemKey != nil {
		ik = metaKey(f.group, metaIdem, idemKey)
		v, closer, err := b.Get(ik)
		if err == nil {
			res := make([]byte, len(v))
			copy(res, v)
			_ = closer.Close()
			return res
		}
		if !errors.Is(err, pebble.ErrNotFound) {
			panic(fmt.Sprintf("raftstore: group %d: read idempotency key: %v", f.group, err))
		}
	}
	res := f.machine.Apply(txn, l.Index, cmd)
	if ik != nil {
		if err := b.Set(ik, res, nil); err != nil {
			panic(fmt.Sprintf("raftstore: group %d: store idempotency key: %v", f.group, err))
		}
		if err := b.Set(expiryKey(f.group, l.Index, idemKey), nil, nil); err != nil {
			panic(fmt.Sprintf("raftstore: group %d: store idempotency expiry: %v", f.group, err))
		}
	}
	return res
}

// pruneIdempotency forgets the idempotency keys of commands applied below
// index cutoff: a point delete per key, one range delete for their expiry
// records.
func (f *fsm) pruneIdempotency(b *pebble.Batch, cutoff uint64) {
	lower := metaKey(f.group, metaExpiry, nil)
	upper := expiryKey(f.group, cutoff, nil)
	it, err := b.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		panic(fmt.Sprintf("raftstore: group %d: prune idempotency: %v", f.group, err))
	}
	n := len(lower) + 8
	found := false
	for ok := it.First(); ok; ok = it.Next() {
		found = true
		k := it.Key()
		if len(k) < n {
			continue
		}
		if err := b.Delete(metaKey(f.group, metaIdem, k[n:]), nil); err != nil {
			panic(fmt.Sprintf("raftstore: group %d: prune idempotency: %v", f.group, err))
		}
	}
	if err := it.Close(); err != nil {
		panic(fmt.Sprintf("raftstore: group %d: prune idempotency: %v", f.group, err))
	}
	if found {
		if err := b.DeleteRange(lower, upper, nil); err != nil {
			panic(fmt.Sprintf("raftstore: group %d: prune idempotency: %v", f.group, err))
		}
	}
}

// Snapshot captures the group's state at the applied index. It returns at
// once: the copy is a Pebble snapshot, streamed later by Persist.
//
// It is an eventually-file-only snapshot over the group's snapshot range:
// a plain Pebble snapshot does not hide an excise made after it, and a
// follower may Restore (excise the range) while raft still persists an
// earlier snapshot of it.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	span := pebble.KeyRange{Start: kindPrefix(f.group, kindMeta), End: kindPrefix(f.group, kindData+1)}
	return &fsmSnapshot{
		db:      f.db,
		snap:    f.db.NewEventuallyFileOnlySnapshot([]pebble.KeyRange{span}),
		group:   f.group,
		applied: f.applied.Load(),
	}, nil
}

// Restore replaces the group's state with a snapshot stream.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.restoreSeq.Add(1)       // odd: a restore runs
	defer f.restoreSeq.Add(1) // even again, after applied moved (or not)
	// The state is about to be replaced: nothing derived from the old one
	// may survive, even if the restore fails half-way.
	f.memo.Clear()
	idx, err := restoreGroup(f.db, f.group, f.restore, rc)
	if err != nil {
		return fmt.Errorf("raftstore: group %d: restore: %w", f.group, err)
	}
	f.applied.Store(idx)
	f.restores.Add(1)
	f.logger.Info("restored snapshot", "applied-index", idx)
	return nil
}
