package rafttest_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.uber.org/goleak"

	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/raftstore/rafttest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// hashicorp/raft never resolves the futures of commands that were
		// committed and queued for the FSM when it shuts down (runFSM
		// returns with batches still in its channel), so raftstore abandons
		// their waiter goroutines after a grace period, with a log line
		// (see raftstore's Group.shutdown). Stopping a leader under load,
		// as TestLeaderKillUnderLoad does, hits that window. Everything
		// else must stop.
		goleak.IgnoreAnyFunction("github.com/linkraft/linkraft/raftstore.(*Group).await.func1"),
	)
}

func opID(k int) string            { return fmt.Sprintf("op-%05d", k) }
func opKey(k int) []byte           { return fmt.Appendf(nil, "k/%05d", k) }
func opValue(k int) []byte         { return fmt.Appendf(nil, "value-%d", k) }
func opGroup(k, groups int) uint64 { return uint64(k%groups + 1) }

// readAll returns node i's application keys of group under prefix.
func readAll(t *testing.T, c *rafttest.Cluster, i int, group uint64, prefix string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	err := c.Group(i, group).Read(context.Background(), raftstore.ReadLocal, func(r raftstore.Reader) error {
		upper := []byte(prefix)
		upper[len(upper)-1]++
		return r.Scan([]byte(prefix), upper, func(k, v []byte) bool {
			out[string(k)] = string(v)
			return true
		})
	})
	if err != nil {
		t.Fatalf("read node %d group %d: %v", i, group, err)
	}
	return out
}

// duplicates returns the operation IDs applied twice on node i's replica.
func duplicates(t *testing.T, c *rafttest.Cluster, i int, group uint64) []string {
	t.Helper()
	var ids []string
	err := c.Group(i, group).Read(context.Background(), raftstore.ReadLocal, func(r raftstore.Reader) error {
		var err error
		ids, err = rafttest.Duplicates(r)
		return err
	})
	if err != nil {
		t.Fatalf("read duplicates on node %d group %d: %v", i, group, err)
	}
	return ids
}

// TestLeaderKillUnderLoad runs 10,000 concurrent proposals over 4 groups on
// 3 nodes and stops the leader of group 1 halfway. Every acknowledged
// proposal must be on every running replica, and on the stopped node once
// it is back; retries (same idempotency key) must never apply twice.
func TestLeaderKillUnderLoad(t *testing.T) {
	const groups, workers = 4, 64
	total := 10_000
	if testing.Short() {
		total = 2_000
	}
	c := rafttest.New(t, rafttest.Options{Nodes: 3, Groups: groups})
	for g := uint64(1); g <= groups; g++ {
		c.WaitLeader(g)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var (
		next     atomic.Int64
		acked    atomic.Int64
		results  = make([]rafttest.Result, total)
		errs     = make(chan error, workers)
		halfway  = make(chan struct{})
		halfOnce sync.Once
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= total {
					return
				}
				id := []byte(opID(k))
				res, err := c.Propose(ctx, opGroup(k, groups), rafttest.Put(id, opKey(k), opValue(k)), id)
				if err != nil {
					errs <- fmt.Errorf("proposal %d: %w", k, err)
					return
				}
				r, err := rafttest.DecodeResult(res)
				if err != nil || r.Status != rafttest.StatusOK {
					errs <- fmt.Errorf("proposal %d: result %+v, %v", k, r, err)
					return
				}
				results[k] = r
				if acked.Add(1) == int64(total/2) {
					halfOnce.Do(func() { close(halfway) })
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	victim := -1
	select {
	case <-halfway:
		victim = c.WaitLeader(1)
		t.Logf("stopping node %s, leader of group 1, after %d acknowledged proposals", c.NodeID(victim), acked.Load())
		c.StopNode(victim)
	case <-done:
	}
	<-done
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if victim < 0 {
		t.Fatal("the load finished before the leader was stopped")
	}
	if n := acked.Load(); n != int64(total) {
		t.Fatalf("%d of %d proposals acknowledged", n, total)
	}

	check := func(nodes []int) {
		t.Helper()
		for g := uint64(1); g <= groups; g++ {
			c.WaitReplication(g)
			c.EnsureSame(g)
			for _, i := range nodes {
				got := readAll(t, c, i, g, "k/")
				for k := range total {
					if opGroup(k, groups) != g {
						continue
					}
					if v, ok := got[string(opKey(k))]; !ok || v != string(opValue(k)) {
						t.Fatalf("node %s group %d: acknowledged proposal %d: got %q (present %v), want %q",
							c.NodeID(i), g, k, v, ok, opValue(k))
					}
				}
				if d := duplicates(t, c, i, g); len(d) > 0 {
					t.Fatalf("node %s group %d: operations applied twice: %v", c.NodeID(i), g, d)
				}
			}
		}
	}
	var live []int
	for i := range c.Len() {
		if i != victim {
			live = append(live, i)
		}
	}
	check(live)

	c.RestartNode(victim)
	check([]int{0, 1, 2})

	// Retrying acknowledged proposals with their keys returns the first
	// result and applies nothing.
	for k := 0; k < total; k += total / 50 {
		id := []byte(opID(k))
		res, err := c.Propose(ctx, opGroup(k, groups), rafttest.Put(id, opKey(k), []byte("changed")), id)
		if err != nil {
			t.Fatalf("retry of proposal %d: %v", k, err)
		}
		r, err := rafttest.DecodeResult(res)
		if err != nil || r != results[k] {
			t.Fatalf("retry of proposal %d: result %+v (%v), want the first result %+v", k, r, err, results[k])
		}
	}
	check([]int{0, 1, 2})

	// Control: the same operation under another idempotency key does reach
	// the machine, which flags it; the check above can fail.
	id := []byte(opID(0))
	res, err := c.Propose(ctx, opGroup(0, groups), rafttest.Put(id, opKey(0), opValue(0)), []byte("another-key"))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := rafttest.DecodeResult(res); err != nil || r.Status != rafttest.StatusDuplicate {
		t.Fatalf("re-applied operation: result %+v (%v), want StatusDuplicate", r, err)
	}
	c.WaitReplication(opGroup(0, groups))
	c.EnsureSame(opGroup(0, groups))
	for i := range c.Len() {
		if d := duplicates(t, c, i, opGroup(0, groups)); !slices.Equal(d, []string{opID(0)}) {
			t.Fatalf("node %s: duplicates %v, want [%s]", c.NodeID(i), d, opID(0))
		}
	}
}

// TestMinorityLeaderCannotCommit cuts the leader off from the other two
// nodes: it cannot commit, the majority elects a new leader and commits,
// and after the heal nothing the old leader accepted during the cut exists.
func TestMinorityLeaderCannotCommit(t *testing.T) {
	c := rafttest.New(t, rafttest.Options{Nodes: 3, Groups: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Propose(ctx, 1, rafttest.Put([]byte("base"), []byte("base"), []byte("1")), []byte("base")); err != nil {
		t.Fatal(err)
	}
	old := c.WaitLeader(1)
	c.WaitReplication(1)

	c.Isolate(old)
	oldGroup := c.Group(old, 1)
	const n = 5
	var wg sync.WaitGroup
	errs := make([]error, n)
	for k := range n { // several proposals in flight at the cut-off leader
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			defer pcancel()
			id := fmt.Appendf(nil, "minority-%d", k)
			_, errs[k] = oldGroup.Propose(pctx, rafttest.Put(id, id, []byte("lost")), id)
		}()
	}
	wg.Wait()
	for k, err := range errs {
		if err == nil {
			t.Fatalf("minority proposal %d was acknowledged by a leader cut off from the majority", k)
		}
		if !errors.Is(err, raftstore.ErrNotLeader) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("minority proposal %d: %v, want ErrNotLeader or a deadline", k, err)
		}
	}

	c.WaitNewLeader(1, old)
	if _, err := c.Propose(ctx, 1, rafttest.Put([]byte("majority"), []byte("majority"), []byte("yes")), []byte("majority")); err != nil {
		t.Fatalf("majority proposal: %v", err)
	}

	c.Heal()
	c.WaitReplication(1)
	c.EnsureSame(1)
	for i := range c.Len() {
		got := readAll(t, c, i, 1, "m")
		if got["majority"] != "yes" {
			t.Fatalf("node %s: the majority's write is missing: %v", c.NodeID(i), got)
		}
		for k := range n {
			if v, ok := got[fmt.Sprintf("minority-%d", k)]; ok {
				t.Fatalf("node %s: minority proposal %d survived the heal: %q", c.NodeID(i), k, v)
			}
		}
	}
}

// TestOneWayCutAndDelay checks that the cluster makes progress and
// converges with slow links and with the leader's outbound links cut.
func TestOneWayCutAndDelay(t *testing.T) {
	c := rafttest.New(t, rafttest.Options{Nodes: 3, Groups: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	propose := func(g uint64, k int) {
		t.Helper()
		id := fmt.Appendf(nil, "w-%d-%d", g, k)
		if _, err := c.Propose(ctx, g, rafttest.Add(id, []byte("counter"), 1), id); err != nil {
			t.Fatalf("group %d proposal %d: %v", g, k, err)
		}
	}
	// Slow links: 20ms each way between every pair.
	for i := range c.Len() {
		for j := i + 1; j < c.Len(); j++ {
			c.Delay(i, j, 20*time.Millisecond)
		}
	}
	for k := range 10 {
		propose(1, k)
		propose(2, k)
	}
	c.Heal()

	// The leader of group 1 can hear its followers but not reach them: they
	// elect a new leader.
	old := c.WaitLeader(1)
	for j := range c.Len() {
		if j != old {
			c.CutOneWay(old, j)
		}
	}
	for k := 10; k < 20; k++ {
		propose(1, k)
	}
	c.WaitNewLeader(1, old)
	c.Heal()
	for g := uint64(1); g <= 2; g++ {
		c.WaitReplication(g)
		c.EnsureSame(g)
	}
	want := map[uint64]int64{1: 20, 2: 10}
	for g, n := range want {
		for i := range c.Len() {
			v, err := c.Get(i, g, []byte("counter"))
			if err != nil {
				t.Fatal(err)
			}
			if got := int64(uint64(v[0])<<56 | uint64(v[1])<<48 | uint64(v[2])<<40 | uint64(v[3])<<32 |
				uint64(v[4])<<24 | uint64(v[5])<<16 | uint64(v[6])<<8 | uint64(v[7])); got != n {
				t.Fatalf("node %s group %d: counter %d, want %d", c.NodeID(i), g, got, n)
			}
		}
	}
}

// TestBlackholedLeader swallows everything between the leader and the other
// nodes: its RPCs time out rather than fail, the others elect a new leader,
// and after the heal the old leader catches up.
func TestBlackholedLeader(t *testing.T) {
	c := rafttest.New(t, rafttest.Options{Nodes: 3, Groups: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old := c.WaitLeader(1)
	for j := range c.Len() {
		if j != old {
			c.Blackhole(old, j)
			c.Blackhole(j, old)
		}
	}
	c.WaitNewLeader(1, old)
	for k := range 5 {
		id := fmt.Appendf(nil, "bh-%d", k)
		if _, err := c.Propose(ctx, 1, rafttest.Put(id, id, []byte("v")), id); err != nil {
			t.Fatal(err)
		}
	}
	c.Heal()
	c.WaitReplication(1)
	c.EnsureSame(1)
	if got := readAll(t, c, old, 1, "bh-"); len(got) != 5 {
		t.Fatalf("old leader has %d of the 5 writes after the heal", len(got))
	}
}

// TestRestartKeepsAddress checks that a restarted node comes back on the
// same address and directory, with its state.
func TestRestartKeepsAddress(t *testing.T) {
	c := rafttest.New(t, rafttest.Options{Nodes: 3, Groups: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for g := uint64(1); g <= 2; g++ {
		if _, err := c.Propose(ctx, g, rafttest.Put([]byte("a"), []byte("a"), []byte("1")), []byte("a")); err != nil {
			t.Fatal(err)
		}
		c.WaitReplication(g)
	}
	addr := c.Addr(2)
	c.StopNode(2)
	if c.Running(2) {
		t.Fatal("node 2 still running after StopNode")
	}
	c.RestartNode(2)
	if got := c.Group(2, 1).Raft().String(); !strings.Contains(got, addr) {
		t.Fatalf("restarted node's raft is at %s, want %s", got, addr)
	}
	for g := uint64(1); g <= 2; g++ {
		// Readable locally at once: the state is in the node's own Pebble.
		if v, err := c.Get(2, g, []byte("a")); err != nil || string(v) != "1" {
			t.Fatalf("group %d on the restarted node: %q, %v", g, v, err)
		}
		if _, err := c.Propose(ctx, g, rafttest.Put([]byte("b"), []byte("b"), []byte("2")), []byte("b")); err != nil {
			t.Fatal(err)
		}
		c.WaitReplication(g)
		c.EnsureSame(g)
	}
}

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the calling goroutine, so a test can check that a helper fails.
type fatalRecorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fatalRecorder) message() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.msg
}

// TestEnsureSameDetectsDivergence writes a key into one replica's Pebble
// behind raft's back and checks that EnsureSame fails and names it.
func TestEnsureSameDetectsDivergence(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	c := rafttest.New(rec, rafttest.Options{Nodes: 3, Groups: 1, WaitTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Propose(ctx, 1, rafttest.Put([]byte("a"), []byte("a"), []byte("1")), []byte("a")); err != nil {
		t.Fatal(err)
	}
	c.WaitReplication(1)
	c.EnsureSame(1)
	if m := rec.message(); m != "" {
		t.Fatalf("EnsureSame failed on a healthy cluster: %s", m)
	}

	// 0x01 | group u64 | 0x04 | key: the group's application range.
	key := binary.BigEndian.AppendUint64([]byte{0x01}, 1)
	key = append(append(key, 0x04), "rogue"...)
	if err := c.Store(1).DB().Set(key, []byte("x"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.EnsureSame(1)
	}()
	<-done
	msg := rec.message()
	if msg == "" {
		t.Fatal("EnsureSame passed although one replica has an extra key")
	}
	if !strings.Contains(msg, "rogue") {
		t.Fatalf("EnsureSame's message does not name the differing key: %s", msg)
	}
	t.Logf("EnsureSame failed as expected: %s", msg)
}
