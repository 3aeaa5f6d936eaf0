package raftmux

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// StreamLayer is the raft.StreamLayer of one group on a Mux. Accept returns
// the connections that peers dialed for this group; Dial connects to a peer's
// Mux and writes the group's header. Addr is the Mux's address.
//
// The layer tracks every connection it dialed or accepted and closes them all
// in Close, so a closed raft.NetworkTransport leaves no connection (and no
// connection handler goroutine, here or on the peer) behind.
type StreamLayer struct {
	mux      *Mux
	group    uint64
	acceptCh chan net.Conn // unbuffered: a connection is either accepted or closed by its route goroutine
	done     chan struct{} // closed by Close

	mu     sync.Mutex
	closed bool
	conns  map[*trackedConn]struct{}
}

var _ raft.StreamLayer = (*StreamLayer)(nil)

func newStreamLayer(m *Mux, group uint64) *StreamLayer {
	return &StreamLayer{
		mux:      m,
		group:    group,
		acceptCh: make(chan net.Conn),
		done:     make(chan struct{}),
		conns:    make(map[*trackedConn]struct{}),
	}
}

// Group returns the layer's group ID.
func (sl *StreamLayer) Group() uint64 { return sl.group }

// Accept waits for and returns the next connection dialed for this group. It
// returns an error matching ErrClosed (and net.ErrClosed) once the layer or
// the Mux is closed.
func (sl *StreamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-sl.acceptCh:
		tc, ok := sl.track(c)
		if !ok {
			_ = c.Close()
			return nil, fmt.Errorf("raftmux: group %d: accept: %w", sl.group, ErrClosed)
		}
		return tc, nil
	case <-sl.done:
		return nil, fmt.Errorf("raftmux: group %d: accept: %w", sl.group, ErrClosed)
	case <-sl.mux.done:
		return nil, fmt.Errorf("raftmux: group %d: accept: %w", sl.group, ErrClosed)
	}
}

// Dial connects to the Mux at address and writes this group's header. The
// timeout bounds the TCP connect and the header write together.
func (sl *StreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if sl.isClosed() {
		return nil, fmt.Errorf("raftmux: group %d: dial %s: %w", sl.group, address, ErrClosed)
	}
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	d := net.Dialer{Deadline: deadline}
	c, err := d.Dial("tcp", string(address))
	if err != nil {
		return nil, fmt.Errorf("raftmux: group %d: dial %s: %w", sl.group, address, err)
	}
	hdr := AppendHeader(make([]byte, 0, MaxHeaderLen), sl.group)
	if err := c.SetWriteDeadline(deadline); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("raftmux: group %d: dial %s: set deadline: %w", sl.group, address, err)
	}
	if _, err := c.Write(hdr); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("raftmux: group %d: dial %s: write header: %w", sl.group, address, err)
	}
	if err := c.SetWriteDeadline(time.Time{}); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("raftmux: group %d: dial %s: clear deadline: %w", sl.group, address, err)
	}
	tc, ok := sl.track(c)
	if !ok {
		_ = c.Close()
		return nil, fmt.Errorf("raftmux: group %d: dial %s: %w", sl.group, address, ErrClosed)
	}
	return tc, nil
}

// Close unregisters the group from the Mux and closes every connection the
// layer dialed or accepted. Other groups are not affected. Close is
// idempotent and always returns nil.
func (sl *StreamLayer) Close() error {
	sl.mux.unregister(sl)
	sl.closeLocal()
	return nil
}

// Addr returns the Mux's address, which raft advertises to its peers.
func (sl *StreamLayer) Addr() net.Addr { return sl.mux.addr }

// closeLocal marks the layer closed and closes its connections, without
// touching the Mux's registry.
func (sl *StreamLayer) closeLocal() {
	sl.mu.Lock()
	if sl.closed {
		sl.mu.Unlock()
		return
	}
	sl.closed = true
	close(sl.done)
	conns := make([]*trackedConn, 0, len(sl.conns))
	for c := range sl.conns {
		conns = append(conns, c)
	}
	clear(sl.conns)
	sl.mu.Unlock()
	for _, c := range conns {
		_ = c.Conn.Close()
	}
}

func (sl *StreamLayer) isClosed() bool {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	return sl.closed
}

// track records c as a connection of the layer. It returns false if the
// layer or the Mux is closed; the caller then closes c.
func (sl *StreamLayer) track(c net.Conn) (*trackedConn, bool) {
	select {
	case <-sl.mux.done:
		// The Mux closes every layer; do not race it.
		return nil, false
	default:
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.closed {
		return nil, false
	}
	tc := &trackedConn{Conn: c, sl: sl}
	sl.conns[tc] = struct{}{}
	return tc, true
}

func (sl *StreamLayer) untrack(c *trackedConn) {
	sl.mu.Lock()
	delete(sl.conns, c)
	sl.mu.Unlock()
}

// trackedConn is a connection of a StreamLayer; closing it removes it from
// the layer's set.
type trackedConn struct {
	net.Conn
	sl   *StreamLayer
	once sync.Once
}

// Close closes the connection and forgets it.
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.sl.untrack(c) })
	return err
}
