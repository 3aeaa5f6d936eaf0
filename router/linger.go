package router

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// lingerTimeout bounds how long a connection closed after an error answer
// keeps reading what its client still sends (nginx's lingering_time is the
// same idea). A client on a sane link finishes sending well within it.
const lingerTimeout = 5 * time.Second

// lingerListener hands the server connections that can close lingering.
//
// The server answers a request it cannot read (a body over its limit,
// headers too large, garbage) and closes the connection while the client
// may still be sending the body. Closing a socket with unread data makes
// the kernel send a RST instead of a FIN, and a RST makes the client's
// kernel discard the answer it has received but not read yet: the client
// sees "connection reset" instead of the JSON 413. So such a connection
// closes lingering: it half-closes (the answer goes out followed by a
// FIN), reads and discards what the client still sends until the client
// closes or lingerTimeout passes, and only then closes.
type lingerListener struct {
	net.Listener
	set *lingerSet
}

// Accept wraps the accepted connection in a lingerConn.
func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lingerConn{Conn: c, set: l.set}, nil
}

// lingerSet tracks the connections lingering now, so that Shutdown can
// end them at once instead of waiting out their lingerTimeout.
type lingerSet struct {
	timeout time.Duration // lingerTimeout; tests lengthen it

	mu     sync.Mutex
	conns  map[*lingerConn]struct{}
	closed bool
}

func newLingerSet() *lingerSet {
	return &lingerSet{timeout: lingerTimeout, conns: make(map[*lingerConn]struct{})}
}

// add registers c as lingering; false once the set was closed.
func (s *lingerSet) add(c *lingerConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *lingerSet) remove(c *lingerConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// close ends every lingering connection (their reads return at once) and
// makes later closes skip lingering.
func (s *lingerSet) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		_ = c.Conn.Close()
	}
}

// lingerConn is a connection whose Close lingers once markLinger was called.
type lingerConn struct {
	net.Conn
	set    *lingerSet
	linger atomic.Bool
}

// markLinger makes the next Close of c (a request's ctx.Conn()) linger; a
// connection not accepted by a lingerListener (a caller serving Handler on
// its own server) is left alone.
func markLinger(c net.Conn) {
	if lc, ok := c.(*lingerConn); ok {
		lc.linger.Store(true)
	}
}

// Close closes the connection, lingering first if it was marked. It runs
// on the server's worker for the connection, which it holds for at most
// lingerTimeout; the router's Shutdown ends the lingering at once.
func (c *lingerConn) Close() error {
	if c.linger.CompareAndSwap(true, false) && c.set.add(c) {
		defer c.set.remove(c)
		if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
			if c.Conn.SetReadDeadline(time.Now().Add(c.set.timeout)) == nil {
				_, _ = io.Copy(io.Discard, c.Conn)
			}
		}
	}
	return c.Conn.Close()
}
