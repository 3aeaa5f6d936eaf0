package clicks

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"testing"
)

// benchBatch returns a batch of n codes, 3 clicks each from a mix of
// agents, referrers and visitors, as a router's flush to one shard under
// a cold workload looks.
func benchBatch(n int) Batch {
	c := NewCounter(func([]byte) uint64 { return 1 })
	agents := []Agent{classifier.Classify([]byte(uaChrome)), classifier.Classify([]byte(uaIPhone))}
	refs := [][]byte{nil, []byte("news.example.com"), []byte("t.co"), nil, []byte("www.google.com")}
	for i := range n {
		for j := range 3 {
			k := i*3 + j
			c.Record(fmt.Appendf(nil, "c%06d", i), ClickInfo{Day: 20000, Referrer: refs[k%len(refs)], Agent: agents[k%len(agents)], Visitor: uint64(k % 1000)})
		}
	}
	return Batch{Router: "r1", Seq: 1, Deltas: c.Drain()[1]}
}

// A decoded batch shares no memory with its input, and appending to one
// of its slices does not change another.
func TestDecodeBatchOwnsItsMemory(t *testing.T) {
	want := benchBatch(50)
	enc := AppendBatch(nil, want)
	got, err := DecodeBatch(enc)
	if err != nil {
		t.Fatal(err)
	}
	clear(enc)
	if !reflect.DeepEqual(got, want) {
		t.Fatal("decoded batch changed with its input")
	}
	for i := range got.Deltas[:len(got.Deltas)-1] {
		d := &got.Deltas[i]
		_ = append(d.Visitors, 0xff, 0xff, 0xff)
		for _, tl := range [][]Count{d.Referrers, d.Browsers, d.OSes, d.Devices} {
			_ = append(tl, Count{Key: "appended", N: 1})
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("an append to one decoded slice changed another")
	}
	for i := range want.Deltas {
		if !bytes.Equal(got.Deltas[i].Visitors, want.Deltas[i].Visitors) {
			t.Fatalf("delta %d: visitors differ", i)
		}
	}
	// The strings share the decoded copy with the sketches: writing every
	// sketch's bytes must leave every string as it was.
	sketches := 0
	for i := range got.Deltas {
		if v := got.Deltas[i].Visitors; len(v) > 0 {
			sketches++
			for j := range v {
				v[j] = 'z'
			}
			want.Deltas[i].Visitors = v
		}
	}
	if sketches == 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("writing the sketches (%d) changed a string", sketches)
	}
}

// BenchmarkDecodeBatch decodes a 5,000-code batch, as every replica does
// once for each click batch it applies (and the leader once more for the
// RPC). One op is one batch.
func BenchmarkDecodeBatch(b *testing.B) {
	enc := AppendBatch(nil, benchBatch(5000))
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBatch(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// AppendBatch grows its buffer once, to the encoding's length, for batches
// of every size (batchSize agrees with the encoding), and appends after
// what dst already holds.
func TestAppendBatchSizesExactly(t *testing.T) {
	for _, n := range []int{0, 1, 7, 200, 3000} {
		b := benchBatch(n)
		b.Seq = 1<<63 + uint64(n) // a 10-byte varint
		enc := AppendBatch(nil, b)
		if got := batchSize(b); got != len(enc) {
			t.Fatalf("%d codes: batchSize %d, encoding %d bytes", n, got, len(enc))
		}
		if allocs := testing.AllocsPerRun(5, func() { _ = AppendBatch(nil, b) }); allocs != 1 && !raceEnabled {
			t.Fatalf("%d codes: %v allocations per encoding, want 1", n, allocs)
		}
		prefixed := AppendBatch([]byte("xy"), b)
		if string(prefixed[:2]) != "xy" || !bytes.Equal(prefixed[2:], enc) {
			t.Fatalf("%d codes: appending after a prefix changed the encoding", n)
		}
	}
	for _, x := range []uint64{0, 1, 127, 128, 16383, 16384, 1<<63 - 1, 1 << 63, ^uint64(0)} {
		if got, want := uvarintSize(x), len(binary.AppendUvarint(nil, x)); got != want {
			t.Fatalf("uvarintSize(%d) = %d, want %d", x, got, want)
		}
	}
}

// BenchmarkAppendBatch encodes a 5,000-code batch, as a router does for
// each shard every flush interval. One op is one batch.
func BenchmarkAppendBatch(b *testing.B) {
	batch := benchBatch(5000)
	b.SetBytes(int64(len(AppendBatch(nil, batch))))
	b.ReportAllocs()
	for b.Loop() {
		_ = AppendBatch(nil, batch)
	}
}
