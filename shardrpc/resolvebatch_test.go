package shardrpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/internal/testutil"
	"github.com/linkraft/linkraft/linkstore"
)

// heldCode is the code whose requests a fakeDoer holds while told to.
const heldCode = "held000"

// fakeDoer is a node's resolve transport in memory: it answers single and
// multi resolves from links (code -> URL; "gone:" URLs are tombstones),
// records each request, and holds the requests for heldCode while hold is
// set.
type fakeDoer struct {
	t     *testing.T
	node  string
	links map[string]string

	mu      sync.Mutex
	cond    *sync.Cond
	held    int  // requests being held now
	hold    bool // hold the requests for heldCode that arrive
	noMany  bool // answer the multi-resolve path 404, as an old node
	down    bool // refuse every request (a transport error)
	reqs    []fakeReq
	itemErr map[string]ErrorBody // per-code error answered in a multi-resolve
}

// fakeReq is one request a fakeDoer received: its path and codes.
type fakeReq struct {
	path  string
	codes []string
	lin   bool
}

func newFakeDoer(t *testing.T, node string, links map[string]string) *fakeDoer {
	d := &fakeDoer{t: t, node: node, links: links}
	d.cond = sync.NewCond(&d.mu)
	return d
}

// DoDeadline serves req as the node's resolve transport.
func (d *fakeDoer) DoDeadline(req *fasthttp.Request, resp *fasthttp.Response, _ time.Time) error {
	return d.serve(req, resp)
}

// serve answers req into resp; an error is a transport failure.
func (d *fakeDoer) serve(req *fasthttp.Request, resp *fasthttp.Response) error {
	path := string(req.URI().Path())
	body := append([]byte(nil), req.Body()...)
	d.mu.Lock()
	if d.down {
		d.mu.Unlock()
		return errors.New("connection refused")
	}
	r := fakeReq{path: path}
	switch path {
	case PathResolveBinary:
		code, lin, _, err := DecodeResolveRequest(body)
		if err != nil {
			d.t.Errorf("%s: single resolve %x: %v", d.node, body, err)
		}
		r.codes, r.lin = []string{string(code)}, lin
	case PathResolveMany:
		codes, err := DecodeResolveManyRequest(body, nil)
		if err != nil {
			d.t.Errorf("%s: multi-resolve %x: %v", d.node, body, err)
		}
		for _, c := range codes {
			r.codes = append(r.codes, string(c))
		}
	}
	d.reqs = append(d.reqs, r)
	if r.codes[0] == heldCode {
		d.held++
		d.cond.Broadcast()
		for d.hold {
			d.cond.Wait()
		}
		d.held--
	}
	noMany := d.noMany
	d.mu.Unlock()

	resp.Reset()
	switch {
	case path == PathResolveMany && noMany:
		resp.SetStatusCode(fasthttp.StatusNotFound)
		resp.SetBodyString(`{"code":"bad_request","message":"no RPC at \"/rpc/v2/resolve-many\""}`)
	case path == PathResolveMany:
		b := AppendResolveManyResponseHeader(nil, len(r.codes))
		for _, c := range r.codes {
			if e, ok := d.itemErrorOf(c); ok {
				b = AppendResolveManyError(b, e)
				continue
			}
			u, ok := d.links[c]
			switch {
			case !ok:
				b = AppendResolveManyError(b, ErrorBody{Code: ErrCodeMaybeStale, Message: "not here"})
			case strings.HasPrefix(u, "gone:"):
				b = AppendResolveManyError(b, ErrorBody{Code: ErrCodeGone, Message: "deleted"})
			default:
				rec := linkstore.AppendRecord(nil, linkstore.Record{Code: c, URL: u, CreatedAtMs: 1})
				b = AppendResolveManyRecordHeader(b, 9, len(rec))
				b = append(b, rec...)
			}
		}
		resp.SetStatusCode(fasthttp.StatusOK)
		resp.SetBody(b)
	default:
		c := r.codes[0]
		u, ok := d.links[c]
		switch {
		case !ok && r.lin:
			resp.SetStatusCode(fasthttp.StatusNotFound)
			resp.SetBodyString(`{"code":"not_found","message":"no link"}`)
		case !ok:
			resp.SetStatusCode(fasthttp.StatusNotFound)
			resp.SetBodyString(`{"code":"maybe_stale","message":"ask the leader"}`)
		case strings.HasPrefix(u, "gone:"):
			resp.SetStatusCode(fasthttp.StatusGone)
			resp.SetBodyString(`{"code":"gone","message":"deleted"}`)
		default:
			resp.SetStatusCode(fasthttp.StatusOK)
			resp.SetBody(linkstore.AppendRecord(AppendResolveResponseHeader(nil, ResolveWireVersion, 9), linkstore.Record{Code: c, URL: u, CreatedAtMs: 1}))
		}
	}
	return nil
}

func (d *fakeDoer) itemErrorOf(code string) (ErrorBody, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.itemErr[code]
	return e, ok
}

// setHold holds (true) or releases (false) the requests.
func (d *fakeDoer) setHold(on bool) {
	d.mu.Lock()
	d.hold = on
	d.cond.Broadcast()
	d.mu.Unlock()
}

func (d *fakeDoer) requests() []fakeReq {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.reqs)
}

func (d *fakeDoer) heldNow() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.held
}

// newDoerClient returns a client of one shard (7) on nodes n1..nN whose
// resolves go to the fake doers (the other calls have no node to reach).
func newDoerClient(t *testing.T, doers ...*fakeDoer) *Client {
	t.Helper()
	cfg := &config.Config{}
	shard := config.Shard{ID: 7}
	for i, d := range doers {
		id := fmt.Sprintf("n%d", i+1)
		d.node = id
		cfg.Nodes = append(cfg.Nodes, config.Node{ID: id, RPCAddr: fmt.Sprintf("127.0.0.1:%d", 1+i), RaftAddr: "127.0.0.1:1"})
		shard.Replicas = append(shard.Replicas, id)
	}
	cfg.Shards = []config.Shard{shard}
	c := NewClient(cfg, ClientOptions{ResolveConns: -1, Timeout: 10 * time.Second, IdleConnTimeout: 100 * time.Millisecond})
	t.Cleanup(c.Close)
	for i, d := range doers {
		// Local reads go through the resolver; the linearizable reads
		// through the keep-alive pool, here dialled to an in-memory
		// server that the same fake answers.
		c.nodes[i].resolver = d
		ln := fasthttputil.NewInmemoryListener()
		srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
			if err := d.serve(&ctx.Request, &ctx.Response); err != nil {
				ctx.Response.SetStatusCode(fasthttp.StatusServiceUnavailable)
				ctx.Response.SetBodyString(`{"code":"unavailable","message":"down"}`)
			}
		}, MaxIdleWorkerDuration: 50 * time.Millisecond}
		serveUntilCleanup(t, srv, ln)
		c.nodes[i].hc.DialTimeout = func(string, time.Duration) (net.Conn, error) { return ln.Dial() }
	}
	return c
}

// waitingItems is the number of resolves waiting in shard 7's batches.
func waitingItems(c *Client) int {
	return c.shards[7].batch.Stats().Items
}

// waitFor waits up to 5 s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, what, func() error {
		if !cond() {
			return errors.New("not yet")
		}
		return nil
	})
}

type resolved struct {
	code string
	link Link
	err  error
}

// resolveAll resolves codes concurrently and returns their results in the
// order of codes, once every one returned.
func resolveAll(c *Client, codes []string) []resolved {
	out := make([]resolved, len(codes))
	var wg sync.WaitGroup
	for i, code := range codes {
		wg.Go(func() {
			l, err := c.ResolveDeadline(time.Now().Add(10*time.Second), 7, code)
			out[i] = resolved{code, l, err}
		})
	}
	wg.Wait()
	return out
}

// startHeld starts resolveInflight lone resolves of heldCode, held by d,
// and waits until d holds them all: every slot of shard 7 is then busy.
func startHeld(t *testing.T, c *Client, d *fakeDoer) <-chan resolved {
	code := heldCode
	t.Helper()
	d.setHold(true)
	ch := make(chan resolved, resolveInflight)
	for range resolveInflight {
		go func() {
			l, err := c.ResolveDeadline(time.Now().Add(10*time.Second), 7, code)
			ch <- resolved{code, l, err}
		}()
	}
	waitFor(t, "the lone resolves reach the node", func() bool { return d.heldNow() == resolveInflight })
	return ch
}

// releaseHeld lets d answer the lone resolves of startHeld (lone) and
// waits until all returned.
func releaseHeld(d *fakeDoer, lone <-chan resolved) {
	d.setHold(false)
	drainHeld(lone)
}

// drainHeld returns the results of startHeld's lone resolves, waiting
// for all of them.
func drainHeld(lone <-chan resolved) []resolved {
	held := make([]resolved, 0, resolveInflight)
	for range resolveInflight {
		held = append(held, <-lone)
	}
	return held
}

// resolveBehindHeld holds every slot of shard 7 with startHeld's lone
// resolves on d, then resolves codes concurrently; once every one of them
// waits in a batch, it runs prepare (when not nil) and lets d answer. It
// returns the codes' results in the order of codes, and the lone
// resolves' results, once all returned.
func resolveBehindHeld(t *testing.T, c *Client, d *fakeDoer, codes []string, prepare func()) (got, held []resolved) {
	t.Helper()
	lone := startHeld(t, c, d)
	done := make(chan struct{})
	go func() {
		got = resolveAll(c, codes)
		close(done)
	}()
	waitFor(t, "every resolve waits in a batch", func() bool { return waitingItems(c) == len(codes) })
	if prepare != nil {
		prepare()
	}
	d.setHold(false)
	<-done
	return got, drainHeld(lone)
}

// TestResolveLoneGoesAloneAtOnce: a resolve that finds a free slot is one
// single binary resolve, never a multi-resolve, and sequential resolves
// never batch.
func TestResolveLoneGoesAloneAtOnce(t *testing.T) {
	d := newFakeDoer(t, "", map[string]string{"aaaaaaa": "https://a/", "bbbbbbb": "https://b/"})
	c := newDoerClient(t, d)
	for _, code := range []string{"aaaaaaa", "bbbbbbb", "aaaaaaa"} {
		l, err := c.Resolve(context.Background(), 7, code)
		if err != nil || l.Code != code {
			t.Fatalf("resolve %s: %+v, %v", code, l, err)
		}
	}
	for _, r := range d.requests() {
		if r.path != PathResolveBinary || len(r.codes) != 1 || r.lin {
			t.Fatalf("request %+v, want single local resolves only", r)
		}
	}
	if n := len(d.requests()); n != 3 {
		t.Fatalf("%d requests for 3 resolves", n)
	}
}

// TestResolveCoalescesWhileSlotsBusy: with every slot busy, the resolves
// that arrive wait in one batch, sent as one multi-resolve when a slot
// frees; each gets its own answer: its link, gone (definite, no leader
// call), or, for a code the replica does not hold, the leader's
// linearizable single resolve (a found link, or not found).
func TestResolveCoalescesWhileSlotsBusy(t *testing.T) {
	links := map[string]string{"held000": "https://held/", "gone000": "gone:"}
	var codes []string
	for i := range 20 {
		code := fmt.Sprintf("code%03d", i)
		links[code] = "https://example.com/" + code
		codes = append(codes, code)
	}
	codes = append(codes, "gone000", "missing")
	d := newFakeDoer(t, "", links)
	c := newDoerClient(t, d)
	got, held := resolveBehindHeld(t, c, d, codes, nil)
	for _, r := range held {
		if r.err != nil || r.link.URL != "https://held/" {
			t.Fatalf("lone resolve: %+v", r)
		}
	}
	for _, r := range got {
		switch r.code {
		case "gone000":
			if !errors.Is(r.err, ErrGone) {
				t.Fatalf("%s: %v, want ErrGone", r.code, r.err)
			}
		case "missing":
			if !errors.Is(r.err, ErrNotFound) {
				t.Fatalf("%s: %v, want ErrNotFound", r.code, r.err)
			}
		default:
			if r.err != nil || r.link.Code != r.code || r.link.URL != links[r.code] || r.link.AppliedIndex != 9 {
				t.Fatalf("%s: %+v, %v", r.code, r.link, r.err)
			}
		}
	}
	var many, lin, single int
	for _, r := range d.requests() {
		switch {
		case r.path == PathResolveMany:
			many++
			if len(r.codes) != len(codes) {
				t.Fatalf("multi-resolve of %d codes, want all %d waiting", len(r.codes), len(codes))
			}
		case r.lin:
			lin++
			if r.codes[0] != "missing" {
				t.Fatalf("linearizable resolve of %s: only the code the replica lacks goes to the leader", r.codes[0])
			}
		default:
			single++
		}
	}
	if many != 1 || lin != 1 || single != resolveInflight {
		t.Fatalf("%d multi-resolves, %d linearizable and %d local single resolves; want 1, 1 and %d", many, lin, single, resolveInflight)
	}
}

// TestResolveBatchesAreBounded: more waiting resolves than MaxResolveMany
// fill several batches, each at most MaxResolveMany codes, and every
// resolve gets its link.
func TestResolveBatchesAreBounded(t *testing.T) {
	links := map[string]string{"held000": "https://held/"}
	var codes []string
	for i := range MaxResolveMany*2 + 5 {
		code := fmt.Sprintf("c%06d", i)
		links[code] = "https://example.com/" + code
		codes = append(codes, code)
	}
	d := newFakeDoer(t, "", links)
	c := newDoerClient(t, d)
	got, _ := resolveBehindHeld(t, c, d, codes, nil)
	for _, r := range got {
		if r.err != nil || r.link.URL != links[r.code] {
			t.Fatalf("%s: %+v, %v", r.code, r.link, r.err)
		}
	}
	total := 0
	for _, r := range d.requests() {
		if r.path == PathResolveMany {
			if len(r.codes) > MaxResolveMany {
				t.Fatalf("multi-resolve of %d codes", len(r.codes))
			}
			total += len(r.codes)
		}
	}
	if total != len(codes) {
		t.Fatalf("multi-resolves carried %d codes, want %d", total, len(codes))
	}
}

// TestResolveManyOldNodeFallsBack: a node that answers the multi-resolve
// path 404 (built before it) gets the batch's resolves as single
// resolves, and then no multi-resolve for resolveManyRetry.
func TestResolveManyOldNodeFallsBack(t *testing.T) {
	links := map[string]string{"held000": "https://held/", "aaaaaaa": "https://a/", "bbbbbbb": "https://b/", "ccccccc": "https://c/"}
	d := newFakeDoer(t, "", links)
	d.noMany = true
	c := newDoerClient(t, d)
	codes := []string{"aaaaaaa", "bbbbbbb", "ccccccc"}
	got, _ := resolveBehindHeld(t, c, d, codes, nil)
	for _, r := range got {
		if r.err != nil || r.link.URL != links[r.code] {
			t.Fatalf("%s behind an old node: %+v, %v", r.code, r.link, r.err)
		}
	}
	if c.nodes[0].manyOK() {
		t.Fatal("the node that answered 404 is still sent multi-resolves")
	}
	many := 0
	for _, r := range d.requests() {
		if r.path == PathResolveMany {
			many++
		}
	}
	if many != 1 {
		t.Fatalf("%d multi-resolves, want the one that found the node without the path", many)
	}

	// While the node is marked, waiting resolves go alone at once.
	lone := startHeld(t, c, d)
	l, err := c.Resolve(context.Background(), 7, "aaaaaaa")
	if err != nil || l.URL != "https://a/" {
		t.Fatalf("resolve while the slots are busy and the node lacks the path: %+v, %v", l, err)
	}
	releaseHeld(d, lone)
}

// TestResolveBatchSkipsDownReplica: a multi-resolve whose hinted replica
// is down is sent to the next replica, as a single local read is.
func TestResolveBatchSkipsDownReplica(t *testing.T) {
	links := map[string]string{"held000": "https://held/", "aaaaaaa": "https://a/", "bbbbbbb": "https://b/"}
	d1 := newFakeDoer(t, "", links)
	d2 := newFakeDoer(t, "", links)
	c := newDoerClient(t, d1, d2)
	got, _ := resolveBehindHeld(t, c, d1, []string{"aaaaaaa", "bbbbbbb"}, func() {
		d1.mu.Lock()
		d1.down = true
		d1.mu.Unlock()
	})
	for _, r := range got {
		if r.err != nil || r.link.URL != links[r.code] {
			t.Fatalf("%s with n1 down: %+v, %v", r.code, r.link, r.err)
		}
	}
	reqs := d2.requests()
	if len(reqs) != 1 || reqs[0].path != PathResolveMany || len(reqs[0].codes) != 2 {
		t.Fatalf("n2 received %+v, want the one multi-resolve", reqs)
	}
}

// TestResolveManyItemErrors: per-item errors keep a single resolve's
// meaning: wrong_shard is definite (ErrWrongShard, no retry), a transient
// unavailable makes that item's resolve read alone.
func TestResolveManyItemErrors(t *testing.T) {
	links := map[string]string{"held000": "https://held/", "flaky00": "https://flaky/", "aaaaaaa": "https://a/"}
	d := newFakeDoer(t, "", links)
	d.itemErr = map[string]ErrorBody{
		"wrong00": {Code: ErrCodeWrongShard, Message: "belongs to shard 3"},
		"flaky00": {Code: ErrCodeUnavailable, Message: "read failed"},
	}
	c := newDoerClient(t, d)
	codes := []string{"wrong00", "flaky00", "aaaaaaa"}
	got, _ := resolveBehindHeld(t, c, d, codes, nil)
	if !errors.Is(got[0].err, ErrWrongShard) {
		t.Fatalf("wrong-shard item: %+v, want ErrWrongShard", got[0])
	}
	if got[1].err != nil || got[1].link.URL != "https://flaky/" {
		t.Fatalf("item with a transient error: %+v", got[1])
	}
	if got[2].err != nil || got[2].link.URL != "https://a/" {
		t.Fatalf("plain item: %+v", got[2])
	}
	var singles []string
	for _, r := range d.requests() {
		if r.path == PathResolveBinary && r.codes[0] != "held000" {
			singles = append(singles, r.codes[0])
		}
	}
	if !slices.Equal(singles, []string{"flaky00"}) {
		t.Fatalf("single resolves after the batch: %v, want only the transient item's", singles)
	}
}

// TestResolveWaitingBatchTimesOut: a batch that never gets a slot fails
// with ErrUnavailable at its sender's deadline, and leaves the queue.
func TestResolveWaitingBatchTimesOut(t *testing.T) {
	d := newFakeDoer(t, "", map[string]string{"held000": "https://held/", "aaaaaaa": "https://a/"})
	c := newDoerClient(t, d)
	lone := startHeld(t, c, d)
	_, err := c.ResolveDeadline(time.Now().Add(50*time.Millisecond), 7, "aaaaaaa")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("resolve that never got a slot: %v, want ErrUnavailable", err)
	}
	if n := waitingItems(c); n != 0 {
		t.Fatalf("%d resolves still waiting", n)
	}
	releaseHeld(d, lone)
	// The slots are free again: the next resolve goes alone.
	if l, err := c.Resolve(context.Background(), 7, "aaaaaaa"); err != nil || l.URL != "https://a/" {
		t.Fatalf("resolve after the slots freed: %+v, %v", l, err)
	}
	if n := c.shards[7].batch.Stats().InFlight; n != 0 {
		t.Fatalf("%d slots still taken", n)
	}
}
