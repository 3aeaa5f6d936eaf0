// Package faultproxy is a TCP proxy that injects network faults between a
// client and a server, for robustness tests of the internal RPC (router ->
// storage node) and of anything else that speaks TCP.
//
// A [Proxy] listens on one address and forwards every accepted connection to
// one target address, both ways. Faults are switched at run time and apply to
// the connections that already exist as well as to new ones. The design
// follows the TCP bridge of etcd's integration test framework.
//
// # Directions
//
// Up is the client -> target direction (requests), Down is the target ->
// client direction (responses). Every fault except Drop and PauseAccept can be
// set per direction.
//
// # Faults
//
//   - Blackhole (Up, Down or both): bytes are read from the sender, so its
//     writes succeed, and thrown away, so calls time out. A connection that
//     lost bytes has a gap in its byte stream; real TCP never delivers such a
//     stream, so the proxy resets it when the blackhole is lifted ([Proxy.Heal])
//     and no peer ever decodes a torn stream. A connection that lost nothing
//     survives the heal. This models a partition that outlives the TCP
//     connections it cuts: callers must time out and redial.
//   - Drop: every connection is reset at once (RST, not FIN) and new
//     connections are accepted and reset, as if the server side crashed or a
//     firewall rejected the traffic, until [Proxy.Heal].
//   - Delay (Up, Down or both): every chunk of bytes is forwarded a fixed
//     delay plus a uniform random jitter after it arrived. Delays do not add
//     up along a stream (a chunk waits for its own due time, not behind the
//     previous chunk's wait), and the byte order is kept even with jitter.
//   - PauseAccept: the listener stays open but no new connection is taken
//     from the kernel backlog; clients connect and then hang, as against an
//     overloaded server. [Proxy.ResumeAccept] serves them.
//
// [Proxy.Heal] undoes every fault. [Proxy.Close] closes the listener and every
// connection and waits for every goroutine the proxy started.
//
// A Proxy is safe for concurrent use.
package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Direction names one direction of the forwarded traffic.
type Direction int

const (
	// Up is the client -> target direction.
	Up Direction = iota
	// Down is the target -> client direction.
	Down
)

// String implements fmt.Stringer.
func (d Direction) String() string {
	switch d {
	case Up:
		return "up"
	case Down:
		return "down"
	default:
		return fmt.Sprintf("Direction(%d)", int(d))
	}
}

// ErrClosed is returned by operations on a closed Proxy.
var ErrClosed = errors.New("faultproxy: proxy closed")

// DialTimeout bounds the proxy's dial to the target for each accepted
// connection; a client whose target cannot be reached in time is reset.
const DialTimeout = 5 * time.Second

// chunkSize is the largest piece of a stream read at once.
const chunkSize = 32 << 10

// queueLen is how many chunks may wait in a direction's delay queue before
// the reader stops reading (back-pressure to the sender).
const queueLen = 64

// dirState is the fault state of one direction. It is replaced, never
// mutated, so readers load it without a lock.
type dirState struct {
	blackhole bool
	delay     time.Duration
	jitter    time.Duration
}

// Stats are counters of a Proxy's traffic since it was created.
type Stats struct {
	// Accepted is the number of client connections accepted (including
	// those reset by Drop).
	Accepted int64
	// Active is the number of connections being forwarded now.
	Active int64
	// BytesUp and BytesDown are bytes delivered in each direction.
	BytesUp, BytesDown int64
	// DroppedUp and DroppedDown are bytes thrown away by a blackhole.
	DroppedUp, DroppedDown int64
	// Resets is the number of connections the proxy reset (Drop, heal of a
	// torn stream, Close).
	Resets int64
}

// Proxy forwards TCP connections from its listen address to a target and
// injects faults. Create it with New.
type Proxy struct {
	ln     net.Listener
	target string

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loop and every connection's goroutines

	dirs [2]atomic.Pointer[dirState]

	mu          sync.Mutex
	links       map[*link]struct{}
	dropping    bool
	paused      bool
	resumeCh    chan struct{} // closed when accepting resumes or the proxy closes
	closed      bool
	closeOnce   sync.Once
	accepted    atomic.Int64
	resets      atomic.Int64
	bytes       [2]atomic.Int64
	dropped     [2]atomic.Int64
	activeLinks atomic.Int64
}

// New starts a proxy listening on listenAddr (for example "127.0.0.1:0")
// that forwards every connection to targetAddr. The target is dialed per
// accepted connection, so it need not be up yet.
func New(listenAddr, targetAddr string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen on %s: %w", listenAddr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		ln:       ln,
		target:   targetAddr,
		ctx:      ctx,
		cancel:   cancel,
		links:    make(map[*link]struct{}),
		resumeCh: make(chan struct{}),
	}
	close(p.resumeCh) // not paused
	for i := range p.dirs {
		p.dirs[i].Store(&dirState{})
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the address the proxy listens on; clients dial it instead of
// the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target returns the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Stats returns the proxy's counters.
func (p *Proxy) Stats() Stats {
	return Stats{
		Accepted:    p.accepted.Load(),
		Active:      p.activeLinks.Load(),
		BytesUp:     p.bytes[Up].Load(),
		BytesDown:   p.bytes[Down].Load(),
		DroppedUp:   p.dropped[Up].Load(),
		DroppedDown: p.dropped[Down].Load(),
		Resets:      p.resets.Load(),
	}
}

// Blackhole swallows the traffic of both directions.
func (p *Proxy) Blackhole() {
	p.BlackholeUp()
	p.BlackholeDown()
}

// BlackholeUp swallows the client -> target traffic: requests are lost,
// responses to earlier requests still flow.
func (p *Proxy) BlackholeUp() { p.update(Up, func(s *dirState) { s.blackhole = true }) }

// BlackholeDown swallows the target -> client traffic: requests arrive and
// are served, their responses are lost.
func (p *Proxy) BlackholeDown() { p.update(Down, func(s *dirState) { s.blackhole = true }) }

// Delay delays both directions by d plus a uniform random jitter in
// [0, jitter). Delay(0, 0) removes the delay.
func (p *Proxy) Delay(d, jitter time.Duration) {
	p.DelayDirection(Up, d, jitter)
	p.DelayDirection(Down, d, jitter)
}

// DelayDirection delays one direction by d plus a uniform random jitter in
// [0, jitter). A negative duration counts as zero.
func (p *Proxy) DelayDirection(dir Direction, d, jitter time.Duration) {
	d, jitter = max(d, 0), max(jitter, 0)
	p.update(dir, func(s *dirState) { s.delay, s.jitter = d, jitter })
}

// Drop resets every connection now and resets every new connection right
// after accepting it, until Heal.
func (p *Proxy) Drop() {
	p.mu.Lock()
	p.dropping = true
	victims := p.snapshotLinksLocked()
	p.mu.Unlock()
	for _, l := range victims {
		l.reset()
	}
}

// PauseAccept stops taking connections from the listen backlog. Clients can
// still connect (the kernel completes the handshake) but nothing is
// forwarded for them until ResumeAccept or Heal. Existing connections are
// unaffected.
func (p *Proxy) PauseAccept() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused && !p.closed {
		p.paused = true
		p.resumeCh = make(chan struct{})
	}
}

// ResumeAccept undoes PauseAccept: connections waiting in the backlog are
// accepted and forwarded.
func (p *Proxy) ResumeAccept() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resumeLocked()
}

func (p *Proxy) resumeLocked() {
	if p.paused {
		p.paused = false
		close(p.resumeCh)
	}
}

// Heal undoes every fault: no blackhole, no delay, no drop, accepting. A
// connection that lost bytes to a blackhole is reset (its stream has a gap);
// every other connection goes on.
func (p *Proxy) Heal() {
	p.mu.Lock()
	for i := range p.dirs {
		p.dirs[i].Store(&dirState{})
	}
	p.dropping = false
	p.resumeLocked()
	links := p.snapshotLinksLocked()
	p.mu.Unlock()
	for _, l := range links {
		if l.torn.Load() {
			l.reset()
		}
	}
}

// Close stops the proxy: it closes the listener, resets every connection and
// waits for every goroutine it started. It is safe to call more than once.
func (p *Proxy) Close() error {
	var err error
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.resumeLocked()
		links := p.snapshotLinksLocked()
		p.mu.Unlock()
		p.cancel()
		if cerr := p.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = fmt.Errorf("faultproxy: close listener: %w", cerr)
		}
		for _, l := range links {
			l.reset()
		}
	})
	p.wg.Wait()
	return err
}

func (p *Proxy) update(dir Direction, f func(*dirState)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := *p.dirs[dir].Load()
	f(&s)
	p.dirs[dir].Store(&s)
}

func (p *Proxy) snapshotLinksLocked() []*link {
	out := make([]*link, 0, len(p.links))
	for l := range p.links {
		out = append(out, l)
	}
	return out
}

// acceptLoop owns the listener. It runs until the listener is closed.
func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		if !p.waitAccepting() {
			return
		}
		c, err := p.ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient accept error (for example too many open files):
			// back off briefly instead of spinning.
			select {
			case <-time.After(10 * time.Millisecond):
			case <-p.ctx.Done():
				return
			}
			continue
		}
		p.accepted.Add(1)
		// PauseAccept may have been called while Accept was blocked: hold
		// the connection as if it were still in the backlog.
		if !p.waitAccepting() {
			resetConn(c)
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			resetConn(c)
			return
		}
		if p.dropping {
			p.mu.Unlock()
			p.resets.Add(1)
			resetConn(c)
			continue
		}
		lctx, lcancel := context.WithCancel(p.ctx)
		l := &link{p: p, client: c, ctx: lctx, cancel: lcancel}
		p.links[l] = struct{}{}
		p.activeLinks.Add(1)
		p.wg.Add(1)
		p.mu.Unlock()
		go l.run()
	}
}

// waitAccepting blocks while accepting is paused. It reports false once the
// proxy is closed.
func (p *Proxy) waitAccepting() bool {
	p.mu.Lock()
	ch := p.resumeCh
	p.mu.Unlock()
	select {
	case <-ch:
	case <-p.ctx.Done():
		return false
	}
	return p.ctx.Err() == nil
}

// resetConn closes c with an RST instead of a FIN when it is TCP.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// link is one proxied connection: the client side, the target side and the
// goroutines forwarding each direction.
type link struct {
	p      *Proxy
	client net.Conn

	mu      sync.Mutex
	server  net.Conn // nil until dialed
	closing bool     // close ran; a server dialed later is reset by run

	torn      atomic.Bool     // a blackhole dropped bytes of this stream
	ctx       context.Context // canceled when the link closes
	cancel    context.CancelFunc
	closeOnce sync.Once
}

// run dials the target and forwards both directions until both end or the
// link is reset. It is started with p.wg.Add(1) done by the caller.
func (l *link) run() {
	p := l.p
	defer func() {
		l.close(false)
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
		p.activeLinks.Add(-1)
		p.wg.Done()
	}()

	ctx, cancel := context.WithTimeout(l.ctx, DialTimeout)
	var d net.Dialer
	server, err := d.DialContext(ctx, "tcp", p.target)
	cancel()
	if err != nil {
		l.close(true)
		return
	}
	l.mu.Lock()
	if l.closing { // reset while dialing
		l.mu.Unlock()
		resetConn(server)
		return
	}
	l.server = server
	l.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); l.pipe(Up, l.client, server) }()
	go func() { defer wg.Done(); l.pipe(Down, server, l.client) }()
	wg.Wait()
}

// close closes both sides once; with rst the sides are reset.
func (l *link) close(rst bool) {
	l.closeOnce.Do(func() {
		l.cancel()
		l.mu.Lock()
		l.closing = true
		server := l.server
		l.mu.Unlock()
		for _, c := range []net.Conn{l.client, server} {
			if c == nil {
				continue
			}
			if rst {
				resetConn(c)
			} else {
				_ = c.Close()
			}
		}
	})
}

// reset tears the link down with RSTs.
func (l *link) reset() {
	l.p.resets.Add(1)
	l.close(true)
}

// chunk is a piece of the stream waiting for its due time.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe forwards one direction: a reader stamps each chunk with its due time
// and a writer delivers it then, or drops it while the direction is
// blackholed. When the source ends, the destination's write side is closed
// (half-close) so the peer sees EOF; any error ends the whole link.
func (l *link) pipe(dir Direction, src, dst net.Conn) {
	queue := make(chan chunk, queueLen)
	readerDone := make(chan struct{})
	var eof atomic.Bool // the source ended cleanly
	go func() {         // reader; the writer below waits for it
		defer close(readerDone)
		defer close(queue)
		var lastDue time.Time
		for {
			buf := make([]byte, chunkSize)
			n, err := src.Read(buf)
			if n > 0 {
				st := l.p.dirs[dir].Load()
				due := time.Now()
				if st.delay > 0 || st.jitter > 0 {
					due = due.Add(st.delay)
					if st.jitter > 0 {
						due = due.Add(rand.N(st.jitter))
					}
				}
				if due.Before(lastDue) { // keep the byte order under jitter
					due = lastDue
				}
				lastDue = due
				select {
				case queue <- chunk{data: buf[:n], due: due}:
				case <-l.ctx.Done():
					return
				}
			}
			if err != nil {
				eof.Store(errors.Is(err, io.EOF))
				return
			}
		}
	}()

	if l.writeLoop(dir, queue, dst) && eof.Load() {
		// The queue closed, so the reader has ended: a clean EOF from the
		// source with everything delivered. Pass the half-close on.
		if tc, isTCP := dst.(*net.TCPConn); isTCP && tc.CloseWrite() == nil {
			<-readerDone
			return
		}
	}
	l.close(false) // unblocks the reader if it still runs
	<-readerDone
}

// writeLoop delivers queued chunks until the queue is closed (it returns
// true) or the link fails or is reset (false).
func (l *link) writeLoop(dir Direction, queue <-chan chunk, dst net.Conn) bool {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var c chunk
		var open bool
		select {
		case c, open = <-queue:
			if !open {
				select {
				case <-l.ctx.Done():
					return false
				default:
					return true
				}
			}
		case <-l.ctx.Done():
			return false
		}
		if wait := time.Until(c.due); wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-timer.C:
			case <-l.ctx.Done():
				return false
			}
		}
		if l.p.dirs[dir].Load().blackhole {
			l.torn.Store(true)
			l.p.dropped[dir].Add(int64(len(c.data)))
			continue
		}
		if _, err := dst.Write(c.data); err != nil {
			return false
		}
		l.p.bytes[dir].Add(int64(len(c.data)))
	}
}
