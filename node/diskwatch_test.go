package node

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/linkraft/linkraft/raftmux"
)

// recorder collects the watchdog's hook calls in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

func (r *recorder) hooks() diskHooks {
	return diskHooks{
		stalled:   func() { r.add("stalled") },
		fence:     func() { r.add("fence") },
		recovered: func() { r.add("recovered") },
		fatal:     func(msg string) { r.add("fatal: " + msg) },
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestDiskWatchTransitions drives the watchdog's judgement with a fake
// clock: a probe in flight past the threshold is a stall (once), the fence
// follows after the grace, a stall past the fail-stop bound is fatal
// (once), and the probe's return is the recovery, after which a new stall
// is detected afresh.
func TestDiskWatchTransitions(t *testing.T) {
	var rec recorder
	w := newDiskWatch(DiskHealth{Threshold: time.Second, FailStop: 10 * time.Second, ProbeInterval: time.Millisecond}, nil, quietLogger(), rec.hooks())
	w.maxGap = 0 // this test jumps the clock; TestDiskWatchProcessPause covers the allowance
	t0 := time.Unix(1_700_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	expect := func(when string, want ...string) {
		t.Helper()
		got := rec.take()
		if len(got) != len(want) {
			t.Fatalf("%s: hooks %q, want %q", when, got, want)
		}
		for i := range got {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Fatalf("%s: hooks %q, want %q", when, got, want)
			}
		}
	}

	// No probe in flight: nothing, however long.
	w.check(at(time.Hour))
	expect("idle")
	// A fast probe: nothing.
	w.begin(at(0))
	w.check(at(999 * time.Millisecond))
	w.end()
	w.check(at(2 * time.Second))
	expect("fast probe")
	if w.isStalled() {
		t.Fatal("stalled after a fast probe")
	}

	// A probe that does not return.
	w.begin(at(10 * time.Second))
	w.check(at(10*time.Second + 999*time.Millisecond))
	expect("below the threshold")
	w.check(at(11 * time.Second))
	expect("at the threshold", "stalled")
	if !w.isStalled() {
		t.Fatal("not stalled at the threshold")
	}
	w.check(at(11*time.Second + fenceGrace - time.Millisecond))
	expect("within the grace")
	w.check(at(11*time.Second + fenceGrace))
	expect("after the grace", "fence")
	w.check(at(15 * time.Second))
	expect("still stalled")
	w.check(at(20 * time.Second))
	expect("at the fail-stop bound", "fatal: disk stalled: a synced write has not finished after 10s")
	w.check(at(25 * time.Second))
	expect("after fatal returned")
	w.end()
	w.check(at(26 * time.Second))
	expect("probe returned", "recovered")
	if w.isStalled() {
		t.Fatal("still stalled after the probe returned")
	}

	// A second stall is detected again, and a short one recovers without
	// a fence or a fatal.
	w.begin(at(30 * time.Second))
	w.check(at(31 * time.Second))
	w.end()
	w.check(at(31*time.Second + 10*time.Millisecond))
	expect("short second stall", "stalled", "recovered")
}

// TestDiskWatchFailStopOff: a negative FailStop never calls fatal.
func TestDiskWatchFailStopOff(t *testing.T) {
	var rec recorder
	w := newDiskWatch(DiskHealth{Threshold: time.Second, FailStop: -1, ProbeInterval: time.Millisecond}, nil, quietLogger(), rec.hooks())
	w.maxGap = 0
	t0 := time.Unix(1_700_000_000, 0)
	w.begin(t0)
	for d := time.Duration(0); d < time.Hour; d += time.Minute {
		w.check(t0.Add(d))
	}
	if got := rec.take(); !slices.Equal(got, []string{"stalled", "fence"}) {
		t.Fatalf("hooks %q, want stalled and fence only", got)
	}
}

// TestDiskWatchProcessPause: time during which the watchdog itself did
// not run (the process was stopped: SIGSTOP, a VM pause) is not charged
// to the probe in flight, so a node resumed after a long pause does not
// take its disk for stalled; a probe that really waits is still caught
// once the watchdog runs steadily again.
func TestDiskWatchProcessPause(t *testing.T) {
	var rec recorder
	w := newDiskWatch(DiskHealth{Threshold: time.Second, FailStop: 10 * time.Second, ProbeInterval: time.Millisecond}, nil, quietLogger(), rec.hooks())
	t0 := time.Unix(1_700_000_000, 0)
	now := t0
	tick := func(d time.Duration) {
		now = now.Add(d)
		w.check(now)
	}
	tick(0)
	w.begin(now)
	tick(watchTick)
	tick(30 * time.Second) // the process was stopped for 30 s
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("hooks %q after a process pause with a probe in flight; want none", got)
	}
	// The probe still does not return: steady ticks reach the threshold.
	for i := 0; i < int(time.Second/watchTick)-3; i++ {
		tick(watchTick)
	}
	if got := rec.take(); len(got) != 0 {
		t.Fatalf("hooks %q before a second of steady waiting", got)
	}
	for i := 0; i < 4; i++ {
		tick(watchTick)
	}
	if got := rec.take(); !slices.Equal(got, []string{"stalled"}) {
		t.Fatalf("hooks %q after a second of steady waiting; want stalled", got)
	}
}

// TestDiskWatchBlockedProbe runs the two goroutines for real on a probe
// that blocks: the watchdog reports the stall while the probe is still
// blocked, even though the stalled hook itself blocks (as a transfer on a
// stalled leader would), and reports the recovery once the probe returns.
func TestDiskWatchBlockedProbe(t *testing.T) {
	release := make(chan struct{})
	var probes sync.WaitGroup
	blockNext := make(chan bool, 1)
	blockNext <- true
	probe := func() error {
		probes.Add(1)
		defer probes.Done()
		select {
		case <-blockNext:
			<-release
		default:
		}
		return nil
	}
	events := make(chan string, 16)
	hookBlock := make(chan struct{})
	hooks := diskHooks{
		stalled: func() {
			events <- "stalled"
			// Hooks run on the watchdog: it must go on regardless. The
			// node's hook starts transfers in goroutines; this one
			// hands a blocking wait to a goroutine the same way.
			go func() { <-hookBlock }()
		},
		fence:     func() { events <- "fence" },
		recovered: func() { events <- "recovered" },
		fatal:     func(string) { events <- "fatal" },
	}
	w := newDiskWatch(DiskHealth{Threshold: 100 * time.Millisecond, FailStop: -1, ProbeInterval: 10 * time.Millisecond}, probe, quietLogger(), hooks)
	w.start()
	defer func() {
		close(hookBlock)
		w.close()
	}()
	want := func(e string) {
		t.Helper()
		select {
		case got := <-events:
			if got != e {
				t.Fatalf("hook %q, want %q", got, e)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no %q within 30s", e)
		}
	}
	want("stalled")
	want("fence")
	if !w.isStalled() {
		t.Fatal("not stalled while the probe blocks")
	}
	close(release)
	want("recovered")
}

// TestFence dials through the fence over a real raftmux: raising it closes
// the connections it dialed and refuses new dials; lowering it lets them
// through again. Accepted connections are not touched.
func TestFence(t *testing.T) {
	a, err := raftmux.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := raftmux.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f := newFence(a)
	la := f.StreamLayer(7)
	lb := b.StreamLayer(7)
	defer la.Close()
	defer lb.Close()

	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := lb.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	c, err := la.Dial(raftAddr(b), 5*time.Second)
	if err != nil {
		t.Fatalf("dial before the fence: %v", err)
	}
	defer c.Close()
	var peer net.Conn
	select {
	case peer = <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the peer accepted nothing")
	}
	defer peer.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatalf("write before the fence: %v", err)
	}

	f.raise()
	if _, err := c.Write([]byte("y")); err == nil {
		t.Fatal("a connection dialed before the fence still writes after it")
	}
	// The peer sees its end closed.
	_ = peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 8)
	if n, _ := io.ReadAtLeast(peer, buf, 2); n > 1 {
		t.Fatalf("the peer read %q after the fence", buf[:n])
	}
	if _, err := la.Dial(raftAddr(b), 5*time.Second); !errors.Is(err, errFenced) {
		t.Fatalf("dial behind the fence: %v, want errFenced", err)
	}

	f.lift()
	c2, err := la.Dial(raftAddr(b), 5*time.Second)
	if err != nil {
		t.Fatalf("dial after the fence: %v", err)
	}
	_ = c2.Close()
}

func raftAddr(m *raftmux.Mux) raft.ServerAddress { return raft.ServerAddress(m.Addr().String()) }
