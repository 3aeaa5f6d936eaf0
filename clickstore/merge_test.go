package clickstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/axiomhq/hyperloglog"
	"github.com/cockroachdb/pebble/v2"
	"github.com/linkraft/linkraft/clicks"
	"github.com/linkraft/linkraft/raftstore"
)

// sketchKind names the forms of visitor sketch randomSketch makes.
type sketchKind int

const (
	sparseCompact sketchKind = iota // compacted: a sorted list, empty tmp set
	sparseTmp                       // a list and a tmp set
	sparseLarge                     // enough keys to go dense on a merge or two
	denseV2                         // the library's dense form
	denseV1                         // version 1: packed 4-bit registers and a bias
	sparseV1                        // version 1 header on a sparse payload
	sparseDupTmp                    // a tmp set that lists a key twice
	numSketchKinds
)

// randomSketch returns a visitor sketch of kind k in the library's binary
// form, every one of them accepted by decodeSketch.
func randomSketch(rng *rand.Rand, k sketchKind) []byte {
	sparse := func(n int, compact bool) []byte {
		sk, err := hyperloglog.NewSketch(clicks.SketchPrecision, true)
		if err != nil {
			panic(err)
		}
		for i := range n {
			sk.InsertHash(rng.Uint64())
			if !compact && i == n/2 {
				sk.Estimate() // half in the list, half in the tmp set
			}
		}
		if compact {
			sk.Estimate()
		}
		b, err := sk.MarshalBinary()
		if err != nil {
			panic(err)
		}
		return b
	}
	switch k {
	case sparseCompact:
		return sparse(1+rng.IntN(12), true)
	case sparseTmp:
		return sparse(2+rng.IntN(30), false)
	case sparseLarge:
		return sparse(300+rng.IntN(900), rng.IntN(2) == 0)
	case denseV2:
		sk, err := hyperloglog.NewSketch(clicks.SketchPrecision, false)
		if err != nil {
			panic(err)
		}
		for range 1 + rng.IntN(5000) {
			sk.InsertHash(rng.Uint64())
		}
		b, err := sk.MarshalBinary()
		if err != nil {
			panic(err)
		}
		return b
	case denseV1:
		bias := byte(rng.IntN(40))
		b := []byte{1, clicks.SketchPrecision, bias, 0, 0xde, 0xad, 0xbe, 0xef}
		for range skM / 2 {
			b = append(b, byte(rng.IntN(14))<<4|byte(rng.IntN(14)))
		}
		return b
	case sparseV1:
		b := randomSketch(rng, sketchKind(rng.IntN(3)))
		b[0], b[2] = 1, byte(rng.IntN(256))
		return b
	case sparseDupTmp:
		for {
			b := sparse(3+rng.IntN(10), false)
			n := binary.BigEndian.Uint32(b[4:8])
			if n == 0 {
				continue
			}
			key := bytes.Clone(b[8:12])
			out := slices.Concat(b[:4], binary.BigEndian.AppendUint32(nil, n+1), key, b[8:])
			return out
		}
	}
	panic(fmt.Sprint("unknown sketch kind ", k))
}

// randomBatches returns batches of two routers with deltas of every shape
// Apply meets: repeated codes and days in one batch, bot-only deltas,
// tallies that overflow into OtherKey, and sketches of every form, some
// large enough to turn records dense.
func randomBatches(rng *rand.Rand, n int) []clicks.Batch {
	seq := map[string]uint64{}
	keyPool := func(prefix string, n int) []string {
		var ks []string
		for i := range n {
			ks = append(ks, fmt.Sprintf("%s%d", prefix, i))
		}
		return append(ks, clicks.OtherKey, clicks.DirectKey)
	}
	pools := [4][]string{keyPool("ref", 60), keyPool("br", 8), keyPool("os", 40), keyPool("dev", 3)}
	tally := func(pool []string) []clicks.Count {
		var t []clicks.Count
		for range rng.IntN(clicks.MaxTallyKeys + 1) {
			t = append(t, clicks.Count{Key: pool[rng.IntN(len(pool))], N: 1 + rng.Uint64N(1000)})
		}
		return t
	}
	var out []clicks.Batch
	for range n {
		router := []string{"r1", "r2"}[rng.IntN(2)]
		seq[router]++
		b := clicks.Batch{Router: router, Seq: seq[router]}
		for range 1 + rng.IntN(80) {
			code := rng.IntN(30)
			d := clicks.Delta{Code: fmt.Sprintf("c%d", code), Day: day0 + clicks.Day(rng.IntN(3))}
			// Codes c0-c5 get sketches of every form; the others only
			// small sparse ones, so that their records stay sparse.
			kinds := int(numSketchKinds)
			if code > 5 {
				kinds = int(sparseTmp) + 1
			}
			switch rng.IntN(10) {
			case 0:
				d.Bots = 1 + rng.Uint64N(5)
			case 1: // nothing: skipped
			default:
				d.Clicks, d.Bots = 1+rng.Uint64N(20), rng.Uint64N(2)
				if rng.IntN(8) != 0 {
					d.Visitors = randomSketch(rng, sketchKind(rng.IntN(kinds)))
				}
				d.Referrers, d.Browsers, d.OSes, d.Devices = tally(pools[0]), tally(pools[1]), tally(pools[2]), tally(pools[3])
			}
			b.Deltas = append(b.Deltas, d)
		}
		out = append(out, b)
	}
	return out
}

// dumpAll returns every key and value of the test group.
func dumpAll(t *testing.T, db *pebble.DB) [][2][]byte {
	t.Helper()
	var kv [][2][]byte
	if err := raftstore.NewReader(db, testGroup).Scan(nil, nil, func(k, v []byte) bool {
		kv = append(kv, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return kv
}

// applyWith applies batches in Pebble batches of random sizes with fn
// (Apply or legacyApply), through Txns with memo (nil: none), and returns
// the outcomes.
func applyWith(t *testing.T, db *pebble.DB, rng *rand.Rand, batches []clicks.Batch,
	fn func(raftstore.Txn, func(string) uint32, clicks.Batch) (Outcome, error), memo *raftstore.Memo) []Outcome {
	t.Helper()
	var out []Outcome
	for len(batches) > 0 {
		n := min(len(batches), 1+rng.IntN(4))
		pb := db.NewIndexedBatch()
		for _, x := range batches[:n] {
			tx := raftstore.NewTxn(pb, testGroup)
			if memo != nil {
				tx = raftstore.NewMemoTxn(pb, testGroup, memo)
			}
			o, err := fn(tx, partitionOf, x)
			if err != nil {
				t.Fatalf("apply %s/%d: %v", x.Router, x.Seq, err)
			}
			out = append(out, o)
		}
		if err := pb.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		batches = batches[n:]
	}
	return out
}

// Apply writes exactly the bytes the library-based apply path
// (legacyApply) wrote, for batches with every form of sketch and tally,
// and stores that apply the same batches in different Raft batches, with
// and without a memo of records (one so small that it evicts all the
// time, one that restarts empty halfway, as after a snapshot restore),
// hold identical keys.
func TestApplyMatchesLibraryMerge(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			batches := randomBatches(rand.New(rand.NewPCG(seed, 1)), 80)
			// Replay a few, as a retried flush would.
			batches = append(batches, batches[3], batches[40])
			legacy := openDB(t)
			wantOut := applyWith(t, legacy, rand.New(rand.NewPCG(seed, 2)), batches, legacyApply, nil)
			want := dumpAll(t, legacy)
			small := raftstore.NewMemo()
			stores := []struct {
				name string
				run  func(db *pebble.DB, rng *rand.Rand) []Outcome
			}{
				{"no memo", func(db *pebble.DB, rng *rand.Rand) []Outcome {
					return applyWith(t, db, rng, batches, Apply, nil)
				}},
				{"memo", func(db *pebble.DB, rng *rand.Rand) []Outcome {
					return applyWith(t, db, rng, batches, Apply, raftstore.NewMemo())
				}},
				{"memo emptied halfway", func(db *pebble.DB, rng *rand.Rand) []Outcome {
					m := raftstore.NewMemo()
					out := applyWith(t, db, rng, batches[:len(batches)/2], Apply, m)
					m.Clear()
					return append(out, applyWith(t, db, rng, batches[len(batches)/2:], Apply, m)...)
				}},
				{"ordered by the leader", func(db *pebble.DB, rng *rand.Rand) []Outcome {
					ordered := make([]clicks.Batch, len(batches))
					for i, b := range batches {
						ordered[i] = b
						ordered[i].Deltas = OrderDeltas(b.Deltas, partitionsOf(b.Deltas))
					}
					return applyWith(t, db, rng, ordered, Apply, raftstore.NewMemo())
				}},
				{"small memo", func(db *pebble.DB, rng *rand.Rand) []Outcome {
					defer func(b int) { recordMemoBudget = b }(recordMemoBudget)
					recordMemoBudget = 4 << 10
					return applyWith(t, db, rng, batches, Apply, small)
				}},
			}
			for i, st := range stores {
				db := openDB(t)
				if got := st.run(db, rand.New(rand.NewPCG(seed, uint64(3+i)))); !reflect.DeepEqual(got, wantOut) {
					t.Fatalf("%s: outcomes differ:\n got %v\nwant %v", st.name, got, wantOut)
				}
				got := dumpAll(t, db)
				for i := range max(len(want), len(got)) {
					if i >= len(want) || i >= len(got) || !bytes.Equal(want[i][0], got[i][0]) || !bytes.Equal(want[i][1], got[i][1]) {
						t.Fatalf("%s: key %d differs from the library-based apply (%d vs %d keys)", st.name, i, len(got), len(want))
					}
				}
			}
			if rm, _ := small.Get(recordMemoKey{}); rm == nil || len(rm.(*recordMemo).codes) == 0 || rm.(*recordMemo).size > 4<<10 {
				t.Fatalf("small memo not used or over budget: %+v", rm)
			}
			// The batches reached the cases that matter: dense and sparse
			// day records, and tallies at the cap.
			var dense, sparse, other int
			for _, kv := range want {
				if kv[0][4] != kindDay {
					continue
				}
				r, err := decodeDayRecord(kv[1])
				if err != nil {
					t.Fatal(err)
				}
				if r.visitors != nil {
					if b, _ := r.visitors.MarshalBinary(); b[3] == 1 {
						sparse++
					} else {
						dense++
					}
				}
				if slices.ContainsFunc(r.tallies[0], func(c clicks.Count) bool { return c.Key == clicks.OtherKey }) && len(r.tallies[0]) == clicks.MaxTallyKeys {
					other++
				}
			}
			if dense == 0 || sparse == 0 || other == 0 {
				t.Fatalf("coverage: %d dense, %d sparse records, %d full referrer tallies", dense, sparse, other)
			}
		})
	}
}

// librarySketch returns what the library-based path stored for the merge
// of sketches (in order; decode, Merge, Estimate, AppendBinary), with its
// length before it as a day record holds it.
func librarySketch(t *testing.T, sketches ...[]byte) []byte {
	t.Helper()
	var acc *hyperloglog.Sketch
	for _, b := range sketches {
		sk, err := decodeSketch(b)
		if err != nil {
			t.Fatal(err)
		}
		if acc == nil {
			acc = sk
		} else if err := acc.Merge(sk); err != nil {
			t.Fatal(err)
		}
	}
	acc.Estimate()
	out, err := acc.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return append(binary.AppendUvarint(nil, uint64(len(out))), out...)
}

// parseSketch accepts exactly what decodeSketch accepts, and merging with
// sketchMerger gives the library's bytes.
func FuzzSketchMerge(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 7))
	for k := range numSketchKinds {
		for range 2 {
			f.Add(randomSketch(rng, k), randomSketch(rng, sketchKind(rng.IntN(int(numSketchKinds)))))
		}
	}
	f.Add([]byte{2, 12, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, []byte{2, 12, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0})
	f.Add([]byte{2, 12, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0}, []byte{1, 12, 7, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 2, 1, 2})
	var m sketchMerger
	f.Fuzz(func(t *testing.T, a, b []byte) {
		va, okA := parseSketch(a)
		vb, okB := parseSketch(b)
		_, errA := decodeSketch(a)
		_, errB := decodeSketch(b)
		if okA != (errA == nil) || okB != (errB == nil) {
			t.Fatalf("parseSketch accepts %v/%v, decodeSketch errors %v / %v", okA, okB, errA, errB)
		}
		if !okA {
			return
		}
		m.reset()
		m.add(va)
		if got, want := m.appendSketch(nil), librarySketch(t, a); !bytes.Equal(got, want) {
			t.Fatalf("one sketch:\n got %x\nwant %x", got, want)
		}
		if !okB {
			return
		}
		m.reset()
		m.add(va)
		m.add(vb)
		if got, want := m.appendSketch(nil), librarySketch(t, a, b); !bytes.Equal(got, want) {
			t.Fatalf("two sketches:\n got %x\nwant %x", got, want)
		}
	})
}

// The switch to dense happens where the library makes it: a merged list
// of exactly m bytes stays sparse, one key more turns it dense.
func TestSketchMergeAtDenseThreshold(t *testing.T) {
	encode := func(hs []uint64) []byte {
		sk, err := hyperloglog.NewSketch(clicks.SketchPrecision, true)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hs {
			sk.InsertHash(h)
		}
		b, err := sk.MarshalBinary() // tmp set and list, not compacted
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// listLen returns the stream length of a sparse sketch as
	// librarySketch returns it, or -1 when it is dense.
	listLen := func(withLen []byte) int {
		_, n := binary.Uvarint(withLen)
		if sk := withLen[n:]; sk[3] == 1 {
			return len(sk) - skHeader - skList
		}
		return -1
	}
	// Find hashes whose compacted list is exactly m bytes long: add
	// hashes until the sketch goes dense, and try another sequence of
	// hashes when the last sparse list fell short of m.
	var hashes []uint64
	for seed := uint64(0); hashes == nil; seed++ {
		if seed == 50 {
			t.Fatal("no sequence of hashes gives a list of exactly m bytes")
		}
		rng := rand.New(rand.NewPCG(seed, 3))
		var hs []uint64
		prev := 0
		for {
			hs = append(hs, rng.Uint64())
			l := listLen(librarySketch(t, encode(hs)))
			if l < 0 {
				if prev == skM {
					hashes = hs // hs[:len(hs)-1] fills exactly m bytes
				}
				break
			}
			prev = l
		}
	}
	var m sketchMerger
	for n := len(hashes) - 3; n <= len(hashes); n++ {
		// Two sketches: the odd and the even hashes.
		var a, b []uint64
		for i, h := range hashes[:n] {
			if i%2 == 0 {
				a = append(a, h)
			} else {
				b = append(b, h)
			}
		}
		ea, eb := encode(a), encode(b)
		va, okA := parseSketch(ea)
		vb, okB := parseSketch(eb)
		if !okA || !okB {
			t.Fatalf("%d hashes: sketches not accepted", n)
		}
		m.reset()
		m.add(va)
		m.add(vb)
		got, want := m.appendSketch(nil), librarySketch(t, ea, eb)
		if !bytes.Equal(got, want) {
			t.Fatalf("%d hashes: merge differs from the library's (%d vs %d bytes)", n, len(got), len(want))
		}
		if l := listLen(want); n == len(hashes)-1 && l != skM || n == len(hashes) && l != -1 {
			t.Fatalf("%d hashes: list of %d bytes", n, l)
		}
	}
}

// A write of click keys outside Apply followed by ForgetMemo leaves the
// next Apply merging into the stored value, as a replica without a memo
// does.
func TestForgetMemo(t *testing.T) {
	batches := randomBatches(rand.New(rand.NewPCG(9, 1)), 6)
	memo := raftstore.NewMemo()
	withMemo, without := openDB(t), openDB(t)
	for i, db := range []*pebble.DB{withMemo, without} {
		m := memo
		if i == 1 {
			m = nil
		}
		rng := rand.New(rand.NewPCG(9, 2))
		applyWith(t, db, rng, batches[:3], Apply, m)
		// Another command deletes every day record and total of c1.
		pb := db.NewIndexedBatch()
		tx := raftstore.NewTxn(pb, testGroup)
		if m != nil {
			tx = raftstore.NewMemoTxn(pb, testGroup, m)
		}
		p := partitionOf("c1")
		for _, k := range [][2][]byte{
			{appendDayPrefix(nil, p, "c1"), append(appendDayPrefix(nil, p, "c1")[:5+len("c1")], 0x01)},
			{TotalKey(p, "c1"), append(TotalKey(p, "c1"), 0x00)},
		} {
			if err := tx.DeleteRange(k[0], k[1]); err != nil {
				t.Fatal(err)
			}
		}
		ForgetMemo(tx)
		if err := pb.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		applyWith(t, db, rng, batches[3:], Apply, m)
	}
	if _, ok := memo.Get(recordMemoKey{}); !ok {
		t.Fatal("the memo was not used after ForgetMemo")
	}
	a, b := dumpAll(t, withMemo), dumpAll(t, without)
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Fatalf("stores differ: %d vs %d keys", len(a), len(b))
	}
}

// mergeTally gives what clicks.TopCounts gives on the stored tally and the
// delta's together, on tallies with repeated keys, OtherKey, equal counts
// and sums that wrap, around smallTally.
func TestMergeTallyMatchesTopCounts(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "aa", "ab", "ac", "ad", "ae", "af", "ag", "ah", clicks.OtherKey}
	for range 20000 {
		var c []clicks.Count
		for range rng.IntN(2*smallTally + 2) {
			n := 1 + rng.Uint64N(4)
			if rng.IntN(50) == 0 {
				n = ^uint64(0) - rng.Uint64N(3)
			}
			c = append(c, clicks.Count{Key: keys[rng.IntN(len(keys))], N: n})
		}
		want := clicks.TopCounts(slices.Clone(c), clicks.MaxTallyKeys)
		// Split anywhere into a stored tally (with repeated keys too, as a
		// damaged record could hold) and the delta's.
		k := rng.IntN(len(c) + 1)
		if got := mergeTally(slices.Clone(c[:k]), slices.Clone(c[k:])); !slices.Equal(got, want) {
			t.Fatalf("mergeTally(%v, %v)\n = %v\nwant %v", c[:k], c[k:], got, want)
		}
	}
}

// BenchmarkSketchMerge merges a delta of 3 visitors into a large stored
// sketch (a hot code's day), as Apply does and as the library-based path
// did (decode both, Merge, Estimate, AppendBinary).
func BenchmarkSketchMerge(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	sketch := func(n int, sparse bool) []byte {
		sk, err := hyperloglog.NewSketch(clicks.SketchPrecision, sparse)
		if err != nil {
			b.Fatal(err)
		}
		for range n {
			sk.InsertHash(rng.Uint64())
		}
		sk.Estimate()
		out, err := sk.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	delta := sketch(3, true)
	for _, st := range []struct {
		name   string
		stored []byte
	}{{"sparse-1000", sketch(1000, true)}, {"dense", sketch(20000, false)}} {
		b.Run(st.name+"/binary", func(b *testing.B) {
			var m sketchMerger
			var dst []byte
			vd, _ := parseSketch(delta)
			b.ReportAllocs()
			for b.Loop() {
				m.reset()
				if !m.addStored(st.stored) {
					b.Fatal("stored sketch not accepted")
				}
				m.add(vd)
				dst = m.appendSketch(dst[:0])
			}
		})
		b.Run(st.name+"/library", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s, err := decodeSketch(st.stored)
				if err != nil {
					b.Fatal(err)
				}
				d, err := decodeSketch(delta)
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Merge(d); err != nil {
					b.Fatal(err)
				}
				s.Estimate()
				if _, err := s.AppendBinary(nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// parseSketch and the merge agree with the library on damaged sketches:
// valid ones of every form with a byte changed, a length field nudged,
// bytes cut or added. Each one is accepted by both or by neither, and an
// accepted one merges (alone and with a valid sketch) to the library's
// bytes.
func TestParseSketchMatchesLibraryOnDamage(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	var m sketchMerger
	accepted := 0
	for i := range 6000 {
		b := randomSketch(rng, sketchKind(i%int(numSketchKinds)))
		switch rng.IntN(5) {
		case 0: // any byte
			b[rng.IntN(len(b))] = byte(rng.IntN(256))
		case 1: // a header or length byte
			b[rng.IntN(min(len(b), 24))] += byte(1 + rng.IntN(3))
		case 2: // cut
			b = b[:rng.IntN(len(b))]
		case 3: // extend
			b = append(b, byte(rng.IntN(256)))
		default: // a byte of the payload's end
			b[len(b)-1-rng.IntN(min(len(b), 8))] ^= byte(1 << rng.IntN(8))
		}
		v, ok := parseSketch(b)
		_, err := decodeSketch(b)
		if ok != (err == nil) {
			t.Fatalf("sketch %x: parseSketch accepts %v, decodeSketch error %v", b, ok, err)
		}
		if !ok {
			continue
		}
		accepted++
		m.reset()
		m.add(v)
		if got, want := m.appendSketch(nil), librarySketch(t, b); !bytes.Equal(got, want) {
			t.Fatalf("sketch %x: merged alone %x, library %x", b, got, want)
		}
		other := randomSketch(rng, sketchKind(rng.IntN(int(numSketchKinds))))
		vo, _ := parseSketch(other)
		m.reset()
		m.add(vo)
		m.add(v)
		if got, want := m.appendSketch(nil), librarySketch(t, other, b); !bytes.Equal(got, want) {
			t.Fatalf("sketch %x after %x: merged %x, library %x", b, other, got, want)
		}
	}
	if accepted < 500 {
		t.Fatalf("only %d damaged sketches were accepted: the test proves little", accepted)
	}
}

// craftSparse builds a version-2 sparse sketch of precision 12 from its
// parts, whatever they are.
func craftSparse(tmp []uint32, tmpCount uint32, count, last uint32, stream []byte) []byte {
	b := []byte{2, clicks.SketchPrecision, 0, 1}
	b = binary.BigEndian.AppendUint32(b, tmpCount)
	for _, k := range tmp {
		b = binary.BigEndian.AppendUint32(b, k)
	}
	b = binary.BigEndian.AppendUint32(b, count)
	b = binary.BigEndian.AppendUint32(b, last)
	b = binary.BigEndian.AppendUint32(b, uint32(len(stream)))
	return append(b, stream...)
}

// Sketches built to break one rule of the library's decoder each (and a
// few that only look as if they did): parseSketch decides as
// decodeSketch does.
func TestParseSketchEdgeCases(t *testing.T) {
	evens := make([]uint32, skM+1)
	for i := range evens {
		evens[i] = uint32(i) << 1
	}
	cases := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"empty list", craftSparse(nil, 0, 0, 0, nil), true},
		{"first delta 0", craftSparse(nil, 0, 2, 5, []byte{0, 5}), true},
		{"repeated key", craftSparse(nil, 0, 3, 5, []byte{2, 3, 0}), false},
		{"varint not minimal", craftSparse(nil, 0, 1, 5, []byte{0x85, 0x00}), false},
		{"varint of 5 bytes", craftSparse(nil, 0, 1, 1<<28, []byte{0x80, 0x80, 0x80, 0x80, 0x01}), true},
		{"varint past 32 bits", craftSparse(nil, 0, 1, 0, []byte{0x80, 0x80, 0x80, 0x80, 0x10}), false},
		{"varint of 6 bytes", craftSparse(nil, 0, 1, 0, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x01}), false},
		{"last wrong", craftSparse(nil, 0, 2, 6, []byte{2, 3}), false},
		{"count wrong", craftSparse(nil, 0, 3, 5, []byte{2, 3}), false},
		{"stream longer than 5 bytes a key", craftSparse(nil, 0, 1, 2, []byte{2, 0, 0, 0, 0, 0}), false},
		{"key wraps", craftSparse(nil, 0, 2, 1, []byte{0xfe, 0xff, 0xff, 0xff, 0x0f, 3}), false},
		{"rho too large", craftSparse(nil, 0, 1, 0x7f, []byte{0x7f}), false},
		{"rho at the limit", craftSparse(nil, 0, 1, 40<<1|1, []byte{40<<1 | 1}), true},
		{"rho one past the limit", craftSparse(nil, 0, 1, 41<<1|1, []byte{41<<1 | 1}), false},
		{"tmp set of m keys", craftSparse(evens[:skM], skM, 0, 0, nil), true},
		{"tmp set over m keys", craftSparse(evens, skM+1, 0, 0, nil), false},
		{"tmp set count past the bytes", craftSparse(evens[:3], 4, 0, 0, nil), false},
		{"tmp key with rho too large", craftSparse([]uint32{0x7f}, 1, 0, 0, nil), false},
		{"tmp keys repeated", craftSparse([]uint32{4, 4, 8}, 3, 0, 0, nil), true},
		{"precision 14", append([]byte{2, 14}, craftSparse(nil, 0, 0, 0, nil)[2:]...), false},
		{"version 3", append([]byte{3}, craftSparse(nil, 0, 0, 0, nil)[1:]...), false},
		{"version 2 with b", append([]byte{2, 12, 1}, craftSparse(nil, 0, 0, 0, nil)[3:]...), false},
		{"version 1 with b", append([]byte{1, 12, 9}, craftSparse(nil, 0, 0, 0, nil)[3:]...), true},
		{"sparse flag 2", append([]byte{2, 12, 0, 2}, craftSparse(nil, 0, 0, 0, nil)[4:]...), false},
		{"dense short", append([]byte{2, 12, 0, 0, 0, 0, 0x10, 0}, make([]byte, skM-1)...), false},
		{"dense count wrong", append([]byte{2, 12, 0, 0, 0, 0, 0x10, 1}, make([]byte, skM)...), false},
		{"dense register too large", append(append([]byte{2, 12, 0, 0, 0, 0, 0x10, 0}, make([]byte, skM-1)...), skMaxRho+1), false},
		{"dense register at the limit", append(append([]byte{2, 12, 0, 0, 0, 0, 0x10, 0}, make([]byte, skM-1)...), skMaxRho), true},
		{"v1 dense bias too large", append([]byte{1, 12, skMaxRho - 14, 0, 0, 0, 0, 0}, bytes.Repeat([]byte{0xff}, skM/2)...), false},
		{"v1 dense at the limit", append([]byte{1, 12, skMaxRho - 15, 0, 0, 0, 0, 0}, bytes.Repeat([]byte{0xff}, skM/2)...), true},
	}
	var m sketchMerger
	for _, c := range cases {
		v, ok := parseSketch(c.b)
		_, err := decodeSketch(c.b)
		if ok != (err == nil) || ok != c.ok {
			t.Errorf("%s: parseSketch accepts %v, decodeSketch error %v, want accepted %v", c.name, ok, err, c.ok)
			continue
		}
		if ok {
			m.reset()
			m.add(v)
			if got, want := m.appendSketch(nil), librarySketch(t, c.b); !bytes.Equal(got, want) {
				t.Errorf("%s: merged %x, library %x", c.name, got, want)
			}
		}
	}
}
