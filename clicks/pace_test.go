package clicks

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/linkraft/linkraft/internal/testutil"
)

func TestPaceDelay(t *testing.T) {
	const window = 500 * time.Millisecond
	for _, tc := range []struct{ n, m int }{{1, 1}, {1, 3}, {7, 3}, {40, 3}, {2100, 3}, {5, 1}} {
		seen := make(map[time.Duration]bool)
		for i := range tc.m {
			prev := time.Duration(-1)
			for j := range tc.n {
				d := paceDelay(window, j, tc.n, i, tc.m)
				if d < 0 || d >= window {
					t.Fatalf("n=%d m=%d: batch %d of shard %d due at %v, outside [0, %v)", tc.n, tc.m, j, i, d, window)
				}
				if d <= prev {
					t.Fatalf("n=%d m=%d: shard %d: batch %d due at %v, not after batch %d at %v", tc.n, tc.m, i, j, d, j-1, prev)
				}
				if seen[d] && tc.n*tc.m <= 1000 {
					t.Fatalf("n=%d m=%d: two batches due at %v", tc.n, tc.m, d)
				}
				seen[d] = true
				prev = d
			}
		}
		if d := paceDelay(window, 0, tc.n, 0, tc.m); d != 0 {
			t.Fatalf("n=%d m=%d: the first batch waits %v", tc.n, tc.m, d)
		}
	}
	if d := paceDelay(window, 0, 0, 0, 0); d != 0 {
		t.Fatalf("empty queue: %v", d)
	}
}

// waitLog is a Flusher.wait that records the waits and returns at once.
type waitLog struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (w *waitLog) wait(_ context.Context, d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waits = append(w.waits, d)
}

// recordMany counts one click of each of n codes, codes spread over the
// shards by their first byte, and returns the clicks per shard.
func recordMany(c *Counter, n int) map[uint64]uint64 {
	want := make(map[uint64]uint64)
	for i := range n {
		code := fmt.Appendf(nil, "%c%05d", 'a'+i%3, i)
		c.Record(code, ClickInfo{Day: 1, Agent: Agent{Browser: "b", OS: "o", Device: "d"}})
		want[uint64(code[0])]++
	}
	return want
}

func TestPacedFlushSpreadsInOrder(t *testing.T) {
	c := NewCounter(func(code []byte) uint64 { return uint64(code[0]) })
	sink := &recordingSink{}
	const window = 300 * time.Millisecond
	f, err := NewFlusher(FlusherConfig{Router: "r1", Counter: c, Sink: sink, Interval: time.Hour, PaceWindow: window, MaxBatchDeltas: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	w := &waitLog{}
	f.wait = w.wait
	want := recordMany(c, 900) // 30 batches per shard
	if err := f.paced(context.Background()); err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for shard, n := range want {
		bs := sink.acked[shard]
		if len(bs) != 30 {
			t.Fatalf("shard %d: %d batches, want 30", shard, len(bs))
		}
		var got uint64
		for k, b := range bs {
			if k > 0 && b.Seq <= bs[k-1].Seq {
				t.Fatalf("shard %d: seq %d sent after %d", shard, b.Seq, bs[k-1].Seq)
			}
			for _, d := range b.Deltas {
				got += d.Clicks
			}
		}
		if got != n {
			t.Fatalf("shard %d: %d clicks acknowledged, want %d", shard, got, n)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	// 90 batches, every one but the first of each shard waits (the
	// first of shards 2 and 3 too: their offset), none past the window.
	if len(w.waits) < 85 || len(w.waits) > 89 {
		t.Fatalf("%d waits for 90 batches", len(w.waits))
	}
	for _, d := range w.waits {
		if d <= 0 || d >= window {
			t.Fatalf("waited %v, outside (0, %v)", d, window)
		}
	}
	if st := f.Stats(); st.Pending != 0 || st.Sent != 90 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPacedFlushKeepsFailedBatchesInOrder(t *testing.T) {
	c := NewCounter(func([]byte) uint64 { return 1 })
	sink := &recordingSink{fail: 1}
	f, err := NewFlusher(FlusherConfig{Router: "r1", Counter: c, Sink: sink, Interval: time.Hour, MaxBatchDeltas: 10, MaxPendingBatches: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	f.wait = (&waitLog{}).wait
	for i := range 30 {
		c.Record(fmt.Appendf(nil, "a%03d", i), ClickInfo{Day: 1, Agent: Agent{Bot: true}})
	}
	if err := f.paced(context.Background()); err == nil {
		t.Fatal("a failed send should fail the paced flush")
	}
	if st := f.Stats(); st.Pending != 3 || st.Sent != 0 {
		t.Fatalf("after the failure: %+v", st)
	}
	// 3 batches wait: 10 more clicks make the fourth, the rest are
	// dropped (MaxPendingBatches 4).
	for i := range 30 {
		c.Record(fmt.Appendf(nil, "b%03d", i), ClickInfo{Day: 1, Agent: Agent{Bot: true}})
	}
	if err := f.paced(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := f.Stats(); st.Pending != 0 || st.Sent != 4 || st.DroppedClicks != 20 {
		t.Fatalf("after the retry: %+v", st)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.calls) != 5 || sink.calls[0].Seq != sink.calls[1].Seq {
		t.Fatalf("calls: the failed batch must go first again: %d calls", len(sink.calls))
	}
	for k := 2; k < len(sink.calls); k++ {
		if sink.calls[k].Seq <= sink.calls[k-1].Seq {
			t.Fatalf("seq %d sent after %d", sink.calls[k].Seq, sink.calls[k-1].Seq)
		}
	}
}

// blockingWait is a Flusher.wait that waits only for ctx, as if the pace
// window were endless, and counts the waits under way.
type blockingWait struct {
	mu      sync.Mutex
	waiting int
}

func (w *blockingWait) wait(ctx context.Context, _ time.Duration) {
	w.mu.Lock()
	w.waiting++
	w.mu.Unlock()
	<-ctx.Done()
	w.mu.Lock()
	w.waiting--
	w.mu.Unlock()
}

func (w *blockingWait) blocked() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiting == 0 {
		return fmt.Errorf("no paced send is waiting")
	}
	return nil
}

func TestFlushHurriesPacedFlush(t *testing.T) {
	c := NewCounter(func(code []byte) uint64 { return uint64(code[0]) })
	sink := &recordingSink{}
	// Timeout: the paced flush's sends would never end on their own.
	f, err := NewFlusher(FlusherConfig{Router: "r1", Counter: c, Sink: sink, Interval: 10 * time.Millisecond, Timeout: time.Hour, MaxBatchDeltas: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	w := &blockingWait{}
	f.wait = w.wait
	want := recordMany(c, 300)
	f.Start()
	testutil.Eventually(t, 10*time.Second, "a paced send waiting", w.blocked)
	// The paced flush waits for its window, endlessly here: Flush must
	// make it send the rest at once, then flush itself.
	done := make(chan error, 1)
	go func() { done <- f.Flush(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Flush waited for the paced flush's window")
	}
	if got, total := sink.total(), want['a']+want['b']+want['c']; got != total {
		t.Fatalf("acknowledged %d clicks, want %d", got, total)
	}
}

func TestCloseStopsPacedFlush(t *testing.T) {
	c := NewCounter(func(code []byte) uint64 { return uint64(code[0]) })
	sink := &recordingSink{}
	f, err := NewFlusher(FlusherConfig{Router: "r1", Counter: c, Sink: sink, Interval: 10 * time.Millisecond, MaxBatchDeltas: 10})
	if err != nil {
		t.Fatal(err)
	}
	w := &blockingWait{}
	f.wait = w.wait
	want := recordMany(c, 300)
	f.Start()
	testutil.Eventually(t, 10*time.Second, "a paced send waiting", w.blocked)
	more := recordMany(c, 300)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var total uint64
	for _, m := range []map[uint64]uint64{want, more} {
		for _, n := range m {
			total += n
		}
	}
	if got := sink.total(); got != total {
		t.Fatalf("acknowledged %d clicks, want %d", got, total)
	}
	if st := f.Stats(); st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}
