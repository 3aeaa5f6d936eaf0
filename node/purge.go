package node

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/raftstore"
)

// Defaults of the background purge of expired links (Options.PurgeInterval,
// PurgeGrace, PurgeScanLimit).
const (
	// DefaultPurgeInterval is how often a shard leader looks for expired
	// links to purge.
	DefaultPurgeInterval = time.Minute
	// DefaultPurgeGrace is how long a link stays stored after its expiry
	// before the sweep purges it: longer than any router's click flush
	// interval and cache TTL, so that a purge never races a router that
	// still serves the link from a stale replica or flushes its last
	// clicks.
	DefaultPurgeGrace = time.Hour
	// DefaultPurgeScanLimit bounds the link records one shard's sweep
	// looks at per interval, so that a tick costs the same on a shard of
	// any size; a full pass over a large shard takes several intervals.
	DefaultPurgeScanLimit = 20_000
)

// sweeper is the node's background purge of expired links. Its goroutine
// (run) wakes every PurgeInterval and, for every group this node leads,
// scans up to PurgeScanLimit link records from where the last tick of
// that group stopped, and proposes the expired ones (expiry at or before
// now - PurgeGrace) as linkstore.Purge commands of at most
// linkstore.MaxPurgeItems codes. The purge re-checks each expiry in its
// apply, so a link edited to a later expiry in between stays. The cursors
// are local to this node: a new leader starts its pass from the
// beginning, which only costs a rescan.
type sweeper struct {
	n       *Node
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	cursors map[uint64]*sweepCursor // owned by run
	// purged counts the links this node's proposals purged.
	purged atomic.Uint64
}

// sweepCursor is where a shard's pass stands: the index into the shard's
// partitions and the code to resume after.
type sweepCursor struct {
	partitions []uint32
	index      int
	after      string
}

// startSweeper starts the background purge, unless it is off
// (PurgeInterval < 0).
func (n *Node) startSweeper() {
	if n.opts.PurgeInterval < 0 {
		return
	}
	s := &sweeper{n: n, stop: make(chan struct{}), done: make(chan struct{}), cursors: make(map[uint64]*sweepCursor)}
	n.sweeper = s
	go s.run()
}

// stopSweeper stops the background purge and waits for it; safe to call
// twice and with the purge off. A purge in flight ends with the node's
// context.
func (n *Node) stopSweeper() {
	s := n.sweeper
	if s == nil {
		return
	}
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

// PurgedLinks returns how many expired links this node's sweep has purged
// (as the leader that proposed the purges) since it started.
func (n *Node) PurgedLinks() uint64 {
	if n.sweeper == nil {
		return 0
	}
	return n.sweeper.purged.Load()
}

func (s *sweeper) run() {
	defer close(s.done)
	t := time.NewTicker(s.n.opts.PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		// The replicas the node serves: a replica still joining its
		// group (join.go) is swept once it serves.
		served := s.n.served()
		ids := make([]uint64, 0, len(served))
		for id := range served {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			select {
			case <-s.stop:
				return
			default:
			}
			if g := served[id].g; g.IsLeader() {
				s.sweep(id, g)
			}
		}
	}
}

// sweep runs one tick of shard id's pass: at most PurgeScanLimit records,
// then the purges of what it found.
func (s *sweeper) sweep(id uint64, g *raftstore.Group) {
	cur := s.cursors[id]
	if cur == nil {
		cur = &sweepCursor{partitions: s.n.ring.PartitionsOf(id)}
		s.cursors[id] = cur
	}
	if len(cur.partitions) == 0 {
		return
	}
	cutoff := time.Now().Add(-s.n.opts.PurgeGrace).UnixMilli()
	var items []linkstore.PurgeItem
	budget := s.n.opts.PurgeScanLimit
	ctx, cancel := context.WithTimeout(s.n.ctx, s.n.opts.RequestTimeout)
	err := g.Read(ctx, raftstore.ReadLocal, func(r raftstore.Reader) error {
		for budget > 0 {
			p := cur.partitions[cur.index]
			resume, seen, err := linkstore.ScanExpired(r, p, cur.after, cutoff, budget, func(code string) bool {
				items = append(items, linkstore.PurgeItem{Partition: p, Code: code})
				return true
			})
			if err != nil {
				return err
			}
			if resume != "" {
				// The budget ran out inside the partition.
				cur.after = resume
				return nil
			}
			budget -= seen
			cur.after = ""
			cur.index++
			if cur.index == len(cur.partitions) {
				cur.index = 0
				return nil // one full pass per tick at most
			}
		}
		return nil
	})
	cancel()
	if err != nil {
		s.n.logger.Warn("purge sweep: scan failed", "shard", id, "err", err)
		return
	}
	for len(items) > 0 {
		k := min(len(items), linkstore.MaxPurgeItems)
		s.propose(id, g, cutoff, items[:k])
		items = items[k:]
	}
}

// propose proposes one Purge and logs its outcome. A failure (leadership
// lost, shutdown) is left to a later tick or the next leader.
func (s *sweeper) propose(id uint64, g *raftstore.Group, cutoff int64, items []linkstore.PurgeItem) {
	cmd := linkstore.AppendPurge(nil, linkstore.Purge{CutoffMs: cutoff, Items: items})
	ctx, cancel := context.WithTimeout(s.n.ctx, s.n.opts.RequestTimeout)
	raw, err := g.Propose(ctx, cmd, nil)
	cancel()
	if err != nil {
		s.n.logger.Info("purge sweep: proposal failed", "shard", id, "links", len(items), "err", err)
		return
	}
	if raw == nil {
		return // applied before a restart of this replica
	}
	n, err := linkstore.DecodePurgeResult(raw)
	if err != nil {
		s.n.logger.Error("purge sweep: purge refused", "shard", id, "err", err)
		return
	}
	s.purged.Add(n)
	if n > 0 {
		s.n.logger.Info("purged expired links", "shard", id, "links", n, "cutoff_ms", cutoff)
	}
}
