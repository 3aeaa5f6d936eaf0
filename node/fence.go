package node

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/linkraft/linkraft/raftstore"
)

// errFenced is what a fenced stream layer's Dial returns.
var errFenced = errors.New("node: raft traffic fenced: the node's disk is stalled")

// fence sits between raftstore and the node's raftmux: every group's
// stream layer goes through it. While it is raised, no Raft connection can
// be dialed from this node and the ones it dialed are closed, so the node
// sends nothing to its peers: no heartbeats and no AppendEntries as a
// leader, no RequestVote as a candidate. Connections peers dialed to this
// node stay open (the node can still hear, and raft answers when its loop
// runs again).
//
// Dropping messages is always safe in Raft; the point is liveness. A leader
// whose disk stalls keeps its followers quiet with heartbeats sent by
// goroutines that need no disk, while its own loop waits for the disk (see
// diskhealth.go). Raising the fence stops those heartbeats, so the
// followers time out and elect a leader among themselves.
type fence struct {
	net raftstore.Network

	mu     sync.Mutex
	raised bool
	conns  map[*fencedConn]struct{}
}

var _ raftstore.Network = (*fence)(nil)

func newFence(net raftstore.Network) *fence {
	return &fence{net: net, conns: make(map[*fencedConn]struct{})}
}

// StreamLayer implements raftstore.Network: the group's layer of the
// wrapped network, behind the fence.
func (f *fence) StreamLayer(group uint64) raft.StreamLayer {
	inner := f.net.StreamLayer(group)
	if inner == nil {
		return nil
	}
	return &fencedLayer{StreamLayer: inner, f: f, group: group}
}

// raise stops all outbound Raft traffic: later dials fail, and every
// connection dialed so far is closed.
func (f *fence) raise() {
	f.mu.Lock()
	f.raised = true
	conns := make([]*fencedConn, 0, len(f.conns))
	for c := range f.conns {
		conns = append(conns, c)
	}
	clear(f.conns)
	f.mu.Unlock()
	for _, c := range conns {
		_ = c.Conn.Close()
	}
}

// lift lets outbound traffic go again.
func (f *fence) lift() {
	f.mu.Lock()
	f.raised = false
	f.mu.Unlock()
}

// isRaised reports whether the fence is up.
func (f *fence) isRaised() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.raised
}

// track records a dialed connection; false if the fence went up meanwhile.
func (f *fence) track(c *fencedConn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.raised {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *fence) untrack(c *fencedConn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

// fencedLayer is one group's stream layer behind the fence. Accept, Close
// and Addr are the wrapped layer's.
type fencedLayer struct {
	raft.StreamLayer
	f     *fence
	group uint64
}

// Dial dials through the wrapped layer unless the fence is up.
func (l *fencedLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if l.f.isRaised() {
		return nil, fmt.Errorf("group %d: dial %s: %w", l.group, address, errFenced)
	}
	c, err := l.StreamLayer.Dial(address, timeout)
	if err != nil {
		return nil, err
	}
	fc := &fencedConn{Conn: c, f: l.f}
	if !l.f.track(fc) {
		_ = c.Close()
		return nil, fmt.Errorf("group %d: dial %s: %w", l.group, address, errFenced)
	}
	return fc, nil
}

// fencedConn is a connection dialed through the fence; raising the fence
// closes it.
type fencedConn struct {
	net.Conn
	f    *fence
	once sync.Once
}

// Close closes the connection and forgets it.
func (c *fencedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.f.untrack(c) })
	return err
}
