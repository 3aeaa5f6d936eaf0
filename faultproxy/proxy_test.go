package faultproxy

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// server is a TCP server on a free port that hands every accepted connection
// to the test.
type server struct {
	ln    net.Listener
	conns chan net.Conn
	wg    sync.WaitGroup
}

func newServer(t *testing.T) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln, conns: make(chan net.Conn, 16)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns <- c
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		s.wg.Wait()
		close(s.conns)
		for c := range s.conns {
			_ = c.Close()
		}
	})
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

// accept waits for the next connection the proxy made to the server.
func (s *server) accept(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		t.Cleanup(func() { _ = c.Close() })
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection reached the server")
		return nil
	}
}

// echo serves c by echoing until it ends; the goroutine ends with c.
func echo(t *testing.T, c net.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(c, c)
		_ = c.Close()
	}()
	t.Cleanup(func() { _ = c.Close(); <-done })
}

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New("127.0.0.1:0", target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func write(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
}

// expectRead reads exactly len(want) bytes within a deadline.
func expectRead(t *testing.T, c net.Conn, want string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read %q: %v", want, err)
	}
	if string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// expectSilence checks that nothing arrives on c for d.
func expectSilence(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("expected silence, got %d bytes %q, err %v", n, buf[:n], err)
	}
}

// expectBroken checks that c was closed or reset by the proxy: a read ends
// with EOF or an error that is not a timeout.
func expectBroken(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	for {
		n, err := c.Read(buf)
		if err == nil {
			if n > 0 {
				t.Fatalf("expected a broken connection, read %q", buf[:n])
			}
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("expected a broken connection, the read timed out")
		}
		return
	}
}

// expectRefusedOrBroken dials p and expects the connection to be reset: the
// reset may arrive before the dial completes, which fails the dial.
func expectRefusedOrBroken(t *testing.T, p *Proxy) {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		return
	}
	defer func() { _ = c.Close() }()
	expectBroken(t, c)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// roundTrip checks a healthy echo through the proxy on a fresh connection.
func roundTrip(t *testing.T, p *Proxy, s *server) {
	t.Helper()
	c := dial(t, p)
	echo(t, s.accept(t))
	write(t, c, "ping")
	expectRead(t, c, "ping")
}

func TestForwardsBothWaysIntact(t *testing.T) {
	s := newServer(t)
	p := newProxy(t, s.addr())
	c := dial(t, p)
	echo(t, s.accept(t))

	payload := make([]byte, 1<<20)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		errc <- err
	}()
	got := make([]byte, len(payload))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("payload changed in transit")
	}
	// The proxy counts a chunk after writing it, so the counters may trail
	// the bytes the client already read by a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := p.Stats()
		if st.BytesUp == int64(len(payload)) && st.BytesDown == int64(len(payload)) && st.Accepted == 1 && st.Active == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHalfClosePassesThrough(t *testing.T) {
	s := newServer(t)
	p := newProxy(t, s.addr())
	c := dial(t, p)
	sc := s.accept(t)

	write(t, c, "request")
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = sc.SetReadDeadline(time.Now().Add(5 * time.Second))
	req, err := io.ReadAll(sc) // ends at the client's half-close
	if err != nil || string(req) != "request" {
		t.Fatalf("server read %q, %v", req, err)
	}
	write(t, sc, "response")
	_ = sc.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := io.ReadAll(c)
	if err != nil || string(resp) != "response" {
		t.Fatalf("client read %q, %v", resp, err)
	}
	waitFor(t, "the link to end", func() bool { return p.Stats().Active == 0 })
}

func TestBlackholeBothWaysAndHeal(t *testing.T) {
	s := newServer(t)
	p := newProxy(t, s.addr())
	c := dial(t, p)
	sc := s.accept(t)
	write(t, c, "hello")
	expectRead(t, sc, "hello")

	p.Blackhole()
	write(t, c, "lost-up") // accepted by the proxy ...
	write(t, sc, "lost-down")
	expectSilence(t, sc, 200*time.Millisecond) // ... and never delivered
	expectSilence(t, c, 200*time.Millisecond)
	waitFor(t, "dropped bytes counted", func() bool {
		st := p.Stats()
		return st.DroppedUp == int64(len("lost-up")) && st.DroppedDown == int64(len("lost-down"))
	})

	// A new connection during the blackhole is forwarded but silent too.
	c2 := dial(t, p)
	sc2 := s.accept(t)
	write(t, c2, "x")
	expectSilence(t, sc2, 100*time.Millisecond)

	p.Heal()
	// Both connections lost bytes: their streams have gaps, so they are reset.
	expectBroken(t, c)
	expectBroken(t, c2)
	roundTrip(t, p, s)
}

func TestBlackholeUpIsOneWay(t *testing.T) {
	s := newServer(t)
	p := newProxy(t, s.addr())
	c := dial(t, p)
	sc := s.accept(t)

	p.BlackholeUp()
	write(t, c, "request")
	expectSilence(t, sc, 200*time.Millisecond)
	write(t, sc, "push") // the other direction still flows
	expectRead(t, c, "push")
	// The proxy counts a chunk after writing it: poll the counters.
	waitFor(t, "the pushed bytes counted down", func() bool { return p.Stats().BytesDown == 4 })
	if st := p.Stats(); st.DroppedDown != 0 || st.BytesUp != 0 {
		t.Fatalf("stats %+v", st)
	}
	p.Heal()
	expectBroken(t, c)
}

func TestBlackholeDownIsOneWay(t *testing.T) {
	s := newServer(t)
	p := newProxy(t, s.addr())
	c := dial(t, p)
	sc := s.accept(t)

	p.BlackholeDown()
	write(t, c, "request") // requests arrive ...
	expectRead(t, sc, "request")
	write(t, sc, "response") // ... responses are lost
	expectSilence(t, c, 200*time.Millisecond)
	p.Heal()
	expectBroken(t, c)
	roundTrip(t, p, s)
}

func TestHealKeepsConnectionsThatLostNothing(t *testing.T) {
	s := newServer(t)
	p := newProxy(t, s.addr())
	c := dial(t, p)
	echo(t, s.accept(t))
	write(t, c, "a")
	expectRead(t, c, "a")

	p.Blackhole() // nothing is sent while it lasts
	p.Heal()
	write(t, c, "b")
	expectRead(t, c, "b")
	if st := p.Stats(); st.Resets != 0 {
		t.Fatalf("a connection without a gap was reset: %+v", st)
	}
}

func TestDropResetsLiveAndNewConnections(t *testing.T) {
	s := newServer(t)
	p := newProxy(t, s.addr())
	c := dial(t, p)
	sc := s.accept(t)
	write(t, c, "hi")
	expectRead(t, sc, "hi")

	p.Drop()
	expectBroken(t, c)
	expectBroken(t, sc)

	// New connections are accepted and reset at once.
	expectRefusedOrBroken(t, p)
	waitFor(t, "both resets counted", func() bool { return p.Stats().Resets >= 2 })

	p.Heal()
	roundTrip(t, p, s)
}

func TestDelayOneDirection(t *testing.T) {
	const delay = 300 * time.Millisecond
	s := newServer(t)
	p := newProxy(t, s.addr())
	c := dial(t, p)
	sc := s.accept(t)
	write(t, c, "warm")
	expectRead(t, sc, "warm")

	p.DelayDirection(Up, delay, 0)
	start := time.Now()
	write(t, c, "slow")
	expectRead(t, sc, "slow")
	if el := time.Since(start); el < delay {
		t.Fatalf("up took %v, want at least %v", el, delay)
	}

	start = time.Now()
	write(t, sc, "fast")
	expectRead(t, c, "fast")
	if el := time.Since(start); el >= delay {
		t.Fatalf("down took %v although only up is delayed by %v", el, delay)
	}

	p.Heal()
	start = time.Now()
	write(t, c, "healed")
	expectRead(t, sc, "healed")
	if el := time.Since(start); el >= delay {
		t.Fatalf("up took %v after heal", el)
	}
}

func TestDelayDoesNotAccumulate(t *testing.T) {
	const delay = 200 * time.Millisecond
	s := newServer(t)
	p := newProxy(t, s.addr())
	c := dial(t, p)
	sc := s.accept(t)
	p.Delay(delay, 0)

	start := time.Now()
	const n = 5
	pace := time.NewTicker(40 * time.Millisecond) // workload pacing: one chunk per tick
	defer pace.Stop()
	for i := range n {
		write(t, c, fmt.Sprintf("m%d;", i))
		<-pace.C
	}
	var want bytes.Buffer
	for i := range n {
		fmt.Fprintf(&want, "m%d;", i)
	}
	expectRead(t, sc, want.String())
	el := time.Since(start)
	if el < delay {
		t.Fatalf("delivered after %v, want at least %v", el, delay)
	}
	// Without accumulation: about 4 ticks plus one delay. With it: n delays.
	if el >= n*delay {
		t.Fatalf("delivered after %v: the delays of %d chunks added up", el, n)
	}
}

func TestJitterKeepsOrder(t *testing.T) {
	s := newServer(t)
	p := newProxy(t, s.addr())
	c := dial(t, p)
	sc := s.accept(t)
	p.Delay(time.Millisecond, 20*time.Millisecond)

	var want bytes.Buffer
	for i := range 200 {
		msg := fmt.Sprintf("%04d", i)
		want.WriteString(msg)
		write(t, c, msg)
	}
	expectRead(t, sc, want.String())
}

func TestPauseAndResumeAccept(t *testing.T) {
	s := newServer(t)
	p := newProxy(t, s.addr())
	p.PauseAccept()

	c := dial(t, p) // the kernel completes the handshake
	write(t, c, "queued")
	select {
	case sc := <-s.conns:
		_ = sc.Close()
		t.Fatal("a connection was forwarded while accepting was paused")
	case <-time.After(200 * time.Millisecond):
	}
	expectSilence(t, c, 10*time.Millisecond)

	p.ResumeAccept()
	sc := s.accept(t)
	expectRead(t, sc, "queued")
	write(t, sc, "served")
	expectRead(t, c, "served")
}

func TestHealResumesAccepting(t *testing.T) {
	s := newServer(t)
	p := newProxy(t, s.addr())
	p.PauseAccept()
	p.PauseAccept() // idempotent
	c := dial(t, p)
	p.Heal()
	echo(t, s.accept(t))
	write(t, c, "ok")
	expectRead(t, c, "ok")
}

func TestCloseWithLiveConnections(t *testing.T) {
	s := newServer(t)
	p, err := New("127.0.0.1:0", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	var clients []net.Conn
	for range 3 {
		c := dial(t, p)
		echo(t, s.accept(t))
		write(t, c, "x")
		expectRead(t, c, "x")
		clients = append(clients, c)
	}
	// One connection stuck in a delay queue, one in a blackhole, one
	// waiting in the paused backlog.
	p.DelayDirection(Up, time.Hour, 0)
	write(t, clients[0], "never")
	p.BlackholeDown()
	p.PauseAccept()
	pending := dial(t, p)

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	for _, c := range append(clients, pending) {
		expectBroken(t, c)
	}
	if st := p.Stats(); st.Active != 0 {
		t.Fatalf("links still active after Close: %+v", st)
	}
	if _, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		t.Fatal("the listener still accepts after Close")
	}
}

func TestUnreachableTargetResetsClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close() // nothing listens there any more

	p := newProxy(t, dead)
	expectRefusedOrBroken(t, p)
	waitFor(t, "the link to end", func() bool { return p.Stats().Active == 0 })
}

func TestTargetComesUpLater(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	p := newProxy(t, addr)

	expectRefusedOrBroken(t, p)

	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on the freed port again: %v", err)
	}
	s := &server{ln: ln2, conns: make(chan net.Conn, 4)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln2.Accept()
			if err != nil {
				return
			}
			s.conns <- c
		}
	}()
	t.Cleanup(func() { _ = ln2.Close(); <-done })
	roundTrip(t, p, s)
}

func TestDirectionString(t *testing.T) {
	for d, want := range map[Direction]string{Up: "up", Down: "down", Direction(7): "Direction(7)"} {
		if got := d.String(); got != want {
			t.Errorf("%d: %q, want %q", int(d), got, want)
		}
	}
}

func TestNewFailsOnBadAddress(t *testing.T) {
	if _, err := New("256.0.0.1:bad", "127.0.0.1:1"); err == nil {
		t.Fatal("New accepted an invalid listen address")
	}
}
