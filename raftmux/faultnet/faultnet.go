// Package faultnet injects network faults between Raft nodes at the
// raft.StreamLayer level, for tests.
//
// A [Network] holds the fault state of every directed link (from node, to
// node). Each node's stream layers are wrapped ([Network.WrapLayer],
// [Network.WrapProvider]); the wrappers consult the current state on every
// Dial, Read and Write, so a change takes effect on connections that already
// exist, not only on new ones. It is modelled on the TCP bridge of etcd's
// integration framework (drop, blackhole, delay), without a proxy in between.
//
// # Where faults apply
//
// Faults are applied at the dialing end of a connection, to both of its
// directions: the dialer's writes travel the link dialer->remote and its
// reads travel remote->dialer. Every byte of Raft traffic flows on a
// connection that one of the two nodes dialed (raft.NetworkTransport is
// request/response over dialed connections), so wrapping the dialing side is
// enough and the accepting side stays untouched. The remote node is found by
// the address dialed: every wrapped layer registers its node's address
// (Addr), and [Network.SetAddr] registers one explicitly.
//
// # Faults
//
//   - Drop (a link is down): Dial fails as if refused, and connections that
//     use the link in either direction are closed at once; later reads and
//     writes on them fail with [ErrLinkDown].
//   - Blackhole: writes on the link succeed but deliver nothing, data
//     arriving over the link is discarded, so calls time out. A connection
//     that discarded anything has a gap in its byte stream; it keeps
//     discarding until it is closed, and it is closed as soon as its links
//     are no longer blackholed, so no peer ever decodes a torn stream.
//   - Delay: every write on the link, and every read of data that arrived
//     over it, waits the given duration first.
//
// One-way faults are real one-way faults at the message level: with
// b->a dropped, a's requests still reach b, but b's answers are lost (a's
// connection is closed when they arrive) and b cannot dial a.
package faultnet

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ErrLinkDown is returned by Dial, Read and Write on a dropped link. It
// matches net.ErrClosed as well.
var ErrLinkDown = fmt.Errorf("faultnet: link down: %w", net.ErrClosed)

// LinkState is the fault state of one directed link. The zero value is a
// healthy link.
type LinkState struct {
	// Drop makes the link refuse connections and close existing ones.
	Drop bool
	// Blackhole makes the link swallow every byte.
	Blackhole bool
	// Delay is added before every write on the link and before every read
	// of data that came over it.
	Delay time.Duration
}

type link struct{ from, to string }

// Provider is what the raftstore Network contract asks for: something that
// gives each Raft group its stream layer (raftmux.Mux).
type Provider interface {
	StreamLayer(group uint64) raft.StreamLayer
}

// Network is the fault state of a set of nodes and the registry of their
// connections. The zero value is not usable; call New. It is safe for
// concurrent use.
type Network struct {
	mu    sync.Mutex
	links map[link]LinkState
	addrs map[string]string // dialable address -> node
	nodes map[string]struct{}
	conns map[*conn]struct{}
}

// New returns a Network with every link healthy.
func New() *Network {
	return &Network{
		links: make(map[link]LinkState),
		addrs: make(map[string]string),
		nodes: make(map[string]struct{}),
		conns: make(map[*conn]struct{}),
	}
}

// SetAddr records that node is reached at addr, so dials of addr are subject
// to the node's links. Wrapped layers register their own Addr; SetAddr is for
// nodes whose layers are not wrapped yet.
func (n *Network) SetAddr(node, addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.addrs[addr] = node
	n.nodes[node] = struct{}{}
}

// Nodes returns the nodes the Network knows, in no particular order.
func (n *Network) Nodes() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.nodes))
	for node := range n.nodes {
		out = append(out, node)
	}
	return out
}

// WrapLayer returns sl with faults applied to the connections node dials
// through it. It registers sl.Addr() as node's address. Closing the returned
// layer closes sl and every connection dialed through the wrapper.
func (n *Network) WrapLayer(node string, sl raft.StreamLayer) raft.StreamLayer {
	if a := sl.Addr(); a != nil {
		n.SetAddr(node, a.String())
	} else {
		n.mu.Lock()
		n.nodes[node] = struct{}{}
		n.mu.Unlock()
	}
	return &layer{StreamLayer: sl, net: n, node: node}
}

// WrapProvider returns a Provider whose stream layers are p's, wrapped with
// WrapLayer for node. If p has an Addr() net.Addr method (raftmux.Mux does),
// that address is registered at once.
func (n *Network) WrapProvider(node string, p Provider) Provider {
	if a, ok := p.(interface{ Addr() net.Addr }); ok && a.Addr() != nil {
		n.SetAddr(node, a.Addr().String())
	}
	return &provider{net: n, node: node, inner: p}
}

// Link returns the state of the link from -> to.
func (n *Network) Link(from, to string) LinkState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.links[link{from, to}]
}

// SetLink sets the state of the link from -> to and applies it to existing
// connections.
func (n *Network) SetLink(from, to string, s LinkState) {
	n.update(func() {
		n.setLocked(from, to, s)
	})
}

// Drop takes the link from -> to down (one way), keeping its delay.
func (n *Network) Drop(from, to string) {
	n.update(func() {
		s := n.links[link{from, to}]
		s.Drop = true
		n.setLocked(from, to, s)
	})
}

// Blackhole makes the link from -> to swallow every byte (one way).
func (n *Network) Blackhole(from, to string) {
	n.update(func() {
		s := n.links[link{from, to}]
		s.Blackhole = true
		n.setLocked(from, to, s)
	})
}

// Delay sets the latency added on the link from -> to (one way); 0 removes
// it.
func (n *Network) Delay(from, to string, d time.Duration) {
	n.update(func() {
		s := n.links[link{from, to}]
		s.Delay = d
		n.setLocked(from, to, s)
	})
}

// Cut takes the links between a and b down in both directions.
func (n *Network) Cut(a, b string) {
	n.update(func() {
		for _, l := range []link{{a, b}, {b, a}} {
			s := n.links[l]
			s.Drop = true
			n.setLocked(l.from, l.to, s)
		}
	})
}

// Partition takes down, in both directions, every link between nodes on
// different sides. Links within a side are not changed.
func (n *Network) Partition(sides ...[]string) {
	n.update(func() {
		for i, side := range sides {
			for j, other := range sides {
				if i == j {
					continue
				}
				for _, a := range side {
					for _, b := range other {
						s := n.links[link{a, b}]
						s.Drop = true
						n.setLocked(a, b, s)
					}
				}
			}
		}
	})
}

// Isolate takes down every link between node and every other known node, in
// both directions.
func (n *Network) Isolate(node string) {
	n.update(func() {
		for other := range n.nodes {
			if other == node {
				continue
			}
			for _, l := range []link{{node, other}, {other, node}} {
				s := n.links[l]
				s.Drop = true
				n.setLocked(l.from, l.to, s)
			}
		}
	})
}

// HealLink makes the link from -> to healthy again.
func (n *Network) HealLink(from, to string) {
	n.update(func() { n.setLocked(from, to, LinkState{}) })
}

// Heal makes every link healthy again.
func (n *Network) Heal() {
	n.update(func() { clear(n.links) })
}

func (n *Network) setLocked(from, to string, s LinkState) {
	if s == (LinkState{}) {
		delete(n.links, link{from, to})
		return
	}
	n.links[link{from, to}] = s
}

// update runs change under the lock, then closes the connections the new
// state condemns: those that use a dropped link in either direction, and
// those with a torn stream whose links are no longer blackholed.
func (n *Network) update(change func()) {
	n.mu.Lock()
	change()
	var doomed []*conn
	for c := range n.conns {
		fwd, rev := n.links[link{c.from, c.to}], n.links[link{c.to, c.from}]
		switch {
		case fwd.Drop || rev.Drop:
			doomed = append(doomed, c)
		case c.torn() && !fwd.Blackhole && !rev.Blackhole:
			doomed = append(doomed, c)
		}
	}
	n.mu.Unlock()
	for _, c := range doomed {
		_ = c.Close()
	}
}

// state returns the current state of both directions of a connection.
func (n *Network) state(from, to string) (fwd, rev LinkState) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.links[link{from, to}], n.links[link{to, from}]
}

func (n *Network) nodeOf(addr string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addrs[addr]
}

func (n *Network) track(c *conn) {
	n.mu.Lock()
	n.conns[c] = struct{}{}
	n.mu.Unlock()
}

func (n *Network) untrack(c *conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
}

// connsOf returns the live connections dialed through l.
func (n *Network) connsOf(l *layer) []*conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*conn
	for c := range n.conns {
		if c.layer == l {
			out = append(out, c)
		}
	}
	return out
}

type provider struct {
	net   *Network
	node  string
	inner Provider
}

func (p *provider) StreamLayer(group uint64) raft.StreamLayer {
	return p.net.WrapLayer(p.node, p.inner.StreamLayer(group))
}

// Addr forwards the inner provider's address, if it has one.
func (p *provider) Addr() net.Addr {
	if a, ok := p.inner.(interface{ Addr() net.Addr }); ok {
		return a.Addr()
	}
	return nil
}

// layer is a raft.StreamLayer whose dialed connections are subject to the
// Network's faults.
type layer struct {
	raft.StreamLayer
	net  *Network
	node string
}

func (l *layer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	to := l.net.nodeOf(string(address))
	fwd, _ := l.net.state(l.node, to)
	if fwd.Drop {
		return nil, fmt.Errorf("faultnet: dial %s (%s -> %s): %w", address, l.node, to, ErrLinkDown)
	}
	inner, err := l.StreamLayer.Dial(address, timeout)
	if err != nil {
		return nil, err
	}
	c := &conn{Conn: inner, net: l.net, layer: l, from: l.node, to: to, closed: make(chan struct{})}
	l.net.track(c)
	// A drop set while dialing must not be missed. (A drop of the reverse
	// direction does not refuse the dial: it closes the connection when an
	// answer arrives, see Read.)
	if fwd, _ := l.net.state(c.from, c.to); fwd.Drop {
		_ = c.Close()
		return nil, fmt.Errorf("faultnet: dial %s (%s -> %s): %w", address, l.node, to, ErrLinkDown)
	}
	return c, nil
}

func (l *layer) Close() error {
	err := l.StreamLayer.Close()
	for _, c := range l.net.connsOf(l) {
		_ = c.Close()
	}
	return err
}

// conn is a dialed connection whose reads and writes consult the current
// state of its two links.
type conn struct {
	net.Conn
	net      *Network
	layer    *layer
	from, to string

	mu       sync.Mutex
	isTorn   bool // some bytes were discarded: the stream has a gap
	isClosed bool
	closed   chan struct{}
}

func (c *conn) torn() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.isTorn
}

func (c *conn) tear() {
	c.mu.Lock()
	c.isTorn = true
	c.mu.Unlock()
}

// wait sleeps d, returning false early if the connection is closed.
func (c *conn) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.closed:
		return false
	}
}

func (c *conn) Write(p []byte) (int, error) {
	fwd, _ := c.net.state(c.from, c.to)
	if fwd.Delay > 0 {
		if !c.wait(fwd.Delay) {
			return 0, fmt.Errorf("faultnet: write: %w", net.ErrClosed)
		}
		fwd, _ = c.net.state(c.from, c.to)
	}
	if fwd.Drop {
		_ = c.Close()
		return 0, fmt.Errorf("faultnet: write %s -> %s: %w", c.from, c.to, ErrLinkDown)
	}
	if fwd.Blackhole || c.torn() {
		c.tear()
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *conn) Read(p []byte) (int, error) {
	for {
		k, err := c.Conn.Read(p)
		if k == 0 {
			return k, err
		}
		_, rev := c.net.state(c.from, c.to)
		if rev.Delay > 0 {
			if !c.wait(rev.Delay) {
				return 0, fmt.Errorf("faultnet: read: %w", net.ErrClosed)
			}
			_, rev = c.net.state(c.from, c.to)
		}
		if rev.Drop {
			_ = c.Close()
			return 0, fmt.Errorf("faultnet: read %s -> %s: %w", c.to, c.from, ErrLinkDown)
		}
		if rev.Blackhole || c.torn() {
			c.tear()
			if err != nil {
				return 0, err
			}
			continue
		}
		return k, err
	}
}

func (c *conn) Close() error {
	c.mu.Lock()
	first := !c.isClosed
	if first {
		c.isClosed = true
		close(c.closed)
	}
	c.mu.Unlock()
	err := c.Conn.Close()
	if first {
		c.net.untrack(c)
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}
