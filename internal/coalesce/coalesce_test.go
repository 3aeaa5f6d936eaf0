package coalesce

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linkraft/linkraft/internal/testutil"
)

// dest is a fake destination: it answers item i with result i*10, counts
// the calls in flight (lone and batched) and every item it was sent, and
// can hold its calls until the test releases them.
type dest struct {
	gate chan struct{} // nil: calls return at once; else a call waits for a receive

	inflight, maxInflight atomic.Int64

	mu      sync.Mutex
	sent    map[int]int // item -> times sent
	batches [][]int     // the items of each Send, in call order
	failOn  int         // a Send whose items hold failOn fails; 0: none
}

var errSend = errors.New("send failed")

func newDest(gated bool) *dest {
	d := &dest{sent: map[int]int{}}
	if gated {
		d.gate = make(chan struct{})
	}
	return d
}

// enter counts a call in flight and waits for the gate.
func (d *dest) enter() {
	n := d.inflight.Add(1)
	for {
		m := d.maxInflight.Load()
		if n <= m || d.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	if d.gate != nil {
		<-d.gate
	}
}

func (d *dest) leave() { d.inflight.Add(-1) }

// lone is a lone call of item.
func (d *dest) lone(item int) (int, error) {
	d.enter()
	defer d.leave()
	d.mu.Lock()
	d.sent[item]++
	d.mu.Unlock()
	return item * 10, nil
}

// send is the batches' Send.
func (d *dest) send(_ context.Context, _ time.Time, items []int) ([]int, error) {
	d.enter()
	defer d.leave()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.batches = append(d.batches, slices.Clone(items))
	if d.failOn != 0 && slices.Contains(items, d.failOn) {
		return nil, errSend
	}
	out := make([]int, len(items))
	for i, it := range items {
		d.sent[it]++
		out[i] = it * 10
	}
	return out, nil
}

func (d *dest) batchSizes() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	var sizes []int
	for _, b := range d.batches {
		sizes = append(sizes, len(b))
	}
	return sizes
}

func newBatcher(d *dest, inflight, maxItems int) *Batcher[int, int] {
	return New(Config[int, int]{InFlight: inflight, MaxItems: maxItems, Send: d.send})
}

// do is a caller's whole path: alone when TryAcquire lets it, else Join.
func do(ctx context.Context, b *Batcher[int, int], d *dest, item int) (int, error) {
	if b.TryAcquire() {
		defer b.Release()
		return d.lone(item)
	}
	return b.Join(ctx, time.Time{}, item)
}

type outcome struct {
	item, got int
	err       error
}

// start runs do for each item in its own goroutine.
func start(b *Batcher[int, int], d *dest, items ...int) chan outcome {
	out := make(chan outcome, len(items))
	for _, it := range items {
		go func() {
			got, err := do(context.Background(), b, d, it)
			out <- outcome{it, got, err}
		}()
	}
	return out
}

// holdSlots takes every slot of b with a lone call held by d's gate.
func holdSlots(t *testing.T, b *Batcher[int, int], d *dest, k int) chan outcome {
	t.Helper()
	items := make([]int, k)
	for i := range items {
		items[i] = 1000 + i
	}
	out := start(b, d, items...)
	waitStats(t, b, "every slot taken by a lone call", func(st Stats) bool {
		return st.InFlight == k && d.inflight.Load() == int64(k)
	})
	return out
}

// waitStats waits until cond holds for b's Stats.
func waitStats(t *testing.T, b *Batcher[int, int], what string, cond func(Stats) bool) {
	t.Helper()
	testutil.EventuallyEvery(t, time.Millisecond, 10*time.Second, what, func() error {
		if st := b.Stats(); !cond(st) {
			return fmt.Errorf("stats %+v", st)
		}
		return nil
	})
}

// collect receives n outcomes and checks each is its own item's result.
func collect(t *testing.T, out chan outcome, n int) {
	t.Helper()
	for range n {
		o := <-out
		if o.err != nil || o.got != o.item*10 {
			t.Fatalf("item %d: got %d, %v; want %d", o.item, o.got, o.err, o.item*10)
		}
	}
}

// TestEveryItemItsOwnResult is the property test: under random
// concurrency and bounds, every item is sent exactly once, its caller gets
// exactly its own result, and no more than InFlight calls run at once.
func TestEveryItemItsOwnResult(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		k, maxItems := 1+rng.IntN(4), 1+rng.IntN(6)
		callers, each := 2+rng.IntN(30), 1+rng.IntN(40)
		t.Run(fmt.Sprintf("seed%d_k%d_max%d_c%d", seed, k, maxItems, callers), func(t *testing.T) {
			d := newDest(false)
			b := newBatcher(d, k, maxItems)
			out := make(chan outcome, callers*each)
			var wg sync.WaitGroup
			for c := range callers {
				wg.Go(func() {
					for i := range each {
						it := 1 + c*each + i
						got, err := do(context.Background(), b, d, it)
						out <- outcome{it, got, err}
					}
				})
			}
			wg.Wait()
			collect(t, out, callers*each)
			if m := d.maxInflight.Load(); m > int64(k) {
				t.Fatalf("%d calls in flight at once, want at most %d", m, k)
			}
			for it := 1; it <= callers*each; it++ {
				if n := d.sent[it]; n != 1 {
					t.Fatalf("item %d sent %d times, want once", it, n)
				}
			}
			for _, n := range d.batchSizes() {
				if n > maxItems {
					t.Fatalf("a batch of %d items, want at most %d", n, maxItems)
				}
			}
			if st := b.Stats(); st != (Stats{}) {
				t.Fatalf("stats %+v once every call returned, want zero", st)
			}
		})
	}
}

func TestLoneRequestGoesAloneAtOnce(t *testing.T) {
	d := newDest(false)
	b := newBatcher(d, 2, 8)
	for i := range 3 {
		if got, err := do(context.Background(), b, d, i+1); err != nil || got != (i+1)*10 {
			t.Fatalf("lone request %d: %d, %v", i+1, got, err)
		}
	}
	if sizes := d.batchSizes(); len(sizes) != 0 {
		t.Fatalf("batches %v on an idle destination, want none", sizes)
	}
	// A Join that finds a free slot (freed since its TryAcquire) goes at
	// once, as a batch of one.
	if got, err := b.Join(context.Background(), time.Time{}, 9); err != nil || got != 90 {
		t.Fatalf("join on an idle destination: %d, %v", got, err)
	}
	if sizes := d.batchSizes(); !slices.Equal(sizes, []int{1}) {
		t.Fatalf("batches %v, want one of 1", sizes)
	}
}

func TestCoalescesWhileBusy(t *testing.T) {
	d := newDest(true)
	const k, n = 2, 5
	b := newBatcher(d, k, 16)
	slots := holdSlots(t, b, d, k)
	if b.TryAcquire() {
		t.Fatal("TryAcquire took a slot while every slot was taken")
	}
	waiting := start(b, d, 1, 2, 3, 4, 5)
	waitStats(t, b, "5 items in one waiting batch", func(st Stats) bool { return st.Batches == 1 && st.Items == n })
	close(d.gate)
	collect(t, slots, k)
	collect(t, waiting, n)
	if sizes := d.batchSizes(); !slices.Equal(sizes, []int{n}) {
		t.Fatalf("batches %v, want one of %d", sizes, n)
	}
}

// sendSevenInThrees queues items 1 to 7 behind d's one slot, in batches
// of at most 3, then opens d's gate; it returns the items' outcomes.
func sendSevenInThrees(t *testing.T, d *dest) chan outcome {
	t.Helper()
	b := newBatcher(d, 1, 3)
	slots := holdSlots(t, b, d, 1)
	waiting := start(b, d, 1, 2, 3, 4, 5, 6, 7)
	waitStats(t, b, "7 items in 3 batches", func(st Stats) bool { return st.Batches == 3 && st.Items == 7 })
	close(d.gate)
	collect(t, slots, 1)
	return waiting
}

func TestBatchesAreBoundedByItems(t *testing.T) {
	d := newDest(true)
	waiting := sendSevenInThrees(t, d)
	collect(t, waiting, 7)
	sizes := d.batchSizes()
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{1, 3, 3}) {
		t.Fatalf("batch sizes %v, want 1, 3, 3", sizes)
	}
}

func TestBatchesAreBoundedByBytes(t *testing.T) {
	d := newDest(true)
	b := New(Config[int, int]{InFlight: 1, MaxItems: 100, MaxBytes: 10, Size: func(it int) int { return it }, Send: d.send})
	slots := holdSlots(t, b, d, 1)
	// One at a time, so that the batches fill in a known order: 4+5 fit
	// 10, 6 does not and opens the next; 3 joins it (9); 20 is larger
	// than MaxBytes alone and goes in a batch of its own; 1 follows it.
	var waiting []chan outcome
	for i, it := range []int{4, 5, 6, 3, 20, 1} {
		waiting = append(waiting, start(b, d, it))
		waitStats(t, b, fmt.Sprintf("%d items waiting", i+1), func(st Stats) bool { return st.Items == i+1 })
	}
	close(d.gate)
	collect(t, slots, 1)
	for _, w := range waiting {
		collect(t, w, 1)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	want := [][]int{{4, 5}, {6, 3}, {20}, {1}}
	if len(d.batches) != len(want) {
		t.Fatalf("batches %v, want %v", d.batches, want)
	}
	for i := range want {
		if !slices.Equal(d.batches[i], want[i]) {
			t.Fatalf("batches %v, want %v", d.batches, want)
		}
	}
}

// joinCancelable joins item in its own goroutine, with a context that
// cancel ends; the Join's error comes on the channel.
func joinCancelable(b *Batcher[int, int], item int) (<-chan error, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := b.Join(ctx, time.Time{}, item)
		errc <- err
	}()
	return errc, cancel
}

func TestWaiterCanceled(t *testing.T) {
	d := newDest(true)
	b := newBatcher(d, 1, 8)
	slots := holdSlots(t, b, d, 1)
	sender := start(b, d, 1)
	waitStats(t, b, "the sender waiting", func(st Stats) bool { return st.Items == 1 })
	canceled, cancel := joinCancelable(b, 2)
	waitStats(t, b, "the waiter in the sender's batch", func(st Stats) bool { return st.Items == 2 })
	cancel()
	if err := <-canceled; !errors.Is(err, ErrGaveUp) || !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled waiter: err %v, want ErrGaveUp and context.Canceled", err)
	}
	// The batch still goes, and its sender gets its own result.
	close(d.gate)
	collect(t, slots, 1)
	collect(t, sender, 1)
}

func TestSenderCanceledFailsItsBatch(t *testing.T) {
	d := newDest(true)
	const k = 2
	b := newBatcher(d, k, 8)
	slots := holdSlots(t, b, d, k)
	senderErr, cancel := joinCancelable(b, 1)
	waitStats(t, b, "the sender waiting", func(st Stats) bool { return st.Items == 1 })
	waiting := start(b, d, 2, 3)
	waitStats(t, b, "3 items in the batch", func(st Stats) bool { return st.Items == 3 })
	cancel()
	if err := <-senderErr; !errors.Is(err, ErrGaveUp) || !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled sender: err %v, want ErrGaveUp and context.Canceled", err)
	}
	for range 2 {
		if o := <-waiting; !errors.Is(o.err, context.Canceled) {
			t.Fatalf("item %d of the canceled batch: %d, %v; want its sender's error", o.item, o.got, o.err)
		}
	}
	if st := b.Stats(); st.Batches != 0 || st.InFlight != k {
		t.Fatalf("stats %+v after the batch gave up, want no batch and %d slots taken", st, k)
	}
	close(d.gate)
	collect(t, slots, k)
	// The slots are free again: the next request goes alone.
	if !b.TryAcquire() {
		t.Fatal("no free slot once the calls returned")
	}
	b.Release()
	if sizes := d.batchSizes(); len(sizes) != 0 {
		t.Fatalf("batches %v sent, want none", sizes)
	}
}

func TestSenderDeadline(t *testing.T) {
	d := newDest(true)
	b := newBatcher(d, 1, 8)
	slots := holdSlots(t, b, d, 1)
	_, err := b.Join(context.Background(), time.Now().Add(-time.Second), 1)
	if !errors.Is(err, ErrGaveUp) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("sender past its deadline: err %v, want ErrGaveUp and DeadlineExceeded", err)
	}
	if st := b.Stats(); st != (Stats{InFlight: 1}) {
		t.Fatalf("stats %+v, want only the lone call's slot", st)
	}
	close(d.gate)
	collect(t, slots, 1)
}

func TestFailingSendFailsExactlyItsBatch(t *testing.T) {
	d := newDest(true)
	d.failOn = 4
	waiting := sendSevenInThrees(t, d)
	got := map[int]error{}
	for range 7 {
		o := <-waiting
		if o.err == nil && o.got != o.item*10 {
			t.Fatalf("item %d: got %d, want %d", o.item, o.got, o.item*10)
		}
		got[o.item] = o.err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var failed []int
	for _, bt := range d.batches {
		if slices.Contains(bt, 4) {
			failed = bt
		}
	}
	for it, err := range got {
		if want := slices.Contains(failed, it); want != errors.Is(err, errSend) {
			t.Fatalf("item %d: err %v; its batch failed: %v (failed batch %v)", it, err, want, failed)
		}
	}
}

func TestShortResultsFailTheBatch(t *testing.T) {
	b := New(Config[int, int]{InFlight: 1, MaxItems: 4, Send: func(context.Context, time.Time, []int) ([]int, error) {
		return nil, nil
	}})
	if _, err := b.Join(context.Background(), time.Time{}, 1); err == nil {
		t.Fatal("a send with no results: no error")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	send := func(context.Context, time.Time, []int) ([]int, error) { return nil, nil }
	for name, cfg := range map[string]Config[int, int]{
		"no slots":           {MaxItems: 1, Send: send},
		"no items":           {InFlight: 1, Send: send},
		"negative bytes":     {InFlight: 1, MaxItems: 1, MaxBytes: -1, Send: send},
		"bytes without size": {InFlight: 1, MaxItems: 1, MaxBytes: 10, Send: send},
		"no send":            {InFlight: 1, MaxItems: 1},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: New did not panic", name)
				}
			}()
			New(cfg)
		}()
	}
}

// BenchmarkBatcher measures the mechanism's own cost per request, with
// calls that do nothing but yield the processor: "idle" is one caller
// (every request alone: a slot taken and given back), "busy" 32 callers
// per CPU on one slot (most requests batched; items/send is the mean
// batch).
func BenchmarkBatcher(b *testing.B) {
	var sends atomic.Int64
	send := func(_ context.Context, _ time.Time, items []int) ([]int, error) {
		sends.Add(1)
		runtime.Gosched()
		return make([]int, len(items)), nil
	}
	b.Run("idle", func(b *testing.B) {
		q := New(Config[int, int]{InFlight: 1, MaxItems: 64, Send: send})
		b.ReportAllocs()
		for b.Loop() {
			if !q.TryAcquire() {
				b.Fatal("no free slot on an idle destination")
			}
			q.Release()
		}
	})
	b.Run("busy", func(b *testing.B) {
		q := New(Config[int, int]{InFlight: 1, MaxItems: 64, Send: send})
		var joined atomic.Int64
		sends.Store(0)
		b.ReportAllocs()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if q.TryAcquire() {
					runtime.Gosched()
					q.Release()
					continue
				}
				joined.Add(1)
				if _, err := q.Join(context.Background(), time.Time{}, i); err != nil {
					b.Error(err)
					return
				}
			}
		})
		if n := sends.Load(); n > 0 {
			b.ReportMetric(float64(joined.Load())/float64(n), "items/send")
		}
	})
}
