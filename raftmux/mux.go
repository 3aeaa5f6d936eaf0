package raftmux

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Defaults of the options.
const (
	// DefaultHeaderTimeout bounds how long a new connection may take to send
	// its header.
	DefaultHeaderTimeout = 5 * time.Second
	// DefaultMaxPending bounds the connections that have been accepted but
	// not yet handed to a group (header being read, or waiting for the
	// group's Accept).
	DefaultMaxPending = 1024
)

// Sentinel errors of the package. Check them with errors.Is.
var (
	// ErrClosed is returned by Accept and Dial of a closed StreamLayer or of
	// any StreamLayer of a closed Mux. It matches net.ErrClosed as well.
	ErrClosed = fmt.Errorf("raftmux: closed: %w", net.ErrClosed)
	// ErrGroupRegistered is returned by Register for a group that already
	// has an open StreamLayer on the Mux.
	ErrGroupRegistered = errors.New("raftmux: group already registered")
	// ErrInvalidGroup is returned by Register for group ID 0.
	ErrInvalidGroup = errors.New("raftmux: invalid group ID 0")
	// ErrNotAdvertisable is returned by Listen and New when the listener's
	// address cannot be dialed by peers (an unspecified IP such as 0.0.0.0)
	// and no WithAdvertise address was given.
	ErrNotAdvertisable = errors.New("raftmux: listen address is not advertisable")
)

// Option configures a Mux.
type Option func(*options)

type options struct {
	logger        hclog.Logger
	headerTimeout time.Duration
	maxPending    int
	advertise     net.Addr
}

// WithLogger sets the logger (default: discard).
func WithLogger(l hclog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithHeaderTimeout sets how long a new connection may take to send its
// header before it is closed (default DefaultHeaderTimeout). A
// non-positive d leaves the default.
func WithHeaderTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.headerTimeout = d
		}
	}
}

// WithMaxPending sets how many accepted connections may be waiting for their
// header or for their group's Accept at once (default DefaultMaxPending).
// Connections beyond the limit are closed at once. A non-positive n leaves
// the default.
func WithMaxPending(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxPending = n
		}
	}
}

// WithAdvertise sets the address the StreamLayers report from Addr, which
// raft advertises to its peers. It is needed when the Mux listens on an
// unspecified address such as 0.0.0.0:7000.
func WithAdvertise(addr net.Addr) Option {
	return func(o *options) { o.advertise = addr }
}

// Stats are the Mux's counters since it started.
type Stats struct {
	// Accepted is the number of TCP connections accepted.
	Accepted uint64
	// Routed is the number of connections handed to a group's Accept.
	Routed uint64
	// BadHeader is the number of connections closed because their header
	// was malformed, incomplete or late.
	BadHeader uint64
	// UnknownGroup is the number of connections closed because no
	// StreamLayer was registered for their group.
	UnknownGroup uint64
	// Dropped is the number of connections closed because too many were
	// pending, or because their group or the Mux closed before they were
	// accepted.
	Dropped uint64
	// Groups is the number of registered groups.
	Groups int
}

// Mux is one TCP listener shared by the Raft transports of many groups. It is
// safe for concurrent use.
type Mux struct {
	ln   net.Listener
	addr net.Addr
	opts options

	mu      sync.Mutex
	closed  bool
	groups  map[uint64]*StreamLayer
	pending map[net.Conn]struct{}

	done chan struct{}  // closed by Close
	wg   sync.WaitGroup // the accept loop and every per-connection goroutine

	accepted, routed, badHeader, unknownGroup, dropped atomic.Uint64
	lastWarn                                           atomic.Int64 // unix nanos of the last rate-limited warning
}

// Listen listens on the TCP address addr and serves it as a Mux.
func Listen(addr string, opts ...Option) (*Mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raftmux: listen on %s: %w", addr, err)
	}
	m, err := New(ln, opts...)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	return m, nil
}

// New serves ln as a Mux. The Mux owns ln from now on and closes it in Close
// (also when New fails).
func New(ln net.Listener, opts ...Option) (*Mux, error) {
	o := options{headerTimeout: DefaultHeaderTimeout, maxPending: DefaultMaxPending}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = hclog.NewNullLogger()
	}
	addr := o.advertise
	if addr == nil {
		addr = ln.Addr()
		if ta, ok := addr.(*net.TCPAddr); ok && (ta.IP == nil || ta.IP.IsUnspecified()) {
			_ = ln.Close()
			return nil, fmt.Errorf("%w: %s (use WithAdvertise)", ErrNotAdvertisable, addr)
		}
	}
	m := &Mux{
		ln:      ln,
		addr:    addr,
		opts:    o,
		groups:  make(map[uint64]*StreamLayer),
		pending: make(map[net.Conn]struct{}),
		done:    make(chan struct{}),
	}
	m.wg.Add(1)
	go m.acceptLoop()
	return m, nil
}

// Addr returns the address peers dial to reach this Mux: the WithAdvertise
// address if one was given, else the listener's address.
func (m *Mux) Addr() net.Addr { return m.addr }

// Stats returns the Mux's counters.
func (m *Mux) Stats() Stats {
	m.mu.Lock()
	n := len(m.groups)
	m.mu.Unlock()
	return Stats{
		Accepted:     m.accepted.Load(),
		Routed:       m.routed.Load(),
		BadHeader:    m.badHeader.Load(),
		UnknownGroup: m.unknownGroup.Load(),
		Dropped:      m.dropped.Load(),
		Groups:       n,
	}
}

// Register registers group and returns its StreamLayer. It fails with
// ErrInvalidGroup for group 0, ErrGroupRegistered if the group already has an
// open StreamLayer, and ErrClosed if the Mux is closed. Closing the returned
// layer unregisters the group, after which it may be registered again.
func (m *Mux) Register(group uint64) (*StreamLayer, error) {
	if group == 0 {
		return nil, ErrInvalidGroup
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if _, ok := m.groups[group]; ok {
		return nil, fmt.Errorf("%w: group %d", ErrGroupRegistered, group)
	}
	sl := newStreamLayer(m, group)
	m.groups[group] = sl
	return sl, nil
}

// StreamLayer registers group and returns its raft.StreamLayer, to be used by
// exactly one raft.NetworkTransport. It is Register for callers that cannot
// handle an error (the raftstore Network contract):
//
//   - on a closed Mux it returns a StreamLayer that is already closed (its
//     Accept and Dial fail with ErrClosed), so the transport fails cleanly;
//   - it panics for group 0 or a group that already has an open StreamLayer,
//     which are programming errors, like registering a pattern twice on an
//     http.ServeMux.
func (m *Mux) StreamLayer(group uint64) raft.StreamLayer {
	sl, err := m.Register(group)
	switch {
	case err == nil:
		return sl
	case errors.Is(err, ErrClosed):
		sl = newStreamLayer(m, group)
		sl.closeLocal()
		return sl
	default:
		panic(err)
	}
}

// Close stops the accept loop, closes the listener, every pending connection
// and every connection of every StreamLayer, and waits for every goroutine the
// Mux started. The StreamLayers stay closed. Close is idempotent; it returns
// the listener's close error, if any.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.wg.Wait()
		return nil
	}
	m.closed = true
	close(m.done)
	layers := make([]*StreamLayer, 0, len(m.groups))
	for _, sl := range m.groups {
		layers = append(layers, sl)
	}
	clear(m.groups)
	pending := make([]net.Conn, 0, len(m.pending))
	for c := range m.pending {
		pending = append(pending, c)
	}
	m.mu.Unlock()

	var err error
	if cerr := m.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		err = fmt.Errorf("raftmux: close listener: %w", cerr)
	}
	for _, c := range pending {
		_ = c.Close()
	}
	for _, sl := range layers {
		sl.closeLocal()
	}
	m.wg.Wait()
	return err
}

// acceptLoop accepts connections until the listener is closed and starts a
// goroutine per connection to read its header.
func (m *Mux) acceptLoop() {
	defer m.wg.Done()
	var backoff time.Duration
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				m.opts.logger.Error("listener closed underneath the mux", "addr", m.addr, "error", err)
				return
			}
			// Temporary failure (for example too many open files): back
			// off like net/http does, and retry.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else {
				backoff = min(2*backoff, time.Second)
			}
			m.opts.logger.Warn("accept failed; retrying", "addr", m.addr, "error", err, "backoff", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-m.done:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		backoff = 0
		m.accepted.Add(1)
		if !m.addPending(c) {
			m.dropped.Add(1)
			m.warn("too many pending connections; closing", "remote", c.RemoteAddr(), "max_pending", m.opts.maxPending)
			_ = c.Close()
			continue
		}
		m.wg.Add(1)
		go m.route(c)
	}
}

// addPending records c as pending. It returns false if the Mux is closed or
// the pending limit is reached.
func (m *Mux) addPending(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || len(m.pending) >= m.opts.maxPending {
		return false
	}
	m.pending[c] = struct{}{}
	return true
}

func (m *Mux) removePending(c net.Conn) {
	m.mu.Lock()
	delete(m.pending, c)
	m.mu.Unlock()
}

func (m *Mux) lookup(group uint64) *StreamLayer {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.groups[group]
}

// unregister removes sl if it is still the registered layer of its group.
func (m *Mux) unregister(sl *StreamLayer) {
	m.mu.Lock()
	if m.groups[sl.group] == sl {
		delete(m.groups, sl.group)
	}
	m.mu.Unlock()
}

// route reads c's header and hands c to its group's Accept.
func (m *Mux) route(c net.Conn) {
	defer m.wg.Done()
	defer m.removePending(c)

	if err := c.SetReadDeadline(time.Now().Add(m.opts.headerTimeout)); err != nil {
		m.badHeader.Add(1)
		_ = c.Close()
		return
	}
	group, err := ReadHeader(c)
	if err != nil {
		select {
		case <-m.done:
			// Closed by Close while reading: not the peer's fault.
			m.dropped.Add(1)
		default:
			m.badHeader.Add(1)
			m.warn("closing connection with bad header", "remote", c.RemoteAddr(), "error", err)
		}
		_ = c.Close()
		return
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		m.dropped.Add(1)
		_ = c.Close()
		return
	}
	sl := m.lookup(group)
	if sl == nil {
		m.unknownGroup.Add(1)
		m.warn("closing connection for unknown group", "group", group, "remote", c.RemoteAddr())
		_ = c.Close()
		return
	}
	select {
	case sl.acceptCh <- c:
		m.routed.Add(1)
	case <-sl.done:
		m.dropped.Add(1)
		_ = c.Close()
	case <-m.done:
		m.dropped.Add(1)
		_ = c.Close()
	}
}

// warn logs at Warn level at most once a second and at Debug level
// otherwise, so a peer that retries in a tight loop cannot flood the log.
func (m *Mux) warn(msg string, args ...any) {
	now := time.Now().UnixNano()
	last := m.lastWarn.Load()
	if now-last >= int64(time.Second) && m.lastWarn.CompareAndSwap(last, now) {
		m.opts.logger.Warn(msg, args...)
		return
	}
	m.opts.logger.Debug(msg, args...)
}
