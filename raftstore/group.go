package raftstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Group is this node's replica of one Raft group. Its methods are safe for
// concurrent use.
type Group struct {
	id     uint64
	store  *Store
	raft   *raft.Raft
	fsm    *fsm
	logs   *LogStore
	logger hclog.Logger

	// barrierTerm is the term in which this replica, as leader, last
	// completed a Barrier: every entry of earlier terms is applied.
	barrierTerm atomic.Uint64
	barrierMu   sync.Mutex

	closed       atomic.Bool
	shutdownOnce sync.Once
	shutdownErr  error

	// Waiters: one goroutine per raft future being awaited (see await).
	// stop is closed by shutdown once raft has stopped.
	waitMu   sync.Mutex
	stopping bool
	waiters  sync.WaitGroup
	pending  atomic.Int64
	stop     chan struct{}
}

// waiterGrace bounds how long shutdown waits, after raft has stopped, for
// the goroutines awaiting raft futures. raft resolves every future when it
// shuts down except, in a narrow race, commands queued for the FSM at that
// moment; their waiters are abandoned after this grace, with a log line.
const waiterGrace = 2 * time.Second

// await waits for f like f.Error(), but returns early when ctx ends
// (wrapping ctx.Err()) or the group shuts down (raft.ErrRaftShutdown). The
// future itself is awaited by a goroutine owned by the group.
func (g *Group) await(ctx context.Context, f raft.Future) error {
	g.waitMu.Lock()
	if g.stopping {
		g.waitMu.Unlock()
		return raft.ErrRaftShutdown
	}
	g.waiters.Add(1)
	g.pending.Add(1)
	g.waitMu.Unlock()
	done := make(chan error, 1)
	go func() {
		defer g.waiters.Done()
		defer g.pending.Add(-1)
		done <- f.Error()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-g.stop:
		// raft has stopped: every future it resolved is resolved by now.
		select {
		case err := <-done:
			return err
		default:
			return raft.ErrRaftShutdown
		}
	}
}

// ID returns the group ID.
func (g *Group) ID() uint64 { return g.id }

// Raft returns the underlying raft.Raft, for tests and administration
// (membership changes). Do not call Apply on it directly: commands must go
// through Propose, which wraps them in the envelope the FSM expects.
func (g *Group) Raft() *raft.Raft { return g.raft }

// Propose replicates cmd through the group's log and returns the result of
// StateMachine.Apply on this replica, once the command is committed and
// applied here. Only the leader accepts proposals: elsewhere it fails with a
// *NotLeaderError naming the leader it knows of.
//
// idemKey, if not empty, makes the command idempotent: the FSM remembers
// the key with the result of the first application (for IdempotencyWindow
// log indexes), and a later command with the same key is not applied again
// but answered with that first result. The command must then be the same
// each time; the key is the caller's to choose (at most 1 KiB).
//
// A *NotLeaderError can also mean that leadership was lost after the
// command was appended (raft.ErrLeadershipLost): the command may or may not
// commit. Retrying it with the same idemKey at the new leader is always
// safe; retrying without one may apply it twice.
//
// ctx bounds the whole call. When ctx ends after the command was queued,
// Propose returns ctx's error (errors.Is(err, context.DeadlineExceeded) or
// context.Canceled) and the outcome is unknown: the command may still
// commit. As with leadership loss, retry with the same idemKey.
func (g *Group) Propose(ctx context.Context, cmd, idemKey []byte) ([]byte, error) {
	res, _, err := g.ProposeAt(ctx, cmd, idemKey)
	return res, err
}

// ProposeAt is Propose that also returns the log index at which the
// command was applied: the state right after it is the state at that
// applied index (what a change feed position or AppliedIndex compares
// with). The index is 0 when the result is nil (see Propose) or an error.
func (g *Group) ProposeAt(ctx context.Context, cmd, idemKey []byte) ([]byte, uint64, error) {
	if g.closed.Load() {
		return nil, 0, ErrClosed
	}
	if len(idemKey) > maxIdemKey {
		return nil, 0, fmt.Errorf("raftstore: group %d: idempotency key of %d bytes exceeds %d", g.id, len(idemKey), maxIdemKey)
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return nil, 0, context.DeadlineExceeded
		}
	}
	data := appendEnvelope(make([]byte, 0, 1+2+len(idemKey)+len(cmd)), idemKey, cmd)
	f := g.raft.Apply(data, timeout)
	if err := g.await(ctx, f); err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil, 0, fmt.Errorf("raftstore: group %d: propose: outcome unknown: %w", g.id, err)
		}
		return nil, 0, g.mapErr("propose", err)
	}
	switch r := f.Response().(type) {
	case []byte:
		return r, f.Index(), nil
	case error:
		return nil, 0, r
	case nil:
		// A skipped entry (already applied before a restart): nobody can
		// be waiting for it on this replica's current incarnation.
		return nil, 0, nil
	default:
		return nil, 0, fmt.Errorf("raftstore: group %d: unexpected apply result %T", g.id, r)
	}
}

// readGate is what every read does before it touches the state: fail on a
// closed group or a done ctx, and for ReadLinearizable confirm leadership
// (see Read). An unknown mode is an error.
func (g *Group) readGate(ctx context.Context, mode ReadMode) error {
	if g.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	switch mode {
	case ReadLocal:
	case ReadLinearizable:
		if err := g.confirmLeader(ctx); err != nil {
			return err
		}
	default:
		return fmt.Errorf("raftstore: group %d: unknown read mode %d", g.id, mode)
	}
	return nil
}

// Read runs fn against the group's application state, as mode requires.
// fn sees one consistent view of the state (a Pebble snapshot), and must not
// retain the Reader after returning. One exception, on followers only: a
// ReadLocal that overlaps the install of a snapshot sent by the leader may
// see some keys already replaced by the newer state.
//
// ReadLinearizable fails with a *NotLeaderError on a follower. On the leader
// it waits, once per term, for a Barrier (every entry of earlier terms is
// applied), then confirms leadership with a quorum (VerifyLeader) for each
// read. ctx bounds the whole call.
func (g *Group) Read(ctx context.Context, mode ReadMode, fn func(Reader) error) error {
	if err := g.readGate(ctx, mode); err != nil {
		return err
	}
	s := g.store
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.dbClosed || g.closed.Load() {
		return ErrClosed
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	return fn(newDataReader(snap, g.id))
}

// confirmLeader makes sure this replica is the leader and has applied
// everything committed before the call.
func (g *Group) confirmLeader(ctx context.Context) error {
	if g.raft.State() != raft.Leader {
		return g.notLeader()
	}
	if err := g.barrier(ctx); err != nil {
		return err
	}
	if err := g.await(ctx, g.raft.VerifyLeader()); err != nil {
		return g.mapErr("verify leader", err)
	}
	return nil
}

// barrier runs a raft Barrier unless one already completed in the current
// term.
func (g *Group) barrier(ctx context.Context) error {
	term := g.raft.CurrentTerm()
	if g.barrierTerm.Load() == term {
		return nil
	}
	g.barrierMu.Lock()
	defer g.barrierMu.Unlock()
	term = g.raft.CurrentTerm()
	if g.barrierTerm.Load() == term {
		return nil
	}
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return context.DeadlineExceeded
		}
	}
	if err := g.await(ctx, g.raft.Barrier(timeout)); err != nil {
		return g.mapErr("barrier", err)
	}
	// Record the barrier only if the term did not move meanwhile: then it
	// was this term's leader that applied everything before it.
	if g.raft.CurrentTerm() == term {
		g.barrierTerm.Store(term)
	}
	return nil
}

// IsLeader reports whether this replica is the group's leader.
func (g *Group) IsLeader() bool { return g.raft.State() == raft.Leader }

// Leader returns the ID and Raft address of the leader this replica knows
// of; both are empty if it knows none.
func (g *Group) Leader() (id, addr string) {
	a, i := g.raft.LeaderWithID()
	return string(i), string(a)
}

// TransferLeadership asks raft to hand leadership to another voter and
// waits for the outcome. It fails with a *NotLeaderError on a follower.
func (g *Group) TransferLeadership() error {
	if g.closed.Load() {
		return ErrClosed
	}
	if err := g.await(context.Background(), g.raft.LeadershipTransfer()); err != nil {
		return g.mapErr("transfer leadership", err)
	}
	return nil
}

// AppliedIndex returns the last log index applied to (and recorded in) the
// group's state.
func (g *Group) AppliedIndex() uint64 { return g.fsm.applied.Load() }

// AppliedEpoch returns the applied index together with the group's restore
// epoch, a number that changes with every snapshot restore (a restore
// replaces the state wholesale, without applying the entries in between).
// ok is false while a restore runs; ask again later. Two calls that return
// the same epoch saw no restore between them, so state derived from the
// applied entries (a change feed) is still complete; with a new epoch it
// must be rebuilt from index on.
func (g *Group) AppliedEpoch() (index, epoch uint64, ok bool) {
	s1 := g.fsm.restoreSeq.Load()
	index = g.fsm.applied.Load()
	s2 := g.fsm.restoreSeq.Load()
	return index, s1, s1 == s2 && s1%2 == 0
}

// GroupStats is a point-in-time summary of a replica.
type GroupStats struct {
	ID    uint64
	State string // raft.RaftState: Follower, Candidate, Leader, Shutdown
	Term  uint64
	// AppliedIndex is the FSM's durable applied index; CommitIndex and
	// LastIndex are raft's.
	AppliedIndex uint64
	CommitIndex  uint64
	LastIndex    uint64
	LeaderID     string
	LeaderAddr   string
	// SnapshotRestores counts snapshots restored into the FSM since the
	// group was opened (installs sent by a leader, crash recovery).
	SnapshotRestores uint64
}

// Stats returns the replica's state.
func (g *Group) Stats() GroupStats {
	id, addr := g.Leader()
	return GroupStats{
		ID:               g.id,
		State:            g.raft.State().String(),
		Term:             g.raft.CurrentTerm(),
		AppliedIndex:     g.fsm.applied.Load(),
		CommitIndex:      g.raft.CommitIndex(),
		LastIndex:        g.raft.LastIndex(),
		LeaderID:         id,
		LeaderAddr:       addr,
		SnapshotRestores: g.fsm.restores.Load(),
	}
}

// Snapshot makes raft take a snapshot now (and compact its log), and waits
// for it. It is for tests and administration: raft snapshots on its own by
// SnapshotThreshold and SnapshotInterval.
func (g *Group) Snapshot() error {
	if g.closed.Load() {
		return ErrClosed
	}
	if err := g.await(context.Background(), g.raft.Snapshot()); err != nil {
		return g.mapErr("snapshot", err)
	}
	return nil
}

// shutdown stops raft and its transport, waits for their goroutines, then
// for the group's waiter goroutines (bounded by waiterGrace).
func (g *Group) shutdown() error {
	g.shutdownOnce.Do(func() {
		g.closed.Store(true)
		if err := g.raft.Shutdown().Error(); err != nil {
			g.shutdownErr = fmt.Errorf("raftstore: group %d: shutdown: %w", g.id, err)
		}
		g.waitMu.Lock()
		g.stopping = true
		g.waitMu.Unlock()
		close(g.stop)
		deadline := time.Now().Add(waiterGrace)
		for g.pending.Load() > 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := g.pending.Load(); n > 0 {
			g.logger.Error("raft left futures unresolved at shutdown; abandoning their waiters", "count", n)
			return
		}
		g.waiters.Wait()
	})
	return g.shutdownErr
}

// notLeader returns a *NotLeaderError with the leader this replica knows.
func (g *Group) notLeader() error {
	id, addr := g.Leader()
	return &NotLeaderError{Group: g.id, LeaderID: id, LeaderAddr: addr}
}

// mapErr translates raft's errors to the package's.
func (g *Group) mapErr(op string, err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader),
		errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return g.notLeader()
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("raftstore: group %d: %s: %w (%w)", g.id, op, err, context.DeadlineExceeded)
	default:
		return fmt.Errorf("raftstore: group %d: %s: %w", g.id, op, err)
	}
}
