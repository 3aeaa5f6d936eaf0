// Package coalesce merges the requests that wait for one busy destination
// into batches, each sent as one call.
//
// A Batcher stands for one destination (a shard, say). It lets at most
// Config.InFlight calls to it run at once, and never holds a request back
// on a timer:
//
//   - a request that finds a free slot and no batch waiting goes at once,
//     alone: its caller takes the slot with TryAcquire, makes its own
//     single call, and gives the slot back with Release, so an idle or
//     lightly loaded destination adds no wait and no batching;
//   - otherwise the request joins the newest waiting batch (Join), or opens
//     a new one, as that batch's sender, when there is none or the newest
//     is full (Config.MaxItems items, or Config.MaxBytes of them);
//   - when a slot frees it is handed straight to the oldest waiting batch
//     that has none, whose sender then makes one call (Config.Send) with
//     all its items, and each item's caller gets its own result from it.
//
// A batch thus only grows while the destination is busy anyway; it takes
// items until its sender runs with the slot, not only until the slot is
// handed over, so the requests that arrive while the sender wakes up
// still share its call. Its sender
// waits for a slot at most until its own context ends or its deadline
// passes; then the whole batch fails with ErrGaveUp, and leaves the queue.
// A failing Send fails exactly the callers of its batch.
package coalesce

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// ErrGaveUp is the error of a Join that stopped waiting: its context ended
// (or, for a batch's sender, its deadline passed) before its batch got a
// slot or, for the batch's other callers, before the batch's answer came.
// It is wrapped together with the context's error.
var ErrGaveUp = errors.New("coalesce: gave up waiting")

// SendFunc sends one batch of items as one call and returns one result per
// item, in the order of items; or an error, which every caller of the batch
// gets. ctx and deadline are those of the batch's sender (the Join that
// opened it). items is never empty; the SendFunc must not keep it.
type SendFunc[T, R any] func(ctx context.Context, deadline time.Time, items []T) ([]R, error)

// Config sets a Batcher's bounds and its call.
type Config[T, R any] struct {
	// InFlight bounds the calls in flight to the destination, lone ones
	// (TryAcquire) and batches together. At least 1.
	InFlight int
	// MaxItems bounds the items of one batch. At least 1.
	MaxItems int
	// MaxBytes, when positive, bounds the sum of Size over the items of a
	// batch: an item that would take a batch past it opens the next batch
	// instead. An item larger than MaxBytes by itself goes in a batch of
	// its own. Zero: batches are bounded by MaxItems only.
	MaxBytes int
	// Size is an item's share of MaxBytes. Needed when MaxBytes is set.
	Size func(T) int
	// Send sends one batch. Required.
	Send SendFunc[T, R]
}

// Batcher coalesces the requests to one destination. Create it with New;
// it is safe for concurrent use.
type Batcher[T, R any] struct {
	cfg Config[T, R]

	mu       sync.Mutex
	inflight int            // slots taken, at most cfg.InFlight
	waiting  []*batch[T, R] // oldest first; non-empty only while every slot is taken
	handed   int            // the first handed batches of waiting have a slot; their senders have yet to run
}

// batch is one call being filled or sent. items and bytes are guarded by
// Batcher.mu while the batch is in waiting, and only the sender reads them
// after it took the batch out; results and err are written by the sender
// before done closes.
type batch[T, R any] struct {
	items   []T
	bytes   int // the sum of Size over items
	results []R
	err     error
	start   chan struct{} // closed when a slot is the batch's
	done    chan struct{} // closed when results or err are set
}

// New returns a Batcher with cfg, which must be valid: it panics on
// bounds below 1, a missing Send, or MaxBytes without Size, all of which
// are programming errors.
func New[T, R any](cfg Config[T, R]) *Batcher[T, R] {
	switch {
	case cfg.InFlight < 1:
		panic(fmt.Sprintf("coalesce: InFlight %d, want at least 1", cfg.InFlight))
	case cfg.MaxItems < 1:
		panic(fmt.Sprintf("coalesce: MaxItems %d, want at least 1", cfg.MaxItems))
	case cfg.MaxBytes < 0:
		panic(fmt.Sprintf("coalesce: MaxBytes %d, want 0 or more", cfg.MaxBytes))
	case cfg.MaxBytes > 0 && cfg.Size == nil:
		panic("coalesce: MaxBytes set without Size")
	case cfg.Send == nil:
		panic("coalesce: no Send")
	}
	return &Batcher[T, R]{cfg: cfg}
}

// TryAcquire takes a slot for a lone call, and reports whether it did: it
// does when a slot is free and no batch waits (a batch would be first in
// line for it). After true the caller makes its call and then calls
// Release; after false it should Join.
func (b *Batcher[T, R]) TryAcquire() bool {
	b.mu.Lock()
	ok := len(b.waiting) == 0 && b.inflight < b.cfg.InFlight
	if ok {
		b.inflight++
	}
	b.mu.Unlock()
	return ok
}

// Release gives back a slot taken by a TryAcquire that returned true,
// handing it straight to the oldest waiting batch without one when there
// is one.
func (b *Batcher[T, R]) Release() {
	b.mu.Lock()
	if b.handed < len(b.waiting) {
		bt := b.waiting[b.handed]
		b.handed++
		b.mu.Unlock()
		close(bt.start) // the slot is the batch's now: inflight is unchanged
		return
	}
	b.inflight--
	b.mu.Unlock()
}

// Join sends item as one item of a batch and returns its own result, or
// the error of its batch's call, or an ErrGaveUp.
//
// A Join that opens a batch is its sender: it waits for a slot at most
// until ctx ends or deadline passes (the zero deadline: until ctx ends),
// then calls Send with its ctx and deadline; giving up fails the whole
// batch. A Join that joins a batch waits for the batch's answer at most
// until ctx ends; its item may still be sent after it gave up.
func (b *Batcher[T, R]) Join(ctx context.Context, deadline time.Time, item T) (R, error) {
	size := 0
	if b.cfg.MaxBytes > 0 {
		size = b.cfg.Size(item)
	}
	b.mu.Lock()
	var bt *batch[T, R]
	if k := len(b.waiting); k > 0 && b.fits(b.waiting[k-1], size) {
		bt = b.waiting[k-1]
	}
	sender := bt == nil
	if sender {
		bt = &batch[T, R]{start: make(chan struct{}), done: make(chan struct{})}
		if len(b.waiting) == 0 && b.inflight < b.cfg.InFlight {
			// A slot freed since the caller's TryAcquire: the batch
			// takes it and goes now.
			b.inflight++
			b.handed++
			close(bt.start)
		}
		b.waiting = append(b.waiting, bt)
	}
	idx := len(bt.items)
	bt.items = append(bt.items, item)
	bt.bytes += size
	b.mu.Unlock()

	if sender {
		b.send(ctx, deadline, bt)
	} else {
		select {
		case <-bt.done:
		case <-ctx.Done():
			var zero R
			return zero, fmt.Errorf("%w for its batch's answer: %w", ErrGaveUp, ctx.Err())
		}
	}
	if bt.err != nil {
		var zero R
		return zero, bt.err
	}
	return bt.results[idx], nil
}

// fits reports whether an item of size may join bt. b.mu is held.
func (b *Batcher[T, R]) fits(bt *batch[T, R], size int) bool {
	if len(bt.items) >= b.cfg.MaxItems {
		return false
	}
	return b.cfg.MaxBytes == 0 || bt.bytes+size <= b.cfg.MaxBytes
}

// send waits for a slot for bt (see Join), makes its call, records the
// outcome and wakes its other callers.
func (b *Batcher[T, R]) send(ctx context.Context, deadline time.Time, bt *batch[T, R]) {
	defer close(bt.done)
	if err := b.awaitSlot(ctx, deadline, bt); err != nil {
		bt.err = err
		return
	}
	defer b.Release()
	b.mu.Lock()
	b.remove(bt) // sealed: its items are final
	b.handed--
	b.mu.Unlock()
	results, err := b.cfg.Send(ctx, deadline, bt.items)
	if err == nil && len(results) != len(bt.items) {
		err = fmt.Errorf("coalesce: a send returned %d results for %d items", len(results), len(bt.items))
	}
	bt.results, bt.err = results, err
}

// awaitSlot waits until a slot is handed to bt, or ctx ends or deadline
// passes: then bt leaves the queue (or gives back the slot it was handed
// meanwhile) and awaitSlot returns the ErrGaveUp to fail it with.
func (b *Batcher[T, R]) awaitSlot(ctx context.Context, deadline time.Time, bt *batch[T, R]) error {
	select {
	case <-bt.start:
		return nil
	default:
	}
	var expired <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expired = t.C
	}
	var cause error
	select {
	case <-bt.start:
		return nil
	case <-ctx.Done():
		cause = ctx.Err()
	case <-expired:
		cause = context.DeadlineExceeded
	}
	err := fmt.Errorf("%w for a free slot: %w", ErrGaveUp, cause)
	b.mu.Lock()
	handed := b.remove(bt) < b.handed
	if handed {
		b.handed--
	}
	b.mu.Unlock()
	if handed {
		// Handed a slot as the wait ended: pass it on.
		b.Release()
	}
	return err
}

// remove takes bt out of waiting and returns the index it had. b.mu is
// held.
func (b *Batcher[T, R]) remove(bt *batch[T, R]) int {
	i := slices.Index(b.waiting, bt)
	b.waiting = slices.Delete(b.waiting, i, i+1)
	return i
}

// Stats is a snapshot of a Batcher's queue.
type Stats struct {
	// InFlight is the number of slots taken: calls in flight, and batches
	// handed a slot that are about to send.
	InFlight int
	// Batches and Items count the batches waiting to be sent (for a
	// slot, or for their sender to run with one), and their items.
	Batches, Items int
}

// Stats returns a snapshot of b's queue.
func (b *Batcher[T, R]) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := Stats{InFlight: b.inflight, Batches: len(b.waiting)}
	for _, bt := range b.waiting {
		st.Items += len(bt.items)
	}
	return st
}
