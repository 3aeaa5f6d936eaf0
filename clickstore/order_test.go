package clickstore

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/linkraft/linkraft/clicks"
	"github.com/linkraft/linkraft/raftstore"
)

// dumpData returns every key and value of the test group but the flush
// marks.
func dumpData(t *testing.T, db *pebble.DB) [][2][]byte {
	t.Helper()
	var kv [][2][]byte
	if err := raftstore.NewReader(db, testGroup).Scan(nil, markPrefix, func(k, v []byte) bool {
		kv = append(kv, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return kv
}

// Apply walks a batch's deltas in key order; the stored records must be
// those that applying them one by one in batch order gives, also when a
// batch holds several deltas of one code and day (their order matters once
// a tally overflows into OtherKey) and codes of several days.
func TestApplyOrderMatchesBatchOrder(t *testing.T) {
	var deltas []clicks.Delta
	for part := range 3 {
		b := clickBatch("r1", 1, func(rec func(string, clicks.Day, int, string, string)) {
			for i := range 400 {
				ua := []string{uaChrome, uaIPhone, uaBingBot}[i%3]
				code := fmt.Sprintf("z%d", (i*31+part)%17)
				rec(code, day0+clicks.Day(i%4), i+part*1000, ua, fmt.Sprintf("https://h%d-%d.example/", part, i%(clicks.MaxTallyKeys+7)))
			}
		})
		deltas = append(deltas, b.Deltas...)
	}
	// Reverse, so the batch order is far from the key order.
	for i, j := 0, len(deltas)-1; i < j; i, j = i+1, j-1 {
		deltas[i], deltas[j] = deltas[j], deltas[i]
	}
	// Three deltas of one code and day whose referrer tallies each fill
	// the cap: merging them in another order keeps other keys.
	tally := func(prefix string, n uint64) []clicks.Count {
		var c []clicks.Count
		for i := range clicks.MaxTallyKeys {
			c = append(c, clicks.Count{Key: fmt.Sprint(prefix, i), N: n})
		}
		return c
	}
	var same []clicks.Delta
	for _, x := range []struct {
		prefix string
		n      uint64
	}{{"a", 1}, {"b", 2}, {"a", 5}} {
		same = append(same, clicks.Delta{Code: "z0", Day: day0, Clicks: clicks.MaxTallyKeys * x.n, Referrers: tally(x.prefix, x.n)})
	}
	deltas = slices.Insert(deltas, len(deltas)/2, same...)
	whole, oneByOne := openDB(t), openDB(t)
	apply(t, whole, clicks.Batch{Router: "r1", Seq: 1, Deltas: deltas})
	for i := range deltas {
		apply(t, oneByOne, clicks.Batch{Router: "r1", Seq: uint64(i + 1), Deltas: deltas[i : i+1]})
	}
	a, b := dumpData(t, whole), dumpData(t, oneByOne)
	if len(a) == 0 || !reflect.DeepEqual(a, b) {
		t.Fatalf("batch applied whole and delta by delta differ: %d vs %d keys", len(a), len(b))
	}
	// Some record's referrer tally did overflow, or the test proves less.
	st := query(t, whole, "z0", day0, day0+3)
	if !slices.ContainsFunc(st.Referrers, func(c clicks.Count) bool { return c.Key == clicks.OtherKey }) {
		t.Fatalf("referrers did not overflow: %+v", st.Referrers)
	}
}

// decodeTallyAt must accept exactly what clicks.DecodeTally accepts, with
// the same counts.
func FuzzDecodeTallyAt(f *testing.F) {
	f.Add(clicks.AppendTally(nil, []clicks.Count{{Key: "x.com", N: 3}, {Key: "t.co", N: 1 << 40}}))
	f.Add(clicks.AppendTally(nil, nil))
	f.Add([]byte{1, 0, 5})
	f.Add([]byte{2, 3, 'a', 'b'})
	f.Add(append([]byte{1, 0xff, 0x01}, make([]byte, 300)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantErr := clicks.DecodeTally(b)
		got, end, err := decodeTallyAt(b, string(b), 0)
		if err == nil && end != len(b) {
			err = fmt.Errorf("%d trailing bytes", len(b)-end)
		}
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("decodeTallyAt error %v, clicks.DecodeTally error %v", err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeTallyAt %+v, clicks.DecodeTally %+v", got, want)
		}
	})
}

// partitionsOf returns the test partition of each delta's code.
func partitionsOf(deltas []clicks.Delta) []uint32 {
	ps := make([]uint32, len(deltas))
	for i := range deltas {
		ps[i] = partitionOf(deltas[i].Code)
	}
	return ps
}

// OrderDeltas puts a batch's deltas in day key order, deltas of one key
// in their batch order, without changing any delta; Apply's order takes a
// batch in that order as it is and sorts any other.
func TestOrderDeltas(t *testing.T) {
	for seed := range uint64(4) {
		for bi, b := range randomBatches(rand.New(rand.NewPCG(seed, 9)), 20) {
			// Tag each delta with its batch index (in Bots' high bits,
			// which no test batch sets) to check stability and that the
			// result is a permutation.
			in := slices.Clone(b.Deltas)
			for i := range in {
				in[i].Bots |= uint64(i) << 40
			}
			before := slices.Clone(in)
			out := OrderDeltas(in, partitionsOf(in))
			if !reflect.DeepEqual(in, before) {
				t.Fatalf("seed %d batch %d: OrderDeltas changed its input", seed, bi)
			}
			if len(out) != len(in) {
				t.Fatalf("seed %d batch %d: %d deltas in, %d out", seed, bi, len(in), len(out))
			}
			seen := make([]bool, len(in))
			for j := range out {
				i := int(out[j].Bots >> 40)
				if seen[i] || !reflect.DeepEqual(out[j], in[i]) {
					t.Fatalf("seed %d batch %d: delta %d of the result is not delta %d of the input, once", seed, bi, j, i)
				}
				seen[i] = true
				if j == 0 {
					continue
				}
				prev, cur := &out[j-1], &out[j]
				c := bytes.Compare(DayKey(partitionOf(prev.Code), prev.Code, uint32(prev.Day)), DayKey(partitionOf(cur.Code), cur.Code, uint32(cur.Day)))
				if c > 0 || c == 0 && prev.Bots>>40 > cur.Bots>>40 {
					t.Fatalf("seed %d batch %d: deltas %d and %d out of order: %+v, %+v", seed, bi, j-1, j, *prev, *cur)
				}
			}
			// Apply's order: the deltas with clicks in key order, for the
			// batch as it came and as ordered, and as they are for the
			// ordered one.
			for _, ds := range [][]clicks.Delta{in, out} {
				a := applier{partitionOf: partitionOf}
				keys := a.order(ds)
				for j := 1; j < len(keys); j++ {
					if c := bytes.Compare(keys[j-1].key, keys[j].key); c > 0 || c == 0 && keys[j-1].i > keys[j].i {
						t.Fatalf("seed %d batch %d: applier.order out of order at %d", seed, bi, j)
					}
				}
			}
			a := applier{partitionOf: partitionOf}
			for j, k := range a.order(out) {
				if j > 0 && k.i <= a.keys[j-1].i {
					t.Fatalf("seed %d batch %d: applier.order reordered an ordered batch", seed, bi)
				}
			}
		}
	}
}
