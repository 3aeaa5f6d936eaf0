package raftstore

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// testWriter sends log lines to t.Log until the test's cleanup ends, so a
// goroutine that logs late cannot panic the test binary.
type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// testLogger returns an hclog.Logger writing to t.Log (shown only when the
// test fails or with -v).
func testLogger(t testing.TB) hclog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { // registered first, so it runs last
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Output: w, Level: hclog.Debug})
}

// openTestDB opens a Pebble DB with the store's default options.
func openTestDB(t testing.TB, fs vfs.FS, dir string) *pebble.DB {
	t.Helper()
	o := DefaultPebbleOptions()
	if fs != nil {
		o.FS = fs
	}
	// A fatal Pebble error panics in the failing call (Options.Fatal).
	o.Logger = pebbleLogger{l: testLogger(t), fatal: func(string) {}}
	db, err := pebble.Open(dir, o)
	if err != nil {
		t.Fatalf("open pebble: %v", err)
	}
	return db
}

// dumpRange returns every key/value in [lower, upper) as one printable
// string, for byte-for-byte comparisons.
func dumpRange(t testing.TB, r pebble.Reader, lower, upper []byte, skip ...[]byte) string {
	t.Helper()
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		t.Fatalf("iter: %v", err)
	}
	var b strings.Builder
outer:
	for ok := it.First(); ok; ok = it.Next() {
		for _, s := range skip {
			if bytes.Equal(it.Key(), s) {
				continue outer
			}
		}
		fmt.Fprintf(&b, "%x=%x\n", it.Key(), it.Value())
	}
	if err := it.Close(); err != nil {
		t.Fatalf("iter: %v", err)
	}
	return b.String()
}

// groupState dumps a group's [0x03, 0x05) range (the snapshot range).
func groupState(t testing.TB, r pebble.Reader, group uint64, skip ...[]byte) string {
	return dumpRange(t, r, kindPrefix(group, kindMeta), kindPrefix(group, kindData+1), skip...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// counterMachine is a deterministic StateMachine that keeps everything in
// the group's state: per-key counters, a record per applied index (a second
// application of an index sets the "dup" key), and a total. calls counts
// Apply invocations in memory, per process.
type counterMachine struct {
	calls atomic.Int64
}

func (m *counterMachine) Apply(tx Txn, index uint64, cmd []byte) []byte {
	m.calls.Add(1)
	seen := binary.BigEndian.AppendUint64([]byte("idx/"), index)
	if _, err := tx.Get(seen); err == nil {
		_ = tx.Set([]byte("dup"), seen)
	}
	_ = tx.Set(seen, cmd)
	total := readCounter(tx, []byte("total")) + 1
	_ = tx.Set([]byte("total"), binary.BigEndian.AppendUint64(nil, total))
	key := append([]byte("n/"), cmd...)
	n := readCounter(tx, key) + 1
	_ = tx.Set(key, binary.BigEndian.AppendUint64(nil, n))
	return []byte(fmt.Sprintf("%s=%d@%d", cmd, n, index))
}

func readCounter(r Reader, key []byte) uint64 {
	v, err := r.Get(key)
	if err != nil || len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// tcpLayer is a raft.StreamLayer on its own TCP listener that closes every
// connection it made or accepted when closed.
type tcpLayer struct {
	ln net.Listener

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func newTCPLayer(t testing.TB, addr string) *tcpLayer {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	// A restarted node reuses its port; the old socket may linger briefly.
	waitFor(t, 5*time.Second, "listen on "+addr, func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	return &tcpLayer{ln: ln, conns: make(map[net.Conn]struct{})}
}

func (l *tcpLayer) track(c net.Conn) (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.conns[c] = struct{}{}
	return c, nil
}

func (l *tcpLayer) Accept() (net.Conn, error) {
	c, err := l.ln.Accept()
	if err != nil {
		return nil, err
	}
	return l.track(c)
}

func (l *tcpLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	return l.track(c)
}

func (l *tcpLayer) Close() error {
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
	return l.ln.Close()
}

func (l *tcpLayer) Addr() net.Addr { return l.ln.Addr() }

// testNet is a Network with one prepared stream layer per group.
type testNet map[uint64]raft.StreamLayer

func (n testNet) StreamLayer(group uint64) raft.StreamLayer { return n[group] }

// fastRaft makes raft's timeouts short enough for tests.
func fastRaft(c *raft.Config) {
	c.HeartbeatTimeout = 200 * time.Millisecond
	c.ElectionTimeout = 200 * time.Millisecond
	c.LeaderLeaseTimeout = 150 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
}
