package clicks

import (
	"bytes"
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
