package raftmux

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger sends hclog output to t.Log until the test's cleanup ends, so
// a goroutine that logs late cannot panic the test binary.
func testLogger(t testing.TB, name string) hclog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() { // registered before the cleanups that stop goroutines, so it runs after them
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return hclog.New(&hclog.LoggerOptions{
		Name:   name,
		Level:  hclog.Debug,
		Output: w,
	})
}

type tWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func newMux(t *testing.T, opts ...Option) *Mux {
	t.Helper()
	m, err := Listen("127.0.0.1:0", append([]Option{WithLogger(testLogger(t, "mux"))}, opts...)...)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Mux.Close: %v", err)
		}
	})
	return m
}

func register(t *testing.T, m *Mux, group uint64) *StreamLayer {
	t.Helper()
	sl, err := m.Register(group)
	if err != nil {
		t.Fatalf("Register(%d): %v", group, err)
	}
	t.Cleanup(func() { _ = sl.Close() })
	return sl
}

// waitFor polls cond until it is true or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// expectClosedByPeer reads from c until it sees EOF or a reset, failing on
// data or on a timeout.
func expectClosedByPeer(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	var b [1]byte
	n, err := c.Read(b[:])
	if n > 0 {
		t.Fatalf("read %d bytes from a connection the mux should close", n)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", within)
	}
	if err == nil {
		t.Fatal("read returned no error")
	}
}

// acceptOne accepts one connection from sl in the background.
func acceptOne(sl *StreamLayer) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := sl.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	return ch
}

// TestStreamsPerGroup dials every group of a Mux through the layers of a
// second Mux and checks that each connection reaches its own group and
// carries bytes both ways.
func TestStreamsPerGroup(t *testing.T) {
	for _, groups := range []int{3, 64} {
		t.Run(fmt.Sprint(groups), func(t *testing.T) {
			a, b := newMux(t), newMux(t)
			la := make([]*StreamLayer, groups)
			lb := make([]*StreamLayer, groups)
			for i := range groups {
				la[i] = register(t, a, uint64(i+1))
				lb[i] = register(t, b, uint64(i+1))
			}
			var wg sync.WaitGroup
			errs := make(chan error, 2*groups)
			for i := range groups {
				wg.Add(2)
				go func() { // server: echo the group's message with a prefix
					defer wg.Done()
					c, err := lb[i].Accept()
					if err != nil {
						errs <- fmt.Errorf("group %d: accept: %w", i+1, err)
						return
					}
					defer c.Close()
					buf := make([]byte, 64)
					n, err := c.Read(buf)
					if err != nil {
						errs <- fmt.Errorf("group %d: read: %w", i+1, err)
						return
					}
					if _, err := fmt.Fprintf(c, "g%d:%s", i+1, buf[:n]); err != nil {
						errs <- fmt.Errorf("group %d: write: %w", i+1, err)
					}
				}()
				go func() {
					defer wg.Done()
					c, err := la[i].Dial(raft.ServerAddress(b.Addr().String()), 2*time.Second)
					if err != nil {
						errs <- fmt.Errorf("group %d: dial: %w", i+1, err)
						return
					}
					defer c.Close()
					msg := fmt.Sprintf("hello-%d", i+1)
					if _, err := io.WriteString(c, msg); err != nil {
						errs <- fmt.Errorf("group %d: write: %w", i+1, err)
						return
					}
					_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
					got, err := io.ReadAll(c)
					if err != nil {
						errs <- fmt.Errorf("group %d: read: %w", i+1, err)
						return
					}
					if want := fmt.Sprintf("g%d:%s", i+1, msg); string(got) != want {
						errs <- fmt.Errorf("group %d: got %q, want %q", i+1, got, want)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			// Routed is counted just after Accept took the connection.
			waitFor(t, 10*time.Second, "every connection counted", func() bool { return b.Stats().Routed == uint64(groups) })
			st := b.Stats()
			if st.UnknownGroup != 0 || st.BadHeader != 0 {
				t.Fatalf("stats %+v, want %d routed and no errors", st, groups)
			}
			if st.Groups != groups {
				t.Fatalf("Stats.Groups = %d, want %d", st.Groups, groups)
			}
		})
	}
}

// TestNetworkTransport sends real raft RPCs through raft.NetworkTransport
// for many groups over one port per node, and checks each RPC is delivered
// to the transport of its own group.
func TestNetworkTransport(t *testing.T) {
	const groups = 64
	a, b := newMux(t), newMux(t)
	type pair struct{ ta, tb *raft.NetworkTransport }
	pairs := make([]pair, groups)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range groups {
		g := uint64(i + 1)
		// Generous timeouts: the test checks routing, not latency, and must
		// not fail when a loaded machine stalls the process for a second.
		ta := raft.NewNetworkTransportWithLogger(a.StreamLayer(g), 2, 20*time.Second, testLogger(t, "ta"))
		tb := raft.NewNetworkTransportWithLogger(b.StreamLayer(g), 2, 20*time.Second, testLogger(t, "tb"))
		pairs[i] = pair{ta, tb}
		wg.Add(1)
		go func() { // b's consumer: answer with the group's ID as the term
			defer wg.Done()
			for {
				select {
				case rpc := <-tb.Consumer():
					req, ok := rpc.Command.(*raft.AppendEntriesRequest)
					if !ok {
						rpc.Respond(nil, fmt.Errorf("unexpected %T", rpc.Command))
						continue
					}
					resp := &raft.AppendEntriesResponse{Term: g, LastLog: req.PrevLogEntry, Success: req.Term == g}
					rpc.Respond(resp, nil)
				case <-stop:
					return
				}
			}
		}()
	}
	t.Cleanup(func() {
		for _, p := range pairs {
			_ = p.ta.Close()
			_ = p.tb.Close()
		}
		close(stop)
		wg.Wait()
	})
	for round := range 3 {
		var cwg sync.WaitGroup
		errs := make(chan error, groups)
		for i := range groups {
			cwg.Add(1)
			go func() {
				defer cwg.Done()
				g := uint64(i + 1)
				req := &raft.AppendEntriesRequest{
					RPCHeader:    raft.RPCHeader{ID: []byte("a"), Addr: []byte(a.Addr().String())},
					Term:         g,
					PrevLogEntry: uint64(round),
					Entries:      []*raft.Log{{Index: 1, Term: g, Type: raft.LogCommand, Data: []byte(fmt.Sprint(g))}},
				}
				var resp raft.AppendEntriesResponse
				if err := pairs[i].ta.AppendEntries("b", raft.ServerAddress(b.Addr().String()), req, &resp); err != nil {
					errs <- fmt.Errorf("group %d: AppendEntries: %w", g, err)
					return
				}
				if resp.Term != g || !resp.Success || resp.LastLog != uint64(round) {
					errs <- fmt.Errorf("group %d: response %+v reached the wrong group", g, resp)
				}
			}()
		}
		cwg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	waitFor(t, 10*time.Second, "every group's connection counted", func() bool { return b.Stats().Routed >= groups })
	if st := b.Stats(); st.UnknownGroup != 0 || st.BadHeader != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRaftClusters runs three real raft clusters (in-memory stores) on three
// nodes that each have a single Mux, elects their leaders and commits
// through all of them.
func TestRaftClusters(t *testing.T) {
	const nodes, groups = 3, 3
	muxes := make([]*Mux, nodes)
	for i := range muxes {
		muxes[i] = newMux(t)
	}
	rafts := make([][]*raft.Raft, groups)
	fsms := make([][]*countFSM, groups)
	for g := range groups {
		var servers []raft.Server
		for i := range nodes {
			servers = append(servers, raft.Server{
				ID:      raft.ServerID(fmt.Sprintf("n%d", i)),
				Address: raft.ServerAddress(muxes[i].Addr().String()),
			})
		}
		for i := range nodes {
			conf := raft.DefaultConfig()
			conf.LocalID = servers[i].ID
			conf.HeartbeatTimeout = 200 * time.Millisecond
			conf.ElectionTimeout = 200 * time.Millisecond
			conf.LeaderLeaseTimeout = 100 * time.Millisecond
			conf.CommitTimeout = 5 * time.Millisecond
			conf.Logger = testLogger(t, fmt.Sprintf("g%d-n%d", g+1, i))
			trans := raft.NewNetworkTransportWithLogger(muxes[i].StreamLayer(uint64(g+1)), 3, 2*time.Second, conf.Logger)
			store := raft.NewInmemStore()
			fsm := &countFSM{}
			r, err := raft.NewRaft(conf, fsm, store, store, raft.NewInmemSnapshotStore(), trans)
			if err != nil {
				t.Fatalf("NewRaft: %v", err)
			}
			t.Cleanup(func() {
				if err := r.Shutdown().Error(); err != nil {
					t.Errorf("raft shutdown: %v", err)
				}
				_ = trans.Close()
			})
			if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
				t.Fatalf("bootstrap: %v", err)
			}
			rafts[g] = append(rafts[g], r)
			fsms[g] = append(fsms[g], fsm)
		}
	}
	for g := range groups {
		for k := range 20 {
			// Retry on a leader change (a loaded machine can stall a
			// leader past its lease); the FSM counts distinct commands,
			// so a retried command that did commit is not counted twice.
			deadline := time.Now().Add(20 * time.Second)
			for {
				var leader *raft.Raft
				waitFor(t, 20*time.Second, fmt.Sprintf("a leader of group %d", g+1), func() bool {
					for _, r := range rafts[g] {
						if r.State() == raft.Leader {
							leader = r
							return true
						}
					}
					return false
				})
				err := leader.Apply([]byte(fmt.Sprint(k)), 10*time.Second).Error()
				if err == nil {
					break
				}
				if time.Now().After(deadline) || (!errors.Is(err, raft.ErrLeadershipLost) && !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrEnqueueTimeout)) {
					t.Fatalf("group %d: apply: %v", g+1, err)
				}
				t.Logf("group %d: apply %d: %v; retrying", g+1, k, err)
			}
		}
		waitFor(t, 20*time.Second, fmt.Sprintf("group %d replicated", g+1), func() bool {
			for _, f := range fsms[g] {
				if f.count() != 20 {
					return false
				}
			}
			return true
		})
	}
}

// countFSM counts the distinct commands it applied.
type countFSM struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (f *countFSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == nil {
		f.seen = make(map[string]bool)
	}
	f.seen[string(l.Data)] = true
	return len(f.seen)
}

func (f *countFSM) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (f *countFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (nopSnapshot) Release()                             {}

func TestBadHeader(t *testing.T) {
	m := newMux(t)
	register(t, m, 1)
	for _, in := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		{HeaderVersion, 0x00},
		{HeaderVersion, 0x80, 0x00},
	} {
		c, err := net.Dial("tcp", m.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(in); err != nil {
			t.Fatal(err)
		}
		expectClosedByPeer(t, c, 10*time.Second)
		_ = c.Close()
	}
	waitFor(t, 10*time.Second, "3 bad headers counted", func() bool { return m.Stats().BadHeader == 3 })
}

// TestSilentClient checks that clients that send nothing (or half a header)
// do not hold up other connections, and are closed after the header timeout.
func TestSilentClient(t *testing.T) {
	dialSilent := func(t *testing.T, m *Mux) (silent, half net.Conn) {
		t.Helper()
		silent, err := net.Dial("tcp", m.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = silent.Close() })
		half, err = net.Dial("tcp", m.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = half.Close() })
		if _, err := half.Write([]byte{HeaderVersion, 0x80}); err != nil {
			t.Fatal(err)
		}
		return silent, half
	}

	t.Run("does not block", func(t *testing.T) {
		// The header timeout is far longer than the test: the good
		// connection can only get through if the silent ones do not block.
		m := newMux(t, WithHeaderTimeout(time.Hour))
		sl := register(t, m, 7)
		dialSilent(t, m)
		waitFor(t, 10*time.Second, "two pending connections", func() bool {
			m.mu.Lock()
			defer m.mu.Unlock()
			return len(m.pending) == 2
		})
		accepted := acceptOne(sl)
		good, err := sl.Dial(raft.ServerAddress(m.Addr().String()), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer good.Close()
		select {
		case c, ok := <-accepted:
			if !ok {
				t.Fatal("Accept failed")
			}
			_ = c.Close()
		case <-time.After(20 * time.Second):
			t.Fatal("a good connection waited behind silent ones")
		}
		waitFor(t, 10*time.Second, "the good connection counted", func() bool { return m.Stats().Routed == 1 })
		if st := m.Stats(); st.BadHeader != 0 {
			t.Fatalf("stats %+v, want the silent connections still pending", st)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		const headerTimeout = 300 * time.Millisecond
		m := newMux(t, WithHeaderTimeout(headerTimeout))
		start := time.Now()
		silent, half := dialSilent(t, m)
		expectClosedByPeer(t, silent, 10*time.Second)
		expectClosedByPeer(t, half, 10*time.Second)
		if el := time.Since(start); el < headerTimeout*8/10 {
			t.Fatalf("silent client closed after %v, before the header timeout %v", el, headerTimeout)
		}
		waitFor(t, 10*time.Second, "2 bad headers counted", func() bool { return m.Stats().BadHeader == 2 })
	})
}

// TestUnknownGroup checks that a connection for a group that is not
// registered (yet) is closed, and that the group works once registered.
func TestUnknownGroup(t *testing.T) {
	a, b := newMux(t), newMux(t)
	la := register(t, a, 42)
	c, err := la.Dial(raft.ServerAddress(b.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	expectClosedByPeer(t, c, 10*time.Second)
	_ = c.Close()
	waitFor(t, 10*time.Second, "unknown group counted", func() bool { return b.Stats().UnknownGroup == 1 })

	lb := register(t, b, 42)
	accepted := acceptOne(lb)
	c2, err := la.Dial(raft.ServerAddress(b.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	select {
	case s, ok := <-accepted:
		if !ok {
			t.Fatal("Accept failed")
		}
		_ = s.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("registered group did not accept")
	}
}

// TestGroupCloseIsolated checks that closing one group's layer leaves the
// other groups working, closes that group's connections, and lets the
// group register again.
func TestGroupCloseIsolated(t *testing.T) {
	a, b := newMux(t), newMux(t)
	la1, la2 := register(t, a, 1), register(t, a, 2)
	lb1, lb2 := register(t, b, 1), register(t, b, 2)

	acc := acceptOne(lb1)
	c1, err := la1.Dial(raft.ServerAddress(b.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	s1, ok := <-acc
	if !ok {
		t.Fatal("accept failed")
	}

	blocked := make(chan error, 1)
	go func() {
		_, err := lb1.Accept()
		blocked <- err
	}()
	if err := lb1.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-blocked:
		if !errors.Is(err, ErrClosed) || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
	// The accepted connection of group 1 was closed with its layer: the
	// dialer sees EOF, and the server side's reads fail.
	expectClosedByPeer(t, c1, 10*time.Second)
	if _, err := s1.Read(make([]byte, 1)); err == nil {
		t.Fatal("read on a connection of a closed layer succeeded")
	}
	if _, err := lb1.Dial(raft.ServerAddress(a.Addr().String()), time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("Dial on closed layer: %v, want ErrClosed", err)
	}

	// Group 2 still works.
	acc2 := acceptOne(lb2)
	c2, err := la2.Dial(raft.ServerAddress(b.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if s2, ok := <-acc2; !ok {
		t.Fatal("group 2 accept failed after group 1 closed")
	} else {
		_ = s2.Close()
	}

	// Group 1 can register again.
	lb1b := register(t, b, 1)
	acc3 := acceptOne(lb1b)
	c3, err := la1.Dial(raft.ServerAddress(b.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if s3, ok := <-acc3; !ok {
		t.Fatal("re-registered group did not accept")
	} else {
		_ = s3.Close()
	}
}

func TestRegisterErrors(t *testing.T) {
	m := newMux(t)
	if _, err := m.Register(0); !errors.Is(err, ErrInvalidGroup) {
		t.Fatalf("Register(0): %v, want ErrInvalidGroup", err)
	}
	register(t, m, 5)
	if _, err := m.Register(5); !errors.Is(err, ErrGroupRegistered) {
		t.Fatalf("second Register(5): %v, want ErrGroupRegistered", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("StreamLayer for a registered group did not panic")
			}
		}()
		m.StreamLayer(5)
	}()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Register(6); !errors.Is(err, ErrClosed) {
		t.Fatalf("Register on closed mux: %v, want ErrClosed", err)
	}
	sl := m.StreamLayer(6)
	if _, err := sl.Accept(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Accept of a layer of a closed mux: %v, want ErrClosed", err)
	}
	if sl.Addr().String() != m.Addr().String() {
		t.Fatalf("layer Addr %v, mux Addr %v", sl.Addr(), m.Addr())
	}
}

// TestMuxCloseWhileAccepting closes the Mux while Accepts are blocked,
// headers are being read and connections are established, and checks that
// everything returns and is closed (goleak checks the goroutines).
func TestMuxCloseWhileAccepting(t *testing.T) {
	a := newMux(t)
	m, err := Listen("127.0.0.1:0", WithLogger(testLogger(t, "mux")))
	if err != nil {
		t.Fatal(err)
	}
	sl1, sl2 := register(t, m, 1), register(t, m, 2)
	la1 := register(t, a, 1)
	la3 := register(t, a, 3)

	// An established connection of group 1.
	acc := acceptOne(sl1)
	est, err := la1.Dial(raft.ServerAddress(m.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer est.Close()
	if s, ok := <-acc; !ok {
		t.Fatal("accept failed")
	} else {
		defer s.Close()
	}
	// A silent connection, pending in its header read.
	silent, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// A connection for group 3 (unknown, closed at once) and blocked Accepts.
	c3, err := la3.Dial(raft.ServerAddress(m.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	errs := make(chan error, 2)
	for _, sl := range []*StreamLayer{sl1, sl2} {
		go func() {
			_, err := sl.Accept()
			errs <- err
		}()
	}
	waitFor(t, 10*time.Second, "the silent connection to be pending", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.pending) >= 1
	})

	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Fatalf("Accept after Mux.Close: %v, want ErrClosed", err)
		}
	}
	expectClosedByPeer(t, est, 10*time.Second)
	expectClosedByPeer(t, silent, 10*time.Second)
	if _, err := net.DialTimeout("tcp", m.Addr().String(), time.Second); err == nil {
		t.Fatal("listener still accepts after Close")
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestMaxPending(t *testing.T) {
	m := newMux(t, WithMaxPending(1), WithHeaderTimeout(10*time.Second))
	first, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	waitFor(t, 10*time.Second, "one pending connection", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.pending) == 1
	})
	second, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	expectClosedByPeer(t, second, 10*time.Second)
	if st := m.Stats(); st.Dropped != 1 {
		t.Fatalf("stats %+v, want 1 dropped", st)
	}
}

func TestNotAdvertisable(t *testing.T) {
	if _, err := Listen("0.0.0.0:0"); !errors.Is(err, ErrNotAdvertisable) {
		t.Fatalf("Listen(0.0.0.0:0): %v, want ErrNotAdvertisable", err)
	}
	adv := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7000}
	m, err := Listen("0.0.0.0:0", WithAdvertise(adv))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := m.StreamLayer(1).Addr().String(); got != adv.String() {
		t.Fatalf("Addr = %s, want %s", got, adv)
	}
}
