package node

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shardrpc"
	"github.com/valyala/fasthttp"
)

// Why a node watches its own disk
//
// A Raft leader whose disk stalls (writes block for seconds, nothing
// fails) keeps its leadership in hashicorp/raft: the leader loop waits in
// StoreLogs for the disk, while per-follower goroutines that need no disk
// go on sending heartbeats, so no follower ever times out and the shard
// commits nothing until the disk returns (docs/ROBUSTNESS.md, Findings,
// TestDiskStall). The node therefore measures its disk itself and, when a
// synced write takes longer than DiskHealth.Threshold:
//
//  1. stops answering leader operations (creates, deletes, click flushes,
//     stats, linearizable reads) and its status stops claiming leadership:
//     routers go to the other replicas at once instead of timing out here;
//  2. asks raft to transfer the leadership of every group it leads
//     (TransferLeadership, each in its own goroutine: raft handles the
//     transfer on its leader loop, which is blocked while a log write
//     waits for the disk, so the call may not return before the disk
//     does, and the detector never waits for it). A leader with no write
//     in flight hands over within milliseconds;
//  3. after fenceGrace, raises the fence (fence.go): it sends no more Raft
//     traffic, so the followers of a leader whose loop is blocked miss its
//     heartbeats and elect a new leader within an election timeout. The
//     fence also keeps the node from campaigning while its disk is stalled
//     (it could not persist its vote anyway);
//  4. when the disk answers again, lowers the fence and serves as before:
//     raft steps the old leader down when it hears the new term.
//
// A stall that lasts DiskHealth.FailStop ends the node through
// Options.Fatal, as a failed write does: a disk that has not completed a
// synced write in that long is broken, and a process kept alive on it only
// holds connections, goroutines and memory (and, on a supervisor, never
// gets restarted). Until then the node stays up: a short stall (a cloud
// volume's hiccup, a saturated device) should cost a leader change, not a
// restart with a replay of the WAL and a catch-up.
//
// The measure is a probe: every ProbeInterval the node writes an empty
// record to its Pebble WAL and syncs it (DB.LogData(nil, pebble.Sync)),
// which changes no key and goes through the same WAL and group commit as
// every Raft log append and FSM batch. The watchdog reads the age of the
// probe in flight every watchTick, so a probe that never returns is seen
// as well as one that is only slow. A tick that comes much later than the
// previous one means the process itself was not running (SIGSTOP, a VM
// pause): that time is not charged to the disk, or every node resumed
// after a pause would take its disk for stalled.

// Defaults of DiskHealth.
const (
	// DefaultDiskStallThreshold is how long a synced probe write may take
	// before the node treats its disk as stalled. Healthy fsyncs take
	// milliseconds even on a loaded machine; 2 s leaves room for a busy
	// device without a false alarm, and bounds the unavailability of the
	// shards the node leads to about that plus one election.
	DefaultDiskStallThreshold = 2 * time.Second
	// DefaultDiskStallFailStop is how long a stall may last before the
	// node fail-stops (Options.Fatal).
	DefaultDiskStallFailStop = 30 * time.Second
	// DefaultDiskProbeInterval is the pause between two probe writes.
	DefaultDiskProbeInterval = 200 * time.Millisecond
)

const (
	// watchTick is how often the watchdog looks at the probe in flight.
	watchTick = 50 * time.Millisecond
	// fenceGrace is how long after detecting a stall the node raises the
	// fence: time for a transfer whose leader loop is free to send its
	// TimeoutNow, which the fence would drop.
	fenceGrace = 300 * time.Millisecond
)

// DiskHealth configures the node's disk-stall detector. The zero value is
// the production default.
type DiskHealth struct {
	// Threshold is how long a synced write may take before the disk counts
	// as stalled. Default DefaultDiskStallThreshold; negative turns the
	// detector off.
	Threshold time.Duration
	// FailStop is how long a stall may last before the node ends itself
	// through Options.Fatal. Default DefaultDiskStallFailStop; negative:
	// never.
	FailStop time.Duration
	// ProbeInterval is the pause between probe writes. Default
	// DefaultDiskProbeInterval.
	ProbeInterval time.Duration
}

func (d *DiskHealth) fill() {
	if d.Threshold == 0 {
		d.Threshold = DefaultDiskStallThreshold
	}
	if d.FailStop == 0 {
		d.FailStop = DefaultDiskStallFailStop
	}
	if d.ProbeInterval <= 0 {
		d.ProbeInterval = DefaultDiskProbeInterval
	}
}

// diskHooks are what the watchdog does on each transition. They run on
// the watchdog's goroutine and must not block on the disk.
type diskHooks struct {
	stalled   func()           // a stall was detected
	fence     func()           // fenceGrace after it, still stalled
	recovered func()           // the probe in flight completed
	fatal     func(msg string) // the stall outlasted FailStop
}

// diskWatch is the detector: a prober goroutine that writes and syncs a
// probe record in a loop, and a watchdog goroutine that judges the age of
// the probe in flight (check). Time comes from now, so tests drive check
// with a fake clock.
type diskWatch struct {
	threshold, failStop, interval, tick, grace time.Duration

	probe  func() error
	now    func() time.Time
	logger *slog.Logger
	hooks  diskHooks

	// maxGap: a watchdog tick later than this after the previous one
	// means the process itself did not run (SIGSTOP, a VM pause, CPU
	// starvation); that time is not charged to the disk. 0: no allowance.
	maxGap time.Duration

	mu           sync.Mutex
	lastCheck    time.Time // the previous check; zero before the first
	probeStart   time.Time // start of the probe in flight; zero if none
	stalledSince time.Time // when the stall was detected; zero while healthy
	fenced       bool
	fatalCalled  bool

	stalled atomic.Bool // mirrors !stalledSince.IsZero(), read by the RPC

	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

func newDiskWatch(cfg DiskHealth, probe func() error, logger *slog.Logger, hooks diskHooks) *diskWatch {
	return &diskWatch{
		threshold: cfg.Threshold,
		failStop:  cfg.FailStop,
		interval:  cfg.ProbeInterval,
		tick:      watchTick,
		grace:     fenceGrace,
		maxGap:    4 * watchTick,
		probe:     probe,
		now:       time.Now,
		logger:    logger,
		hooks:     hooks,
		stop:      make(chan struct{}),
	}
}

// start launches the prober and the watchdog; close stops them.
func (w *diskWatch) start() {
	w.wg.Add(2)
	go w.runProber()
	go w.runWatchdog()
}

// close stops both goroutines and waits for them. The prober may be in a
// probe write: close returns when that write does (a store whose disk is
// stalled cannot close before then either).
func (w *diskWatch) close() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.wg.Wait()
}

func (w *diskWatch) runProber() {
	defer w.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
		w.begin(w.now())
		err := w.probe()
		w.end()
		if err != nil {
			w.logger.Warn("disk probe write failed", "err", err)
		}
		t.Reset(w.interval)
	}
}

func (w *diskWatch) runWatchdog() {
	defer w.wg.Done()
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.check(w.now())
		}
	}
}

// begin records that a probe write started at t.
func (w *diskWatch) begin(t time.Time) {
	w.mu.Lock()
	w.probeStart = t
	w.mu.Unlock()
}

// end records that the probe write in flight returned.
func (w *diskWatch) end() {
	w.mu.Lock()
	w.probeStart = time.Time{}
	w.mu.Unlock()
}

// isStalled reports whether the disk counts as stalled now.
func (w *diskWatch) isStalled() bool { return w.stalled.Load() }

// check judges the disk at time now and runs the hooks of any transition.
func (w *diskWatch) check(now time.Time) {
	var acts []func()
	w.mu.Lock()
	inFlight := !w.probeStart.IsZero()
	if gap := now.Sub(w.lastCheck); inFlight && w.maxGap > 0 && !w.lastCheck.IsZero() && gap > w.maxGap {
		// The watchdog did not run for gap: neither did the prober, so
		// the probe's wait is not the disk's. Count one tick of it.
		w.probeStart = w.probeStart.Add(gap - w.tick)
	}
	w.lastCheck = now
	age := now.Sub(w.probeStart)
	switch {
	case w.stalledSince.IsZero():
		if inFlight && age >= w.threshold {
			w.stalledSince = now
			w.stalled.Store(true)
			w.logger.Warn("disk stalled: a synced write has not finished; giving up leadership", "waiting", age.Round(time.Millisecond), "threshold", w.threshold)
			acts = append(acts, w.hooks.stalled)
			if w.grace <= 0 {
				w.fenced = true
				acts = append(acts, w.hooks.fence)
			}
		}
	case !inFlight:
		w.logger.Warn("disk recovered: synced writes complete again", "stalled_for", now.Sub(w.stalledSince).Round(time.Millisecond))
		w.stalledSince = time.Time{}
		w.stalled.Store(false)
		w.fenced = false
		w.fatalCalled = false
		acts = append(acts, w.hooks.recovered)
	default:
		if !w.fenced && now.Sub(w.stalledSince) >= w.grace {
			w.fenced = true
			acts = append(acts, w.hooks.fence)
		}
		if w.failStop > 0 && age >= w.failStop && !w.fatalCalled {
			w.fatalCalled = true
			msg := fmt.Sprintf("disk stalled: a synced write has not finished after %s (fail-stop bound %s)", age.Round(time.Millisecond), w.failStop)
			acts = append(acts, func() { w.hooks.fatal(msg) })
		}
	}
	w.mu.Unlock()
	for _, a := range acts {
		if a != nil {
			a()
		}
	}
}

// nodeDisk is the node's part of the detector: the fence on its Raft
// traffic, the watch, and the leadership transfers it started.
type nodeDisk struct {
	fence *fence
	watch *diskWatch // nil with the detector off

	mu           sync.Mutex
	transferring map[uint64]bool
	transfers    sync.WaitGroup
}

// startDiskWatch starts the detector on the node's store (after the
// groups are open).
func (n *Node) startDiskWatch() {
	cfg := n.opts.DiskHealth
	cfg.fill()
	if cfg.Threshold < 0 {
		return
	}
	db := n.store.DB()
	probe := func() error {
		if err := db.LogData(nil, pebble.Sync); err != nil {
			return fmt.Errorf("sync a probe record to the WAL: %w", err)
		}
		return nil
	}
	n.disk.watch = newDiskWatch(cfg, probe, n.logger, diskHooks{
		stalled: n.transferLeadsAway,
		fence: func() {
			n.logger.Warn("disk still stalled: fencing the node's Raft traffic so that its shards elect other leaders")
			n.disk.fence.raise()
		},
		recovered: n.disk.fence.lift,
		fatal:     n.diskFatal,
	})
	n.disk.watch.start()
}

// stopDiskWatch stops the detector; it must run before the store closes
// (the prober writes to it).
func (n *Node) stopDiskWatch() {
	if n.disk.watch != nil {
		n.disk.watch.close()
	}
}

// waitDiskTransfers waits for the leadership transfers the detector
// started; they end at the latest when the store has shut the groups down.
func (n *Node) waitDiskTransfers() { n.disk.transfers.Wait() }

// diskStalled reports whether the node's disk counts as stalled now: it
// then serves no leader operation.
func (n *Node) diskStalled() bool {
	return n.disk.watch != nil && n.disk.watch.isStalled()
}

// transferLeadsAway asks every group this node leads to hand leadership
// to another voter, each in a goroutine of its own (at most one per group
// at a time): the detector must not wait for a leader loop that waits for
// the disk.
func (n *Node) transferLeadsAway() {
	for _, id := range n.store.Groups() {
		g, err := n.store.Group(id)
		if err != nil || !g.IsLeader() || !hasOtherVoter(g) {
			continue
		}
		n.disk.mu.Lock()
		if n.disk.transferring == nil {
			n.disk.transferring = make(map[uint64]bool)
		}
		busy := n.disk.transferring[id]
		n.disk.transferring[id] = true
		n.disk.mu.Unlock()
		if busy {
			continue
		}
		n.disk.transfers.Add(1)
		go func(id uint64, g *raftstore.Group) {
			defer n.disk.transfers.Done()
			start := time.Now()
			err := g.TransferLeadership()
			n.disk.mu.Lock()
			delete(n.disk.transferring, id)
			n.disk.mu.Unlock()
			if err != nil {
				n.logger.Warn("disk stall: leadership transfer failed (the fence makes the followers elect)", "shard", id, "after", time.Since(start).Round(time.Millisecond), "err", err)
				return
			}
			n.logger.Info("disk stall: leadership transferred", "shard", id, "after", time.Since(start).Round(time.Millisecond))
		}(id, g)
	}
}

// diskFatal ends the node after a stall longer than DiskHealth.FailStop,
// through Options.Fatal like a failed write (nil: log and exit 1).
func (n *Node) diskFatal(msg string) {
	n.logger.Error("fatal storage error", "error", msg)
	if n.opts.Fatal != nil {
		n.opts.Fatal(msg)
		return
	}
	os.Exit(1)
}

// leaderOnly reports whether the RPC at path needs the shard's leader and
// its disk (a proposal, a membership change or a leader's linearizable
// read; a resolve is one only when it asks to be linearizable, which
// resolve checks itself). A new leader RPC belongs here.
func leaderOnly(path []byte) bool {
	switch string(path) {
	case shardrpc.PathCreate, shardrpc.PathDelete, shardrpc.PathClicks, shardrpc.PathStats,
		shardrpc.PathList, shardrpc.PathGroupJoin, shardrpc.PathGroupPromote, shardrpc.PathChanges:
		return true
	}
	return false
}

// refuseStalled answers a leader operation while the disk is stalled:
// not_leader naming no leader, so the caller tries the other replicas at
// once instead of waiting here for a disk that does not answer.
func (n *Node) refuseStalled(ctx *fasthttp.RequestCtx, shard uint64) {
	writeError(ctx, shardrpc.ErrorBody{
		Code:    shardrpc.ErrCodeNotLeader,
		Message: fmt.Sprintf("node %s does not serve shard %d as leader: its disk is stalled", n.self.ID, shard),
	})
}
