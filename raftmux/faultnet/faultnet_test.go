package faultnet_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/goleak"

	"github.com/linkraft/linkraft/raftmux"
	"github.com/linkraft/linkraft/raftmux/faultnet"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// node is one side of a test: a Mux with group 1's layer wrapped by the
// fault network, and an echo server on it that records what it received.
type node struct {
	name  string
	mux   *raftmux.Mux
	layer raft.StreamLayer
	recv  chan []byte // every chunk the echo server read
}

func (n *node) addr() raft.ServerAddress { return raft.ServerAddress(n.mux.Addr().String()) }

func newNode(t *testing.T, fn *faultnet.Network, name string) *node {
	t.Helper()
	m, err := raftmux.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, mux: m, recv: make(chan []byte, 1024)}
	n.layer = fn.WrapProvider(name, m).StreamLayer(1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the echo server: one goroutine per accepted connection
		defer wg.Done()
		for {
			c, err := n.layer.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					k, err := c.Read(buf)
					if k > 0 {
						n.recv <- bytes.Clone(buf[:k])
						if _, werr := c.Write(buf[:k]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		_ = n.layer.Close()
		_ = m.Close()
		wg.Wait()
	})
	return n
}

func dial(t *testing.T, from, to *node) net.Conn {
	t.Helper()
	c, err := from.layer.Dial(to.addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s -> %s: %v", from.name, to.name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// echo writes msg on c and reads the echo back within timeout.
func echo(c net.Conn, msg string, timeout time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if string(buf) != msg {
		return fmt.Errorf("echo %q, want %q", buf, msg)
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// drain empties n's record of received bytes.
func drain(n *node) {
	for {
		select {
		case <-n.recv:
		default:
			return
		}
	}
}

// expectNothing checks that n receives nothing for d.
func expectNothing(t *testing.T, n *node, d time.Duration) {
	t.Helper()
	select {
	case b := <-n.recv:
		t.Fatalf("%s received %q through a fault", n.name, b)
	case <-time.After(d):
	}
}

func setup(t *testing.T) (*faultnet.Network, *node, *node) {
	fn := faultnet.New()
	return fn, newNode(t, fn, "a"), newNode(t, fn, "b")
}

func TestHealthy(t *testing.T) {
	_, a, b := setup(t)
	if err := echo(dial(t, a, b), "hello", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := echo(dial(t, b, a), "hello", 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestDrop(t *testing.T) {
	fn, a, b := setup(t)
	ab := dial(t, a, b)
	ba := dial(t, b, a)
	if err := echo(ab, "x", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	fn.Drop("a", "b")

	// Existing connections that use a->b in either direction are closed.
	for _, c := range []net.Conn{ab, ba} {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("read on a dropped link: %v, want closed", err)
		}
	}
	if _, err := a.layer.Dial(b.addr(), time.Second); !errors.Is(err, faultnet.ErrLinkDown) {
		t.Fatalf("dial over a dropped link: %v, want ErrLinkDown", err)
	}

	// One way: b still reaches a's server, but a's answers are lost.
	drain(a)
	ba2 := dial(t, b, a)
	err := echo(ba2, "req", 10*time.Second)
	if !errors.Is(err, faultnet.ErrLinkDown) {
		t.Fatalf("echo b->a with a->b dropped: %v, want ErrLinkDown", err)
	}
	select {
	case got := <-a.recv:
		if string(got) != "req" {
			t.Fatalf("a received %q, want %q", got, "req")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b's request did not reach a over the healthy direction")
	}

	fn.HealLink("a", "b")
	if err := echo(dial(t, a, b), "back", 10*time.Second); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}

func TestBlackhole(t *testing.T) {
	fn, a, b := setup(t)
	ab := dial(t, a, b)
	if err := echo(ab, "x", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	drain(b)
	fn.Blackhole("a", "b")

	// Writes succeed, nothing arrives, the read times out.
	err := echo(ab, "lost", 300*time.Millisecond)
	if !isTimeout(err) {
		t.Fatalf("echo over a blackhole: %v, want a timeout", err)
	}
	// New connections are swallowed too.
	ab2 := dial(t, a, b)
	if err := echo(ab2, "lost2", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("echo over a blackhole on a new conn: %v, want a timeout", err)
	}
	expectNothing(t, b, 200*time.Millisecond)

	// After heal the torn connections are closed, never resumed mid-stream.
	fn.Heal()
	for _, c := range []net.Conn{ab, ab2} {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("read on a torn connection after heal: %v, want closed", err)
		}
	}
	if err := echo(dial(t, a, b), "ok", 10*time.Second); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}

func TestBlackholeReverse(t *testing.T) {
	fn, a, b := setup(t)
	ab := dial(t, a, b)
	drain(b)
	fn.Blackhole("b", "a")
	// a's request arrives, b's answer is swallowed.
	if err := echo(ab, "q", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("echo with b->a blackholed: %v, want a timeout", err)
	}
	select {
	case got := <-b.recv:
		if string(got) != "q" {
			t.Fatalf("b received %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach b")
	}
}

func TestDelay(t *testing.T) {
	const d = 150 * time.Millisecond
	fn, a, b := setup(t)
	ab := dial(t, a, b)
	ba := dial(t, b, a)
	fn.Delay("a", "b", d)
	// a->b is delayed on a's writes, and on b's reads of a's answers.
	for _, c := range []net.Conn{ab, ba} {
		start := time.Now()
		if err := echo(c, "slow", 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < d {
			t.Fatalf("round trip %v, want at least the delay %v", el, d)
		}
	}
	if got := fn.Link("a", "b"); got.Delay != d || got.Drop || got.Blackhole {
		t.Fatalf("Link(a, b) = %+v", got)
	}
	fn.Delay("a", "b", 0)
	if got := fn.Link("a", "b"); got != (faultnet.LinkState{}) {
		t.Fatalf("Link(a, b) after removing the delay = %+v", got)
	}
}

func TestPartitionAndIsolate(t *testing.T) {
	fn := faultnet.New()
	a, b, c := newNode(t, fn, "a"), newNode(t, fn, "b"), newNode(t, fn, "c")
	fn.Partition([]string{"a"}, []string{"b", "c"})
	if _, err := a.layer.Dial(b.addr(), time.Second); !errors.Is(err, faultnet.ErrLinkDown) {
		t.Fatalf("a->b across the partition: %v", err)
	}
	if _, err := c.layer.Dial(a.addr(), time.Second); !errors.Is(err, faultnet.ErrLinkDown) {
		t.Fatalf("c->a across the partition: %v", err)
	}
	if err := echo(dial(t, b, c), "same side", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	fn.Heal()
	fn.Isolate("c")
	if err := echo(dial(t, a, b), "ab", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for _, from := range []*node{a, b} {
		if _, err := from.layer.Dial(c.addr(), time.Second); !errors.Is(err, faultnet.ErrLinkDown) {
			t.Fatalf("%s->c with c isolated: %v", from.name, err)
		}
		if _, err := c.layer.Dial(from.addr(), time.Second); !errors.Is(err, faultnet.ErrLinkDown) {
			t.Fatalf("c->%s with c isolated: %v", from.name, err)
		}
	}
	fn.Heal()
	if err := echo(dial(t, c, a), "ca", 10*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestCutOnTransport(t *testing.T) {
	fn, a, b := setup(t)
	_ = a
	// A raft transport on a second group, over the same nodes' muxes.
	ta := raft.NewNetworkTransport(fn.WrapProvider("a", a.mux).StreamLayer(2), 2, 500*time.Millisecond, io.Discard)
	tb := raft.NewNetworkTransport(fn.WrapProvider("b", b.mux).StreamLayer(2), 2, 500*time.Millisecond, io.Discard)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case rpc := <-tb.Consumer():
				rpc.Respond(&raft.RequestVoteResponse{Term: 7, Granted: true}, nil)
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = ta.Close()
		_ = tb.Close()
		close(stop)
		wg.Wait()
	})
	vote := func() error {
		var resp raft.RequestVoteResponse
		err := ta.RequestVote("b", b.addr(), &raft.RequestVoteRequest{Term: 7}, &resp)
		if err == nil && (!resp.Granted || resp.Term != 7) {
			return fmt.Errorf("bad response %+v", resp)
		}
		return err
	}
	if err := vote(); err != nil {
		t.Fatal(err)
	}
	fn.Cut("a", "b")
	if err := vote(); !errors.Is(err, faultnet.ErrLinkDown) {
		t.Fatalf("RPC over a cut link: %v, want ErrLinkDown", err)
	}
	fn.Heal()
	fn.Blackhole("a", "b")
	start := time.Now()
	// (raft's msgpack codec does not wrap the deadline error, so the
	// timeout shows as the time it took.)
	if err := vote(); err == nil || errors.Is(err, faultnet.ErrLinkDown) {
		t.Fatalf("RPC over a blackhole: %v, want a timeout", err)
	}
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Fatalf("blackholed RPC failed after %v, before the transport timeout", el)
	}
	fn.Heal()
	if err := vote(); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}

// TestLayerCloseClosesConns checks that closing a wrapped layer closes the
// connections dialed through it, and that faults are no longer tracked for
// them.
func TestLayerCloseClosesConns(t *testing.T) {
	fn, a, b := setup(t)
	extra := fn.WrapLayer("a", a.mux.StreamLayer(3))
	// Group 3 is not registered on b: the connection is accepted by b's mux
	// and closed there, so register it first.
	lb := b.mux.StreamLayer(3)
	defer lb.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := lb.Accept()
		if err == nil {
			acc <- c
		}
		close(acc)
	}()
	c, err := extra.Dial(b.addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if s, ok := <-acc; ok {
		defer s.Close()
	}
	if err := extra.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write on a connection of a closed layer: %v, want net.ErrClosed", err)
	}
}
