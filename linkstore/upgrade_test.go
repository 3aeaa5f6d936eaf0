package linkstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/ring"
)

// versionWorkload returns n create batches (and some deletes between them)
// whose items are mostly new request IDs and, for a quarter, faithful
// retries (the first create with a later clock) of IDs up to 3 windows
// back, so that some are inside the window and some outside; with aliases
// (some taken), bad creates and items without a request ID.
func versionWorkload(t *testing.T, rg *ring.Ring, n int, seed uint64) [][]byte {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, 11))
	type sent struct {
		id string
		c  Create
	}
	var ids []sent
	var cmds [][]byte
	for i := range n {
		if i%7 == 6 {
			// A delete of a link some item may have made: the lowest
			// generated codes of a partition.
			p := uint32(rnd.IntN(8))
			lo, _ := rg.Codec().Range(p)
			cmds = append(cmds, AppendDelete(nil, Delete{Partition: p, Code: rg.Codec().Encode(lo + uint64(rnd.IntN(30))), DeletedAtMs: int64(i)}))
			continue
		}
		var b CreateBatch
		for j := range 1 + rnd.IntN(12) {
			clock := int64(1000*i + j)
			switch k := rnd.IntN(20); {
			case k < 5 && len(ids) > 0:
				back := min(len(ids), 3*int(requestWindow))
				s := ids[len(ids)-1-rnd.IntN(back)]
				c := s.c
				c.CreatedAtMs = clock
				b.Items = append(b.Items, BatchItem{RequestID: s.id, Create: c})
			case k < 6:
				b.Items = append(b.Items, BatchItem{Create: Create{Partition: uint32(rnd.IntN(8)), URL: "https://none.example/", CreatedAtMs: clock}})
			default:
				c := Create{Partition: uint32(rnd.IntN(8)), URL: fmt.Sprintf("https://v.example/%d", rnd.IntN(50)), Reuse: rnd.IntN(3) == 0, CreatedAtMs: clock}
				switch rnd.IntN(10) {
				case 0:
					c.Alias = fmt.Sprintf("va-%d", rnd.IntN(200))
					c.Partition = rg.PartitionOfCode(c.Alias)
				case 1:
					c.URL = ""
				case 2:
					c.Owner, c.Title, c.Tags, c.RedirectStatus = "k", "title", []string{"t"}, 302
				case 3:
					c.ExpiresAtMs, c.MaxClicks = 1<<40, 3
				}
				s := sent{id: fmt.Sprintf("v-%d-%d", i, j), c: c}
				ids = append(ids, s)
				b.Items = append(b.Items, BatchItem{RequestID: s.id, Create: c})
			}
		}
		cmds = append(cmds, AppendCreateBatch(nil, b))
	}
	return cmds
}

// apply applies cmd, the legacy way when legacy and cmd is a create batch.
func (r *replica) apply(t *testing.T, cmd []byte, legacy bool) []byte {
	t.Helper()
	if legacy {
		if c, err := DecodeCommand(cmd); err == nil {
			if b, ok := c.(CreateBatch); ok {
				return r.legacyBatch(b.Items...)
			}
		}
	}
	return r.applyBatch(cmd)[0]
}

// legacyOrder returns the seqs of the legacy table's order keys.
func legacyOrder(t *testing.T, r *replica) []uint64 {
	t.Helper()
	var seqs []uint64
	must("scan", r.reader().Scan(queuePrefix, prefixEnd(queuePrefix), func(k, _ []byte) bool {
		seqs = append(seqs, binary.BigEndian.Uint64(k[len(queuePrefix):]))
		return true
	}))
	return seqs
}

// TestVersionsAnswerAlike runs the same commands on a replica of the legacy
// table's build, on replicas of this build (with and without a memo) and on
// replicas upgraded half-way (legacy table first): every command gets the
// same answer, byte for byte, from all of them, so mixed versions and an
// upgrade make the same links. The upgraded replicas answer legacy IDs from
// the legacy table and prune it on the legacy build's schedule until it is
// drained, every replica forgets the epochs behind the window, and the
// memos stay exact throughout.
func TestVersionsAnswerAlike(t *testing.T) {
	for _, epochLen := range []uint64{50, 20, 80} {
		t.Run(fmt.Sprint("epoch", epochLen), func(t *testing.T) {
			shrinkWindow(t, 50, epochLen)
			rg := testRing(t, 7, 8)
			cmds := versionWorkload(t, rg, 300, epochLen)
			legacy := newReplica(t, rg)
			plain, memo := newReplica(t, rg), newReplica(t, rg)
			memo.memo = raftstore.NewMemo()
			upPlain, upMemo := newReplica(t, rg), newReplica(t, rg)
			upgradeAt := len(cmds) / 2
			var upgradeSeq uint64
			replayedLegacy := 0
			for i, cmd := range cmds {
				old := i < upgradeAt
				if i == upgradeAt {
					seq, err := readSeq(upPlain.reader())
					if err != nil {
						t.Fatal(err)
					}
					upgradeSeq = seq
					upMemo.memo = raftstore.NewMemo() // built from both tables
				}
				want := legacy.apply(t, cmd, true)
				for name, r := range map[string]*replica{"plain": plain, "memo": memo, "upgraded": upPlain, "upgraded memo": upMemo} {
					got := r.apply(t, cmd, old && (r == upPlain || r == upMemo))
					if !bytes.Equal(got, want) {
						t.Fatalf("command %d on %s: %x, legacy build %x", i, name, got, want)
					}
				}
				if !old {
					// The legacy table of an upgraded replica: the legacy
					// build's order keys from before the upgrade.
					var want []uint64
					for _, s := range legacyOrder(t, legacy) {
						if s < upgradeSeq {
							want = append(want, s)
						}
					}
					if got := legacyOrder(t, upPlain); fmt.Sprint(got) != fmt.Sprint(want) {
						t.Fatalf("command %d: upgraded legacy order keys %v, want %v", i, got, want)
					}
					if len(want) > 0 {
						replayedLegacy++
					}
				}
				checkRequestSetExact(t, memo)
				if !old {
					checkRequestSetExact(t, upMemo)
				}
			}
			if replayedLegacy == 0 {
				t.Fatal("the upgraded replicas never held a legacy table")
			}
			seq, err := readSeq(plain.reader())
			if err != nil {
				t.Fatal(err)
			}
			for name, r := range map[string]*replica{"plain": plain, "upgraded": upPlain} {
				if mark, _ := legacyMark(r.reader()); mark != legacyDrained {
					t.Errorf("%s: prune mark %d, want drained", name, mark)
				}
				for e := range entryEpochs(t, r) {
					if e < epochOf(seq-requestWindow) {
						t.Errorf("%s: epoch %d kept at seq %d", name, e, seq)
					}
				}
			}
			data := dataKeys(legacy.dump())
			for name, r := range map[string]*replica{"plain": plain, "memo": memo, "upgraded": upPlain, "upgraded memo": upMemo} {
				if !equalDumps(dataKeys(r.dump()), data) {
					t.Errorf("%s: the links differ from the legacy build's", name)
				}
			}
			if !equalDumps(plain.dump(), memo.dump()) || !equalDumps(upPlain.dump(), upMemo.dump()) {
				t.Error("replicas with and without a memo differ")
			}
		})
	}
}
