package shardrpc

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/goleak"

	"github.com/linkraft/linkraft/config"
	"github.com/linkraft/linkraft/linkstore"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// fasthttp's process-wide Date header ticker, started by the first
		// server and never stopped.
		goleak.IgnoreTopFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	)
}

// call is one request a fake node received.
type call struct {
	node   string
	op     string
	shard  string
	secret string
	body   []byte
	// code is the code of a binary resolve request, as sent.
	code string
}

// fakeNode is a storage node that speaks the wire contract with answers
// chosen by the test.
type fakeNode struct {
	id     string
	addr   string
	handle func(c call) (int, any)
}

// fakeCluster is a set of fake nodes, each a real fasthttp server on
// 127.0.0.1, plus the calls they received in order.
type fakeCluster struct {
	t     *testing.T
	nodes []*fakeNode
	cfg   *config.Config

	mu    sync.Mutex
	calls []call
}

// serveUntilCleanup serves srv on ln in a goroutine until the test ends:
// its cleanup shuts srv down, closes ln and waits for Serve to return.
func serveUntilCleanup(t testing.TB, srv *fasthttp.Server, ln net.Listener) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Shutdown()
		// Shutdown does not stop a Serve that has not yet registered
		// the listener; closing it does.
		_ = ln.Close()
		<-done
	})
}

// newFakeCluster starts n fake nodes n1..nN serving one shard (ID 7)
// replicated on all of them. Nodes listed in down get an address on which
// nothing listens (connection refused).
func newFakeCluster(t *testing.T, n int, down ...string) *fakeCluster {
	t.Helper()
	fc := &fakeCluster{t: t, cfg: &config.Config{}}
	shard := config.Shard{ID: 7}
	for i := 1; i <= n; i++ {
		fn := &fakeNode{id: "n" + string(rune('0'+i))}
		fn.handle = func(call) (int, any) {
			return 503, ErrorBody{Code: ErrCodeUnavailable, Message: "no handler"}
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fn.addr = ln.Addr().String()
		isDown := false
		for _, d := range down {
			isDown = isDown || d == fn.id
		}
		if isDown {
			ln.Close() // refused from now on
		} else {
			srv := &fasthttp.Server{Handler: fc.handler(fn), IdleTimeout: time.Second, MaxIdleWorkerDuration: 50 * time.Millisecond}
			serveUntilCleanup(t, srv, ln)
		}
		fc.nodes = append(fc.nodes, fn)
		fc.cfg.Nodes = append(fc.cfg.Nodes, config.Node{ID: fn.id, RPCAddr: fn.addr, RaftAddr: "127.0.0.1:1"})
		shard.Replicas = append(shard.Replicas, fn.id)
	}
	fc.cfg.Shards = []config.Shard{shard}
	return fc
}

func (fc *fakeCluster) handler(fn *fakeNode) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		c := call{
			node:   fn.id,
			op:     strings.TrimPrefix(string(ctx.Path()), "/rpc/v1/"),
			shard:  string(ctx.Request.Header.Peek(HeaderShard)),
			secret: string(ctx.Request.Header.Peek(HeaderSecret)),
			body:   append([]byte(nil), ctx.PostBody()...),
		}
		binary := string(ctx.Path()) == PathResolveBinary
		if binary {
			// Recorded as the JSON request it stands for, so that the
			// tests check both wires the same way.
			code, lin, _, err := DecodeResolveRequest(c.body)
			if err != nil {
				fc.t.Errorf("%s: binary resolve request %x: %v", fn.id, c.body, err)
			}
			c.op, c.code = "resolve", string(code)
			c.body, _ = json.Marshal(ResolveRequest{Code: string(code), Linearizable: lin})
		}
		if !ctx.IsPost() {
			fc.t.Errorf("%s: method %s", fn.id, ctx.Method())
		}
		fc.mu.Lock()
		fc.calls = append(fc.calls, c)
		handle := fn.handle
		fc.mu.Unlock()
		status, v := handle(c)
		if l, ok := v.(Link); ok && binary && status == fasthttp.StatusOK {
			// The node answers the stored record bytes.
			rec := linkstore.AppendRecord(AppendResolveResponseHeader(nil, ResolveWireVersion, 0), linkstore.Record{
				Code: l.Code, URL: l.URL, CreatedAtMs: l.CreatedAtMs, Alias: l.Alias, ExpiresAtMs: l.ExpiresAtMs, MaxClicks: l.MaxClicks,
				Owner: l.Owner, Title: l.Title, Tags: l.Tags, RedirectStatus: uint16(l.RedirectStatus), UpdatedAtMs: l.UpdatedAtMs,
			})
			ctx.SetStatusCode(status)
			ctx.SetContentType(ContentTypeResolve)
			ctx.SetBody(rec)
			return
		}
		raw, err := json.Marshal(v)
		if err != nil {
			fc.t.Errorf("encode: %v", err)
		}
		ctx.SetStatusCode(status)
		ctx.SetContentType("application/json")
		ctx.SetBody(raw)
	}
}

// set replaces the handler of node id.
func (fc *fakeCluster) set(id string, h func(c call) (int, any)) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	for _, n := range fc.nodes {
		if n.id == id {
			n.handle = h
			return
		}
	}
	fc.t.Fatalf("no node %s", id)
}

func (fc *fakeCluster) node(id string) *fakeNode {
	for _, n := range fc.nodes {
		if n.id == id {
			return n
		}
	}
	fc.t.Fatalf("no node %s", id)
	return nil
}

func (fc *fakeCluster) recorded() []call {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return append([]call(nil), fc.calls...)
}

func (fc *fakeCluster) client(opts ClientOptions) *Client {
	if opts.IdleConnTimeout == 0 {
		opts.IdleConnTimeout = 100 * time.Millisecond
	}
	c := NewClient(fc.cfg, opts)
	fc.t.Cleanup(c.Close)
	return c
}

func notLeader(leader string) func(call) (int, any) {
	return func(call) (int, any) {
		return 421, ErrorBody{Code: ErrCodeNotLeader, Message: "not the leader", LeaderID: leader}
	}
}

// leaderCreate answers creates like a leader: a link whose code is the
// request ID, so the test sees what the leader received.
func leaderCreate(c call) (int, any) {
	var req CreateRequest
	if err := json.Unmarshal(c.body, &req); err != nil {
		return 400, ErrorBody{Code: ErrCodeBadRequest, Message: err.Error()}
	}
	return 200, Link{Code: "abc1234", URL: req.URL, CreatedAtMs: 1700000000000, Created: true}
}

func ops(calls []call) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.node+":"+c.op)
	}
	return out
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestCreateFollowsNotLeaderHint(t *testing.T) {
	fc := newFakeCluster(t, 3)
	fc.set("n1", notLeader("n3"))
	fc.set("n2", notLeader("n3"))
	fc.set("n3", leaderCreate)
	c := fc.client(ClientOptions{})
	if c.LeaderKnown(7) {
		t.Fatal("leader known before any call")
	}
	link, err := c.Create(ctxTimeout(t, 5*time.Second), 7, CreateRequest{Partition: 3, URL: "https://example.com/"})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if link.URL != "https://example.com/" || !link.Created {
		t.Fatalf("link %+v", link)
	}
	if got := ops(fc.recorded()); strings.Join(got, ",") != "n1:create,n3:create" {
		t.Fatalf("calls %v, want the first replica then the hinted leader", got)
	}
	if !c.LeaderKnown(7) {
		t.Fatal("leader not known after a create")
	}
	// The next create goes straight to the leader.
	if _, err := c.Create(ctxTimeout(t, 5*time.Second), 7, CreateRequest{Partition: 3, URL: "https://example.com/2"}); err != nil {
		t.Fatal(err)
	}
	calls := fc.recorded()
	if last := calls[len(calls)-1]; len(calls) != 3 || last.node != "n3" {
		t.Fatalf("calls %v, want the second create at n3 only", ops(calls))
	}
	for _, cl := range calls {
		if cl.shard != "7" {
			t.Errorf("shard header %q", cl.shard)
		}
		if cl.secret != "" {
			t.Errorf("secret header %q sent without a secret", cl.secret)
		}
	}
}

func TestCreateKeepsRequestIDAcrossRetries(t *testing.T) {
	fc := newFakeCluster(t, 3, "n2")
	var mu sync.Mutex
	failures := 2
	fc.set("n1", func(c call) (int, any) {
		mu.Lock()
		defer mu.Unlock()
		if failures > 0 {
			failures--
			return 503, ErrorBody{Code: ErrCodeUnavailable, Message: "apply timed out"}
		}
		return leaderCreate(c)
	})
	fc.set("n3", func(call) (int, any) {
		return 421, ErrorBody{Code: ErrCodeNotLeader, Message: "election running"}
	})
	c := fc.client(ClientOptions{BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	for _, preset := range []string{"", "caller-chosen-id"} {
		before := len(fc.recorded())
		if _, err := c.Create(ctxTimeout(t, 5*time.Second), 7, CreateRequest{URL: "https://example.com/", RequestID: preset}); err != nil {
			t.Fatalf("create: %v", err)
		}
		mu.Lock()
		failures = 2
		mu.Unlock()
		calls := fc.recorded()[before:]
		if preset == "" && len(calls) < 3 {
			t.Fatalf("calls %v, want at least 3 (two 503s, then success)", ops(calls))
		}
		ids := map[string]bool{}
		for _, cl := range calls {
			var req CreateRequest
			if err := json.Unmarshal(cl.body, &req); err != nil {
				t.Fatal(err)
			}
			ids[req.RequestID] = true
		}
		if len(ids) != 1 {
			t.Fatalf("request IDs %v across retries, want one", ids)
		}
		for id := range ids {
			if preset != "" && id != preset {
				t.Fatalf("request ID %q, want the caller's %q", id, preset)
			}
			if preset == "" && len(id) != 32 {
				t.Fatalf("generated request ID %q, want 32 hex digits", id)
			}
		}
	}
}

func TestCreateSkipsRefusedReplica(t *testing.T) {
	fc := newFakeCluster(t, 3, "n1")
	fc.set("n2", func(call) (int, any) {
		return 421, ErrorBody{Code: ErrCodeNotLeader, Message: "no leader known"}
	})
	fc.set("n3", leaderCreate)
	c := fc.client(ClientOptions{})
	start := time.Now()
	if _, err := c.Create(ctxTimeout(t, 5*time.Second), 7, CreateRequest{URL: "https://example.com/"}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("create took %s with one replica down", d)
	}
	if got := strings.Join(ops(fc.recorded()), ","); got != "n2:create,n3:create" {
		t.Fatalf("calls %s", got)
	}
}

func TestCreateTerminalErrors(t *testing.T) {
	cases := []struct {
		status int
		code   Code
		want   error
	}{
		{409, ErrCodeAliasTaken, ErrAliasTaken},
		{507, ErrCodeExhausted, ErrPartitionFull},
		{400, ErrCodeBadRequest, ErrBadRequest},
		{401, ErrCodeUnauthorized, ErrUnauthorized},
		{421, ErrCodeWrongShard, ErrWrongShard},
	}
	for _, tc := range cases {
		t.Run(string(tc.code), func(t *testing.T) {
			fc := newFakeCluster(t, 3)
			fc.set("n1", func(call) (int, any) { return tc.status, ErrorBody{Code: tc.code, Message: "m"} })
			c := fc.client(ClientOptions{})
			_, err := c.Create(ctxTimeout(t, 5*time.Second), 7, CreateRequest{URL: "https://example.com/", Alias: "taken"})
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			var re *RemoteError
			if !errors.As(err, &re) || re.Node != "n1" || re.Status != tc.status || re.Body.Message != "m" {
				t.Fatalf("error %#v is not the node's RemoteError", err)
			}
			if n := len(fc.recorded()); n != 1 {
				t.Fatalf("%d calls, want 1 (no retry)", n)
			}
		})
	}
}

func TestCreateUnavailableAtDeadline(t *testing.T) {
	fc := newFakeCluster(t, 3, "n3")
	unavail := func(call) (int, any) { return 503, ErrorBody{Code: ErrCodeUnavailable, Message: "no quorum"} }
	fc.set("n1", unavail)
	fc.set("n2", unavail)
	c := fc.client(ClientOptions{BackoffBase: time.Millisecond, BackoffMax: 20 * time.Millisecond})
	start := time.Now()
	_, err := c.Create(ctxTimeout(t, 300*time.Millisecond), 7, CreateRequest{URL: "https://example.com/"})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("error %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Fatalf("gave up after %s, want about the 300ms deadline", d)
	}
	if n := len(fc.recorded()); n < 4 {
		t.Fatalf("%d calls before the deadline, want retries", n)
	}
	if c.LeaderKnown(7) {
		t.Fatal("leader known although none answered")
	}
}

func TestCreateDefaultTimeout(t *testing.T) {
	fc := newFakeCluster(t, 1, "n1")
	c := fc.client(ClientOptions{Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := c.Create(context.Background(), 7, CreateRequest{URL: "https://example.com/"})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("error %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("gave up after %s, want about 200ms", d)
	}
}

func TestSecretHeader(t *testing.T) {
	fc := newFakeCluster(t, 1)
	fc.cfg.Cluster.RPCSecret = "s3cret"
	fc.set("n1", func(c call) (int, any) {
		if c.secret != "s3cret" {
			return 401, ErrorBody{Code: ErrCodeUnauthorized, Message: "bad secret"}
		}
		return leaderCreate(c)
	})
	c := fc.client(ClientOptions{})
	if _, err := c.Create(ctxTimeout(t, 5*time.Second), 7, CreateRequest{URL: "https://example.com/"}); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownShard(t *testing.T) {
	fc := newFakeCluster(t, 1)
	c := fc.client(ClientOptions{})
	if _, err := c.Create(context.Background(), 99, CreateRequest{}); !errors.Is(err, ErrUnknownShard) {
		t.Fatalf("create: %v", err)
	}
	if _, err := c.Resolve(context.Background(), 99, "abc"); !errors.Is(err, ErrUnknownShard) {
		t.Fatalf("resolve: %v", err)
	}
	if _, err := c.Status(context.Background(), 99); !errors.Is(err, ErrUnknownShard) {
		t.Fatalf("status: %v", err)
	}
	if len(fc.recorded()) != 0 {
		t.Fatal("a call was sent for an unknown shard")
	}
}

// resolver answers resolves as a replica holding links: local reads from
// what it has, linearizable reads only as the leader.
func resolver(leader bool, leaderID string, links map[string]string) func(call) (int, any) {
	return func(c call) (int, any) {
		var req ResolveRequest
		if err := json.Unmarshal(c.body, &req); err != nil {
			return 400, ErrorBody{Code: ErrCodeBadRequest, Message: err.Error()}
		}
		if req.Linearizable && !leader {
			return 421, ErrorBody{Code: ErrCodeNotLeader, Message: "not the leader", LeaderID: leaderID}
		}
		if u, ok := links[req.Code]; ok {
			return 200, Link{Code: req.Code, URL: u}
		}
		if req.Linearizable {
			return 404, ErrorBody{Code: ErrCodeNotFound, Message: "no such code"}
		}
		return 404, ErrorBody{Code: ErrCodeMaybeStale, Message: "not found locally"}
	}
}

func resolveOps(t *testing.T, calls []call) []string {
	t.Helper()
	var out []string
	for _, c := range calls {
		var req ResolveRequest
		if err := json.Unmarshal(c.body, &req); err != nil {
			t.Fatal(err)
		}
		kind := "local"
		if req.Linearizable {
			kind = "lin"
		}
		out = append(out, c.node+":"+kind+":"+req.Code)
	}
	return out
}

func TestResolveLocalHit(t *testing.T) { forEachResolveWire(t, testResolveLocalHit) }

func testResolveLocalHit(t *testing.T, wire resolveWire) {
	fc := newFakeCluster(t, 3)
	links := map[string]string{"abc1234": "https://example.com/"}
	fc.set("n1", resolver(false, "n2", links))
	fc.set("n2", resolver(true, "n2", links))
	c := fc.client(ClientOptions{ResolveJSON: wire.json, ResolveConns: wire.conns})
	link, err := c.Resolve(ctxTimeout(t, 5*time.Second), 7, "abc1234")
	if err != nil || link.URL != "https://example.com/" {
		t.Fatalf("resolve: %+v, %v", link, err)
	}
	if got := strings.Join(resolveOps(t, fc.recorded()), ","); got != "n1:local:abc1234" {
		t.Fatalf("calls %s, want one local read", got)
	}
}

func TestResolveMaybeStaleEscalatesToLeader(t *testing.T) {
	forEachResolveWire(t, testResolveMaybeStaleEscalatesToLeader)
}

func testResolveMaybeStaleEscalatesToLeader(t *testing.T, wire resolveWire) {
	fc := newFakeCluster(t, 3)
	// n1 lags: it does not have the link yet; n3 leads and has it.
	fc.set("n1", resolver(false, "n3", map[string]string{}))
	fc.set("n2", resolver(false, "n3", map[string]string{}))
	fc.set("n3", resolver(true, "n3", map[string]string{"fresh-alias": "https://example.com/new"}))
	c := fc.client(ClientOptions{ResolveJSON: wire.json, ResolveConns: wire.conns})
	link, err := c.Resolve(ctxTimeout(t, 5*time.Second), 7, "fresh-alias")
	if err != nil || link.URL != "https://example.com/new" {
		t.Fatalf("resolve: %+v, %v", link, err)
	}
	want := "n1:local:fresh-alias,n1:lin:fresh-alias,n3:lin:fresh-alias"
	if got := strings.Join(resolveOps(t, fc.recorded()), ","); got != want {
		t.Fatalf("calls %s, want %s", got, want)
	}
	if !c.LeaderKnown(7) {
		t.Fatal("leader not learnt")
	}
	// With the leader known, a miss is a local read at the leader, then
	// its confirmation: ErrNotFound.
	before := len(fc.recorded())
	_, err = c.Resolve(ctxTimeout(t, 5*time.Second), 7, "nosuchcode")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("resolve of an unknown code: %v, want ErrNotFound", err)
	}
	want = "n3:local:nosuchcode,n3:lin:nosuchcode"
	if got := strings.Join(resolveOps(t, fc.recorded()[before:]), ","); got != want {
		t.Fatalf("calls %s, want %s", got, want)
	}
}

func TestResolveNeverNotFoundWithoutLeader(t *testing.T) {
	forEachResolveWire(t, testResolveNeverNotFoundWithoutLeader)
}

func testResolveNeverNotFoundWithoutLeader(t *testing.T, wire resolveWire) {
	fc := newFakeCluster(t, 3, "n3")
	// No leader reachable: the followers only know they do not have it.
	fc.set("n1", resolver(false, "n3", map[string]string{}))
	fc.set("n2", resolver(false, "n3", map[string]string{}))
	c := fc.client(ClientOptions{BackoffBase: time.Millisecond, BackoffMax: 10 * time.Millisecond, ResolveJSON: wire.json, ResolveConns: wire.conns})
	_, err := c.Resolve(ctxTimeout(t, 300*time.Millisecond), 7, "abc1234")
	if errors.Is(err, ErrNotFound) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("resolve: %v, want ErrUnavailable and not ErrNotFound", err)
	}
}

func TestResolveSkipsDownReplicaForLocalRead(t *testing.T) {
	forEachResolveWire(t, testResolveSkipsDownReplicaForLocalRead)
}

func testResolveSkipsDownReplicaForLocalRead(t *testing.T, wire resolveWire) {
	fc := newFakeCluster(t, 3, "n1")
	links := map[string]string{"abc1234": "https://example.com/"}
	fc.set("n2", resolver(false, "n1", links))
	c := fc.client(ClientOptions{ResolveJSON: wire.json, ResolveConns: wire.conns})
	link, err := c.Resolve(ctxTimeout(t, 5*time.Second), 7, "abc1234")
	if err != nil || link.URL != "https://example.com/" {
		t.Fatalf("resolve: %+v, %v", link, err)
	}
}

func TestResolveEscapesCode(t *testing.T) { forEachResolveWire(t, testResolveEscapesCode) }

func testResolveEscapesCode(t *testing.T, wire resolveWire) {
	fc := newFakeCluster(t, 1)
	odd := "a\"b\\c<\x01é\xff"
	var got string
	fc.set("n1", func(c call) (int, any) {
		var req ResolveRequest
		if err := json.Unmarshal(c.body, &req); err != nil {
			return 400, ErrorBody{Code: ErrCodeBadRequest, Message: err.Error()}
		}
		got = req.Code
		if !wire.json {
			got = c.code
		}
		return 200, Link{Code: req.Code, URL: "https://example.com/"}
	})
	c := fc.client(ClientOptions{ResolveJSON: wire.json, ResolveConns: wire.conns})
	if _, err := c.Resolve(ctxTimeout(t, 5*time.Second), 7, odd); err != nil {
		t.Fatal(err)
	}
	want := odd // the binary request carries the code's bytes as they are
	if wire.json {
		want = jsonRoundTrip(t, odd)
	}
	if got != want {
		t.Fatalf("node got code %q, want %q", got, want)
	}
}

func TestStatusFindsLeader(t *testing.T) {
	fc := newFakeCluster(t, 3)
	follower := func(id string) func(call) (int, any) {
		return func(call) (int, any) {
			return 200, Status{Shard: 7, NodeID: id, State: "Follower", LeaderID: "n2", LeaderRPC: fc.node("n2").addr}
		}
	}
	fc.set("n1", follower("n1"))
	fc.set("n3", follower("n3"))
	fc.set("n2", func(call) (int, any) {
		return 200, Status{Shard: 7, NodeID: "n2", State: "Leader", LeaderID: "n2", Term: 4}
	})
	c := fc.client(ClientOptions{})
	st, err := c.Status(ctxTimeout(t, 5*time.Second), 7)
	if err != nil || st.NodeID != "n2" || st.Term != 4 {
		t.Fatalf("status: %+v, %v", st, err)
	}
	if got := strings.Join(ops(fc.recorded()), ","); got != "n1:status,n2:status" {
		t.Fatalf("calls %s", got)
	}
	if !c.LeaderKnown(7) {
		t.Fatal("leader not learnt from status")
	}
	ns, err := c.NodeStatus(ctxTimeout(t, 5*time.Second), "n3", 7)
	if err != nil || ns.State != "Follower" || ns.NodeID != "n3" {
		t.Fatalf("node status: %+v, %v", ns, err)
	}
	if _, err := c.NodeStatus(context.Background(), "n9", 7); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("node status of an unknown node: %v", err)
	}
}

func TestStatusNoLeader(t *testing.T) {
	fc := newFakeCluster(t, 3, "n2")
	cand := func(call) (int, any) { return 200, Status{Shard: 7, State: "Candidate"} }
	fc.set("n1", cand)
	fc.set("n3", cand)
	c := fc.client(ClientOptions{BackoffBase: time.Millisecond, BackoffMax: 10 * time.Millisecond})
	if _, err := c.Status(ctxTimeout(t, 200*time.Millisecond), 7); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("status: %v, want ErrUnavailable", err)
	}
}

func TestAnswerWithoutErrorBody(t *testing.T) {
	fc := newFakeCluster(t, 1)
	fc.set("n1", func(call) (int, any) { return 409, "plain text" })
	c := fc.client(ClientOptions{})
	_, err := c.Create(ctxTimeout(t, 5*time.Second), 7, CreateRequest{URL: "https://example.com/"})
	if !errors.Is(err, ErrAliasTaken) {
		t.Fatalf("error %v, want ErrAliasTaken from the status alone", err)
	}
	fc.set("n1", func(call) (int, any) { return 500, "boom" })
	_, err = c.Create(ctxTimeout(t, 5*time.Second), 7, CreateRequest{URL: "https://example.com/"})
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("error %v, want ErrProtocol", err)
	}
	fc.set("n1", func(call) (int, any) { return 200, "not a link" })
	_, err = c.Create(ctxTimeout(t, 5*time.Second), 7, CreateRequest{URL: "https://example.com/"})
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("error %v, want ErrProtocol", err)
	}
}

func TestCodeMapping(t *testing.T) {
	for code, want := range codeErrors {
		if got := code.Err(); got != want {
			t.Errorf("%s.Err() = %v, want %v", code, got, want)
		}
		if code.HTTPStatus() == 500 {
			t.Errorf("%s has no HTTP status", code)
		}
		re := &RemoteError{Body: ErrorBody{Code: code}}
		if !errors.Is(re, want) {
			t.Errorf("RemoteError with %s does not unwrap to %v", code, want)
		}
	}
	if Code("bogus").Err() != ErrProtocol {
		t.Error("unknown code does not map to ErrProtocol")
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "abc1234", `a"b\c`, "<&>", "\x00\x1f", "é", "\xff\xfe", "\u2028\u2029", "launch-day"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendResolveBody(nil, s, true)
		var req ResolveRequest
		if err := json.Unmarshal(got, &req); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, got, err)
		}
		if want := jsonRoundTrip(t, s); req.Code != want || !req.Linearizable {
			t.Fatalf("%q round-trips to %q", s, req.Code)
		}
		std, _ := json.Marshal(s)
		if want := `{"code":` + string(std) + `,"linearizable":true}`; string(got) != want {
			t.Fatalf("%q encodes to %s, encoding/json to %s", s, got, want)
		}
	})
}

// jsonRoundTrip is s after encoding/json wrote and read it back (invalid
// UTF-8 replaced by U+FFFD byte by byte).
func jsonRoundTrip(t *testing.T, s string) string {
	t.Helper()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCanceledContext(t *testing.T) {
	fc := newFakeCluster(t, 3)
	fc.set("n1", func(call) (int, any) { return 503, ErrorBody{Code: ErrCodeUnavailable, Message: "no quorum"} })
	c := fc.client(ClientOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Resolve(ctx, 7, "abc1234")
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("resolve with a canceled context: %v", err)
	}
	if strings.Contains(err.Error(), "%!") {
		t.Fatalf("badly formatted error: %v", err)
	}
	if _, err := c.Status(ctx, 7); !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "%!") {
		t.Fatalf("status with a canceled context: %v", err)
	}
}

// resolveWire is one way of sending resolves.
type resolveWire struct {
	json  bool // ClientOptions.ResolveJSON
	conns int  // ClientOptions.ResolveConns
}

// forEachResolveWire runs a resolve test over the binary resolve RPC on
// pipelined connections (the default) and on the keep-alive pool, and over
// the JSON RPC (ClientOptions.ResolveJSON).
func forEachResolveWire(t *testing.T, test func(t *testing.T, wire resolveWire)) {
	t.Run("binary", func(t *testing.T) { test(t, resolveWire{}) })
	t.Run("binary-pool", func(t *testing.T) { test(t, resolveWire{conns: -1}) })
	t.Run("json", func(t *testing.T) { test(t, resolveWire{json: true}) })
}

// TestLinearizableResolveDoesNotHoldUpLocalReads: a linearizable resolve
// (a leader waiting for its quorum) goes through the keep-alive pool, not
// the pipelined connections, so local resolves sent meanwhile are answered
// while it waits. The fake node holds the linearizable call until the
// local one has returned; if both shared a connection the local one would
// wait behind it and fail.
func TestLinearizableResolveDoesNotHoldUpLocalReads(t *testing.T) {
	fc := newFakeCluster(t, 1)
	held := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	fc.set("n1", func(c call) (int, any) {
		var req ResolveRequest
		if err := json.Unmarshal(c.body, &req); err != nil {
			return 400, ErrorBody{Code: ErrCodeBadRequest, Message: err.Error()}
		}
		switch {
		case req.Code == "fast123" && !req.Linearizable:
			return 200, Link{Code: req.Code, URL: "https://example.com/fast"}
		case req.Code == "fast123":
			// Only reached when the local read failed (it waited behind
			// the held call): fail the test's resolve.
			return 404, ErrorBody{Code: ErrCodeNotFound, Message: "the local read did not get through"}
		case req.Linearizable:
			once.Do(func() { close(held) })
			<-release
			return 200, Link{Code: req.Code, URL: "https://example.com/slow"}
		default:
			return 404, ErrorBody{Code: ErrCodeMaybeStale, Message: "not here yet"}
		}
	})
	c := fc.client(ClientOptions{ResolveConns: 1, AttemptTimeout: 3 * time.Second})
	slow := make(chan error, 1)
	go func() {
		_, err := c.Resolve(ctxTimeout(t, 10*time.Second), 7, "slow123")
		slow <- err
	}()
	select {
	case <-held:
	case err := <-slow:
		t.Fatalf("the slow resolve returned before the node held it: %v", err)
	}
	link, err := c.Resolve(ctxTimeout(t, 10*time.Second), 7, "fast123")
	close(release)
	if err != nil || link.URL != "https://example.com/fast" {
		t.Fatalf("local resolve while a linearizable one waits: %+v, %v", link, err)
	}
	if err := <-slow; err != nil {
		t.Fatalf("linearizable resolve: %v", err)
	}
}

// TestResolveDeadlineBoundsTheCall: ResolveDeadline stops retrying at its
// deadline, on every wire, although the client's own Timeout is far
// longer.
func TestResolveDeadlineBoundsTheCall(t *testing.T) {
	forEachResolveWire(t, testResolveDeadlineBoundsTheCall)
}

func testResolveDeadlineBoundsTheCall(t *testing.T, wire resolveWire) {
	fc := newFakeCluster(t, 3)
	for _, id := range []string{"n1", "n2", "n3"} {
		fc.set(id, func(call) (int, any) {
			return 503, ErrorBody{Code: ErrCodeUnavailable, Message: "no quorum"}
		})
	}
	c := fc.client(ClientOptions{Timeout: time.Minute, BackoffBase: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		ResolveJSON: wire.json, ResolveConns: wire.conns})
	start := time.Now()
	_, err := c.ResolveDeadline(start.Add(200*time.Millisecond), 7, "abc1234")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("resolve: %v, want ErrUnavailable", err)
	}
	// Far below the client's one-minute Timeout: the deadline stopped it.
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("resolve returned after %s, want about its 200 ms deadline", d)
	}
}
