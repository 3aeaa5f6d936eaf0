package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/internal/testutil"
	"github.com/linkraft/linkraft/node/nodetest"
	"github.com/linkraft/linkraft/shardrpc"
)

// gatedShards is a ShardClient and BulkClient whose calls block until the
// test releases them, so that a test can hold a shard's RPC slots busy and
// watch creates pile up into one batch.
type gatedShards struct {
	ShardClient // unused methods: nil, a call panics

	release chan struct{} // a call returns when it receives from here
	entered chan string   // each call sends "create" or "bulk:N" on entry

	mu       sync.Mutex
	bulkErr  error           // a whole-call error for every bulk create
	itemErr  map[string]bool // URLs the shard refuses with alias_taken
	bulkReqs [][]shardrpc.CreateRequest
}

func newGatedShards() *gatedShards {
	return &gatedShards{release: make(chan struct{}), entered: make(chan string, 1024), itemErr: map[string]bool{}}
}

func (g *gatedShards) link(req shardrpc.CreateRequest) shardrpc.Link {
	return shardrpc.Link{Code: "c-" + req.RequestID, URL: req.URL, Created: true}
}

func (g *gatedShards) Create(ctx context.Context, _ uint64, req shardrpc.CreateRequest) (shardrpc.Link, error) {
	g.entered <- "create"
	select {
	case <-g.release:
	case <-ctx.Done():
		return shardrpc.Link{}, ctx.Err()
	}
	if g.itemErr[req.URL] {
		return shardrpc.Link{}, fmt.Errorf("create: %w", &shardrpc.RemoteError{Node: "n1", Status: 409, Body: shardrpc.ErrorBody{Code: shardrpc.ErrCodeAliasTaken, Message: "taken"}})
	}
	return g.link(req), nil
}

func (g *gatedShards) BulkCreate(ctx context.Context, _ uint64, items []shardrpc.CreateRequest) ([]shardrpc.BulkItemResult, error) {
	g.mu.Lock()
	g.bulkReqs = append(g.bulkReqs, append([]shardrpc.CreateRequest(nil), items...))
	err := g.bulkErr
	g.mu.Unlock()
	g.entered <- fmt.Sprintf("bulk:%d", len(items))
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	out := make([]shardrpc.BulkItemResult, len(items))
	for i, it := range items {
		if g.itemErr[it.URL] {
			out[i].Error = &shardrpc.ErrorBody{Code: shardrpc.ErrCodeAliasTaken, Message: "taken"}
			continue
		}
		l := g.link(it)
		out[i].Link = &l
	}
	return out, nil
}

// waitPending waits until n creates wait in shard's batches.
func waitPending(t *testing.T, b *createBatcher, shard uint64, n int) {
	t.Helper()
	testutil.EventuallyEvery(t, time.Millisecond, 10*time.Second, fmt.Sprintf("%d creates waiting in shard %d's batch", n, shard), func() error {
		if got := b.pendingLen(shard); got != n {
			return fmt.Errorf("%d waiting", got)
		}
		return nil
	})
}

// pendingLen returns how many creates wait in shard's batches.
func (b *createBatcher) pendingLen(shard uint64) int {
	return b.shard(shard).Stats().Items
}

type createOutcome struct {
	req  shardrpc.CreateRequest
	link shardrpc.Link
	err  error
}

// fillSlots starts createInflight creates on shard that block in the fake,
// so that the next creates must wait; it returns their outcomes' channel.
func fillSlots(t *testing.T, b *createBatcher, g *gatedShards, shard uint64) chan createOutcome {
	t.Helper()
	out := make(chan createOutcome, createInflight)
	for i := range createInflight {
		req := shardrpc.CreateRequest{URL: fmt.Sprintf("https://slot.example/%d", i), RequestID: fmt.Sprintf("slot%d", i)}
		go func() {
			l, err := b.create(context.Background(), shard, req)
			out <- createOutcome{req, l, err}
		}()
		if got := <-g.entered; got != "create" {
			t.Fatalf("a create on an idle shard entered %q, want a lone create", got)
		}
	}
	return out
}

// startCreates starts n creates on shard (req(i) each) and waits until
// all of them wait in the shard's batches.
func startCreates(t *testing.T, b *createBatcher, shard uint64, n int, req func(int) shardrpc.CreateRequest) chan createOutcome {
	t.Helper()
	out := make(chan createOutcome, n)
	for i := range n {
		req := req(i)
		go func() {
			l, err := b.create(context.Background(), shard, req)
			out <- createOutcome{req, l, err}
		}()
	}
	waitPending(t, b, shard, n)
	return out
}

// releaseAll lets every call of g return and checks that the creates
// holding the slots and the n waiting ones each got their own link.
func releaseAll(t *testing.T, g *gatedShards, slots, waiting chan createOutcome, n int) {
	t.Helper()
	close(g.release)
	for range createInflight {
		if o := <-slots; o.err != nil {
			t.Fatal(o.err)
		}
	}
	for range n {
		if o := <-waiting; o.err != nil || o.link.Code != "c-"+o.req.RequestID {
			t.Fatalf("create %s: %+v, %v", o.req.RequestID, o.link, o.err)
		}
	}
}

func TestCreateBatcherCoalescesWhileBusy(t *testing.T) {
	g := newGatedShards()
	g.itemErr["https://taken.example/"] = true
	b := newCreateBatcher(g)
	const shard, n = 2, 40
	slots := fillSlots(t, b, g, shard)
	waiting := startCreates(t, b, shard, n, func(i int) shardrpc.CreateRequest {
		url := fmt.Sprintf("https://x.example/%d", i)
		if i == 7 {
			url = "https://taken.example/"
		}
		return shardrpc.CreateRequest{URL: url, RequestID: fmt.Sprintf("r%d", i)}
	})

	close(g.release) // every call returns from here on
	for range createInflight {
		o := <-slots
		if o.err != nil || o.link.Code != "c-"+o.req.RequestID {
			t.Fatalf("slot create %s: %+v, %v", o.req.RequestID, o.link, o.err)
		}
	}
	if got := <-g.entered; got != fmt.Sprintf("bulk:%d", n) {
		t.Fatalf("the waiting creates were sent as %q, want one bulk:%d", got, n)
	}
	for range n {
		o := <-waiting
		if o.req.URL == "https://taken.example/" {
			if !errors.Is(o.err, shardrpc.ErrAliasTaken) {
				t.Fatalf("refused item: err %v, want ErrAliasTaken", o.err)
			}
			continue
		}
		if o.err != nil || o.link.Code != "c-"+o.req.RequestID || o.link.URL != o.req.URL {
			t.Fatalf("create %s: got %+v, %v; want its own link", o.req.RequestID, o.link, o.err)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.bulkReqs) != 1 {
		t.Fatalf("%d bulk creates, want 1", len(g.bulkReqs))
	}
	seen := map[string]bool{}
	for _, it := range g.bulkReqs[0] {
		if it.RequestID == "" || seen[it.RequestID] {
			t.Fatalf("bulk item request ID %q empty or repeated: each item keeps its own", it.RequestID)
		}
		seen[it.RequestID] = true
	}
}

func TestCreateBatcherSplitsFullBatches(t *testing.T) {
	g := newGatedShards()
	b := newCreateBatcher(g)
	const shard = 1
	n := maxCreateBatch + 3
	slots := fillSlots(t, b, g, shard)
	// The first maxCreateBatch seal a full batch; the rest wait in the next.
	out := startCreates(t, b, shard, n, func(i int) shardrpc.CreateRequest {
		return shardrpc.CreateRequest{URL: fmt.Sprintf("https://x.example/%d", i), RequestID: fmt.Sprintf("r%d", i)}
	})
	releaseAll(t, g, slots, out, n)
	g.mu.Lock()
	defer g.mu.Unlock()
	sizes := map[int]int{}
	for _, r := range g.bulkReqs {
		sizes[len(r)]++
	}
	if len(g.bulkReqs) != 2 || sizes[maxCreateBatch] != 1 || sizes[3] != 1 {
		t.Fatalf("bulk sizes %v, want one of %d and one of 3", sizes, maxCreateBatch)
	}
}

func TestCreateBatcherBoundsBatchBytes(t *testing.T) {
	g := newGatedShards()
	b := newCreateBatcher(g)
	const shard = 1
	// Escaped 6 bytes each in the worst case; every item has big's size.
	title := strings.Repeat("<", 7000)
	big := shardrpc.CreateRequest{Title: title, URL: "https://x.example/000", RequestID: "r000"}
	perBatch := maxCreateBatchBytes / itemBytes(&big)
	if perBatch >= maxCreateBatch {
		t.Fatalf("the test's items are too small: %d fit a batch", perBatch)
	}
	n := perBatch + 2
	slots := fillSlots(t, b, g, shard)
	// The first perBatch fill a batch; the next seals it and opens another.
	out := startCreates(t, b, shard, n, func(i int) shardrpc.CreateRequest {
		return shardrpc.CreateRequest{Title: title, URL: fmt.Sprintf("https://x.example/%03d", i), RequestID: fmt.Sprintf("r%03d", i)}
	})
	releaseAll(t, g, slots, out, n)
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.bulkReqs) != 2 || len(g.bulkReqs[0])+len(g.bulkReqs[1]) != n {
		t.Fatalf("%d bulk creates, want 2 carrying %d items", len(g.bulkReqs), n)
	}
	for _, r := range g.bulkReqs {
		body, err := json.Marshal(shardrpc.BulkCreateRequest{Items: r})
		if err != nil {
			t.Fatal(err)
		}
		if len(body) > maxCreateBatchBytes {
			t.Fatalf("a bulk create of %d bytes, want at most %d", len(body), maxCreateBatchBytes)
		}
	}
}

func TestCreateBatcherWholeCallError(t *testing.T) {
	g := newGatedShards()
	g.bulkErr = fmt.Errorf("bulk create: %w", shardrpc.ErrUnavailable)
	b := newCreateBatcher(g)
	const shard = 3
	slots := fillSlots(t, b, g, shard)
	waiting := startCreates(t, b, shard, 5, func(i int) shardrpc.CreateRequest {
		return shardrpc.CreateRequest{URL: fmt.Sprintf("https://x.example/%d", i), RequestID: fmt.Sprintf("r%d", i)}
	})
	close(g.release)
	for range createInflight {
		<-slots
	}
	for range 5 {
		if o := <-waiting; !errors.Is(o.err, shardrpc.ErrUnavailable) {
			t.Fatalf("create %s: err %v, want the bulk call's ErrUnavailable", o.req.RequestID, o.err)
		}
	}
}

func TestCreateBatcherCanceledWhileWaiting(t *testing.T) {
	g := newGatedShards()
	b := newCreateBatcher(g)
	const shard = 1
	slots := fillSlots(t, b, g, shard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := b.create(ctx, shard, shardrpc.CreateRequest{URL: "https://x.example/", RequestID: "r"})
		done <- err
	}()
	waitPending(t, b, shard, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled create: err %v, want context.Canceled", err)
	}
	if n := b.pendingLen(shard); n != 0 {
		t.Fatalf("%d creates still pending after the sender gave up", n)
	}
	close(g.release)
	for range createInflight {
		<-slots
	}
	// The slots are free again: the next create goes alone.
	l, err := b.create(context.Background(), shard, shardrpc.CreateRequest{URL: "https://y.example/", RequestID: "y"})
	if err != nil || l.Code != "c-y" {
		t.Fatalf("create after the slots freed: %+v, %v", l, err)
	}
	if got := <-g.entered; got != "create" {
		t.Fatalf("create on a free shard entered %q, want a lone create", got)
	}
}

func TestCreateBatcherWithoutBulkClient(t *testing.T) {
	rg, err := testConfig(t, 0).Ring()
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeShards(rg)
	b := newCreateBatcher(f)
	if b.bulk != nil {
		t.Fatal("fakeShards is not a BulkClient")
	}
	if _, err := b.create(context.Background(), rg.ShardOf(0), shardrpc.CreateRequest{Partition: 0, URL: "https://x.example/"}); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.counts(); c != 1 {
		t.Fatalf("%d creates reached the shard client, want 1", c)
	}
}

// BenchmarkCreateCluster drives POST /api/v1/links through the router's
// handler, 64 creates in flight per CPU, against a real single-node shard
// (nodetest: an in-process node over loopback RPC, Raft and Pebble). The
// sub-benchmarks compare the creates sent alone, one RPC each (the router
// before the batcher), with coalesced ones; cpu-us/op is the process's
// CPU (router, client and node together) per create.
func BenchmarkCreateCluster(b *testing.B) {
	b.Cleanup(func() { waitWorkerCleaners(b) })
	c := nodetest.Start(b, nodetest.Options{Nodes: 1, Shards: 1, Routers: 1, Partitions: 64})
	c.WaitLeader(1)
	cfg := c.Config()
	client := shardrpc.NewClient(cfg, shardrpc.ClientOptions{IdleConnTimeout: time.Second})
	defer client.Close()
	for _, mode := range []string{"alone", "coalesced"} {
		b.Run(mode, func(b *testing.B) {
			r, err := New(cfg, cfg.Routers[0].ID, client, Options{Logger: testLogger(b), DisableClicks: true})
			if err != nil {
				b.Fatal(err)
			}
			if mode == "alone" {
				r.creates.bulk = nil
			}
			var seq atomic.Int64
			b.SetParallelism(64)
			b.ReportAllocs()
			cpu0 := processCPU(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				for pb.Next() {
					ctx.Request.Reset()
					ctx.Response.Reset()
					ctx.Request.Header.SetMethod(fasthttp.MethodPost)
					ctx.Request.SetRequestURI("/api/v1/links")
					ctx.Request.Header.SetContentType("application/json")
					ctx.Request.SetBodyString(`{"url": "https://example.com/bench/` + strconv.FormatInt(seq.Add(1), 10) + `"}`)
					r.handle(&ctx)
					if ctx.Response.StatusCode() != fasthttp.StatusCreated {
						b.Errorf("create: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
		})
	}
}

// processCPU returns the CPU time (user and system) of this process.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
