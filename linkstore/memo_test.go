package linkstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/linkraft/linkraft/raftstore"
)

// memoWorkload returns a random mix of commands over partitions: generated
// creates (some reusing), create batches with request IDs (some retried),
// hashed aliases, aliases of generated shape ahead of the allocator (which
// make the allocator skip), deletes, and malformed commands.
func memoWorkload(rg Placement, partitions, n int, seed uint64) [][]byte {
	rnd := rand.New(rand.NewPCG(seed, 3))
	var cmds [][]byte
	var codes []string
	for i := range n {
		p := uint32(rnd.IntN(partitions))
		url := fmt.Sprintf("https://m.example/%d", rnd.IntN(300))
		switch k := rnd.IntN(20); {
		case k < 2:
			al := fmt.Sprintf("al-%d", rnd.IntN(n))
			cmds = append(cmds, EncodeCreate(Create{Partition: rg.PartitionOfCode(al), URL: url, Alias: al, CreatedAtMs: int64(i)}))
		case k < 4:
			lo, _ := rg.Codec().Range(p)
			code := rg.Codec().Encode(lo + uint64(rnd.IntN(200)))
			codes = append(codes, code)
			cmds = append(cmds, EncodeCreate(Create{Partition: p, URL: url, Alias: code, CreatedAtMs: int64(i)}))
		case k < 5 && len(codes) > 0:
			code := codes[rnd.IntN(len(codes))]
			cmds = append(cmds, AppendDelete(nil, Delete{Partition: rg.PartitionOfCode(code), Code: code, DeletedAtMs: int64(i)}))
		case k < 6:
			cmds = append(cmds, []byte{commandVersion, byte(rnd.IntN(256))})
		case k < 12:
			var b CreateBatch
			for j := range 1 + rnd.IntN(20) {
				id := fmt.Sprintf("req-%d-%d", i, j)
				if rnd.IntN(5) == 0 {
					id = fmt.Sprintf("req-%d-%d", rnd.IntN(i+1), j) // maybe a retry
				}
				q := uint32(rnd.IntN(partitions))
				b.Items = append(b.Items, BatchItem{RequestID: id, Create: Create{Partition: q, URL: fmt.Sprintf("https://b.example/%d", rnd.IntN(300)), CreatedAtMs: int64(i)}})
			}
			cmds = append(cmds, AppendCreateBatch(nil, b))
		default:
			cmds = append(cmds, EncodeCreate(Create{Partition: p, URL: url, Reuse: rnd.IntN(2) == 0, CreatedAtMs: int64(i)}))
		}
	}
	return cmds
}

// checkMemoExact fails unless every allocator the replica's memo holds is
// the one stored.
func checkMemoExact(t *testing.T, r *replica, partitions int) {
	t.Helper()
	rd := r.reader()
	for p := range uint32(partitions) {
		v, ok := r.memo.Get(allocMemoKey(p))
		if !ok {
			continue
		}
		stored, err := rd.Get(NextKey(p))
		if errors.Is(err, raftstore.ErrNotFound) {
			stored = nil
		} else if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(v.([]byte), stored) {
			t.Fatalf("partition %d: memo holds %x, store %x", p, v, stored)
		}
	}
}

// applyAlike applies cmds in random batches (rnd picks their sizes) to a
// replica that reads the store every time and to one with a memo (rg's
// placement both), and fails unless every command gets the same result
// from both, check(memoReplica) holds after every batch, and both end byte
// for byte alike. Half-way, once held(memo) says the memo was used, the
// memo is dropped, as at a restart or a snapshot restore. It returns the
// replica with the memo.
func applyAlike(t *testing.T, rg Placement, cmds [][]byte, rnd *rand.Rand, check func(*replica), held func(*raftstore.Memo) error) *replica {
	t.Helper()
	plain, memo := newReplica(t, rg), newReplica(t, rg)
	memo.memo = raftstore.NewMemo()
	dropped := false
	for i := 0; i < len(cmds); {
		n := min(1+rnd.IntN(32), len(cmds)-i)
		a := plain.applyBatch(cmds[i : i+n]...)
		b := memo.applyBatch(cmds[i : i+n]...)
		for j := range a {
			if !bytes.Equal(a[j], b[j]) {
				t.Fatalf("command %d: results differ: %x vs %x", i+j, a[j], b[j])
			}
		}
		check(memo)
		i += n
		if !dropped && i >= len(cmds)/2 {
			if err := held(memo.memo); err != nil {
				t.Fatalf("after half the workload: %v", err)
			}
			memo.memo.Clear()
			dropped = true
		}
	}
	if !equalDumps(plain.dump(), memo.dump()) {
		t.Fatal("replicas differ")
	}
	return memo
}

// TestMemoAppliesAlike: a replica that keeps its allocators in a memo
// across batches (as every group's FSM does) answers every command and
// ends byte for byte like one that reads them from the store every time,
// also when the memo is dropped half-way (a restart or a snapshot restore),
// and the memo always holds the stored values.
func TestMemoAppliesAlike(t *testing.T) {
	const partitions = 16
	rg := testRing(t, 7, partitions)
	applyAlike(t, rg, memoWorkload(rg, partitions, 4000, 1), rand.New(rand.NewPCG(9, 9)),
		func(r *replica) { checkMemoExact(t, r, partitions) },
		func(m *raftstore.Memo) error {
			if m.Len() == 0 {
				return errors.New("the memo holds nothing")
			}
			return nil
		})
}

func TestRangeHasAllocator(t *testing.T) {
	for _, c := range []struct {
		lower, upper []byte
		want         bool
	}{
		{NextKey(3), append(NextKey(3), 0), true},
		{LinkKey(3, "a"), LinkKey(3, "b"), false},
		{LinkKey(3, "a"), nil, true},
		{[]byte{0, 0, 0, 3}, []byte{0, 0, 0, 4}, true},
		{append(NextKey(3), 0), []byte{0, 0, 0, 4}, false},
		{append(NextKey(3), 0), []byte{0, 0, 0, 4, 'n'}, false},
		{append(NextKey(3), 0), []byte{0, 0, 0, 4, 'n', 0}, true},
		{queueKey(0), queueKey(100), false},
		{[]byte{0xff, 0xff, 0xff, 0xff, 'o'}, nil, false},
		{nil, []byte{0, 0, 0, 0, 'n'}, false},
		{nil, []byte{0, 0, 0, 0, 'o'}, true},
	} {
		if got := rangeHasAllocator(c.lower, c.upper); got != c.want {
			t.Errorf("[%x, %x): %v, want %v", c.lower, c.upper, got, c.want)
		}
	}
}

// keyGets counts the reads of the keys match selects that reach the
// store (and, as countingTxn, all of them).
type keyGets struct {
	countingTxn
	match   func(key []byte) bool
	matched int
}

func (k *keyGets) Get(key []byte) ([]byte, error) {
	if k.match(key) {
		k.matched++
	}
	return k.countingTxn.Get(key)
}

// isAllocatorKey selects a partition allocator's key.
func isAllocatorKey(key []byte) bool {
	_, ok := nextKeyPartition(key)
	return ok
}

// TestMemoSparesPerBatchReads: with the replica's memo, a partition's
// allocator and the request sequence are read from the store once, not
// once per batch.
func TestMemoSparesPerBatchReads(t *testing.T) {
	rg := testRing(t, 7, 16)
	for _, tc := range []struct {
		name                 string
		match                func(key []byte) bool
		wantNoMemo, wantMemo []int
	}{
		{"allocators", isAllocatorKey, []int{3, 3, 3}, []int{3, 0, 0}},
		{"request sequence", func(key []byte) bool { return bytes.Equal(key, requestSeqKey) }, []int{1, 1, 1}, []int{1, 0, 0}},
	} {
		for _, withMemo := range []bool{false, true} {
			rep := newReplica(t, rg)
			var memo *raftstore.Memo
			if withMemo {
				memo = raftstore.NewMemo()
			}
			var reads []int
			for round := range 3 {
				var cb CreateBatch
				for p := range uint32(3) {
					cb.Items = append(cb.Items, BatchItem{RequestID: fmt.Sprintf("%d-%d", round, p), Create: Create{Partition: p, URL: fmt.Sprintf("https://r.example/%d/%d", round, p)}})
				}
				pb := rep.db.NewIndexedBatch()
				tx := &keyGets{countingTxn: countingTxn{Txn: raftstore.NewMemoTxn(pb, testGroup, memo), memo: memo}, match: tc.match}
				rep.ix++
				rep.m.Apply(tx, rep.ix, AppendCreateBatch(nil, cb))
				if err := pb.Commit(nil); err != nil {
					t.Fatal(err)
				}
				_ = pb.Close()
				reads = append(reads, tx.matched)
			}
			want := tc.wantNoMemo
			if withMemo {
				want = tc.wantMemo
			}
			if fmt.Sprint(reads) != fmt.Sprint(want) {
				t.Errorf("%s, memo %v: reads per batch %v, want %v", tc.name, withMemo, reads, want)
			}
		}
	}
}

// checkRequestSetExact fails unless the replica's request set (when its
// memo holds one) counts exactly the request IDs each epoch of the table
// and the legacy table hold, and knows whether the legacy table is drained.
func checkRequestSetExact(t *testing.T, r *replica) {
	t.Helper()
	v, ok := r.memo.Get(requestMemoKey{})
	if !ok {
		return
	}
	s := v.(*requestSet)
	want := make(map[uint64]map[uint64]uint32)
	must("scan", r.reader().Scan(entryPrefix, prefixEnd(entryPrefix), func(k, _ []byte) bool {
		e := binary.BigEndian.Uint64(k[len(entryPrefix):])
		if want[e] == nil {
			want[e] = make(map[uint64]uint32)
		}
		want[e][maphash.Bytes(s.seed, k[len(entryPrefix)+8:])]++
		return true
	}))
	wantLegacy := make(map[uint64]uint32)
	must("scan", r.reader().Scan(requestPrefix, prefixEnd(requestPrefix), func(k, _ []byte) bool {
		wantLegacy[maphash.Bytes(s.seed, k[len(requestPrefix):])]++
		return true
	}))
	if !maps.Equal(s.legacy, wantLegacy) {
		t.Fatalf("request set counts %d legacy hashes, the legacy table %d", len(s.legacy), len(wantLegacy))
	}
	if !maps.EqualFunc(s.epochs, want, maps.Equal) {
		t.Fatalf("request set counts epochs %v, the table %v", slices.Sorted(maps.Keys(s.epochs)), slices.Sorted(maps.Keys(want)))
	}
	if drained := isLegacyDrained(r.reader()); s.legacyDrained != drained {
		t.Fatalf("request set says the legacy table is drained: %v, its prune mark: %v", s.legacyDrained, drained)
	}
	if seq, err := readSeq(r.reader()); err != nil || s.seq != seq {
		t.Fatalf("request set holds sequence %d, the store %d (%v)", s.seq, seq, err)
	}
}

// TestRequestSetAppliesAlike: with a window small enough that the workload
// prunes the request table all the time, a replica that answers request
// lookups from its request set answers every command and ends byte for
// byte like one that reads the table every time, also when the memo is
// dropped half-way (a restart or a snapshot restore: the set is rebuilt
// from the table), and the set always counts exactly the stored IDs.
func TestRequestSetAppliesAlike(t *testing.T) {
	// Epochs as long as the window (production), shorter (a window over
	// several epochs) and longer (an entry out of the window in the epoch a
	// new one takes).
	for _, epochLen := range []uint64{300, 128, 1000} {
		t.Run(fmt.Sprint("epoch", epochLen), func(t *testing.T) {
			shrinkWindow(t, 300, epochLen)
			prevM := maxPrunePerBatch
			t.Cleanup(func() { maxPrunePerBatch = prevM })
			maxPrunePerBatch = 25

			const partitions = 16
			rg := testRing(t, 7, partitions)
			memo := applyAlike(t, rg, memoWorkload(rg, partitions, 4000, 2), rand.New(rand.NewPCG(5, 7)),
				func(r *replica) { checkRequestSetExact(t, r) },
				func(m *raftstore.Memo) error {
					if _, ok := m.Get(requestMemoKey{}); !ok {
						return errors.New("no request set")
					}
					return nil
				})
			seq, err := readSeq(memo.reader())
			if err != nil {
				t.Fatal(err)
			}
			oldest := epochOf(seq - requestWindow)
			if oldest == 0 {
				t.Fatalf("seq %d: the workload did not forget an epoch", seq)
			}
			for e := range entryEpochs(t, memo) {
				if e < oldest {
					t.Fatalf("seq %d: epoch %d kept, oldest is %d", seq, e, oldest)
				}
			}
		})
	}
}

// isRequestKey selects a request table key, of either table.
func isRequestKey(key []byte) bool {
	return bytes.HasPrefix(key, entryPrefix) || bytes.HasPrefix(key, requestPrefix)
}

// TestRequestSetSparesReads: with the replica's memo, a batch of new request
// IDs reads nothing from the request table, a retry still reads its first
// result (also after the memo was dropped, as at a restart), and a batch
// without a memo reads the epoch of each item and, for a new ID, the legacy
// table too (a fresh store marks it drained once seq passes the window).
func TestRequestSetSparesReads(t *testing.T) {
	rg := testRing(t, 7, 16)
	rep := newReplica(t, rg)
	memo := raftstore.NewMemo()
	apply := func(memo *raftstore.Memo, ids ...string) ([]Result, int) {
		var cb CreateBatch
		for _, id := range ids {
			cb.Items = append(cb.Items, BatchItem{RequestID: id, Create: Create{Partition: 1, URL: "https://s.example/" + id}})
		}
		pb := rep.db.NewIndexedBatch()
		tx := &keyGets{countingTxn: countingTxn{Txn: raftstore.NewMemoTxn(pb, testGroup, memo), memo: memo}, match: isRequestKey}
		rep.ix++
		raw := rep.m.Apply(tx, rep.ix, AppendCreateBatch(nil, cb))
		if err := pb.Commit(nil); err != nil {
			t.Fatal(err)
		}
		_ = pb.Close()
		items, err := DecodeBatchResult(raw)
		if err != nil {
			t.Fatal(err)
		}
		var out []Result
		for _, it := range items {
			r, err := DecodeResult(it)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		return out, tx.matched
	}
	first, reads := apply(memo, "a", "b", "c")
	if reads != 0 {
		t.Fatalf("new IDs with the memo: %d request table reads, want 0", reads)
	}
	check := func(name string, got []Result, reads, wantReads int) {
		t.Helper()
		if reads != wantReads {
			t.Errorf("%s: %d request table reads, want %d", name, reads, wantReads)
		}
		if !got[0].Equal(first[1]) || got[1].Status != ResultCreated || got[1].Record.Code == first[1].Record.Code {
			t.Errorf("%s: %+v, want b's first result and a new link", name, got)
		}
	}
	got, reads := apply(memo, "b", "d")
	check("retry with the memo", got, reads, 1)
	memo.Clear()
	got, reads = apply(memo, "b", "e")
	check("retry after the memo was dropped", got, reads, 1)
	got, reads = apply(nil, "b", "f")
	check("retry without a memo", got, reads, 3)
}
