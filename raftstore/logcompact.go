package raftstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/go-hclog"
)

// Reclaiming a truncated raft log.
//
// Raft truncates a group's log after each snapshot with one range deletion
// (LogStore.DeleteRange). Pebble drops the deleted entries only when a
// compaction carries the range tombstone into the files that hold them,
// and by then most of them sit in the bottom level, whose files also hold
// the start of the group's FSM: Pebble's own compactions reach those files
// only when the level above fills, and none run while a node is idle. So a
// node kept several truncations' worth of dead log on disk, ~27 bytes per
// link at 1,000,000 links, more than the group's live log
// (docs/BENCHMARKS.md, "Disk at 1,000,000 links").
//
// The store's logCompactor runs a manual compaction of each truncated log
// range in the background, at most one round that compacts per
// logCompactInterval, and only for ranges whose dead entries Pebble still
// counts at least logCompactMinBytes of disk for.

// logCompactInterval is the least time from a round that compacted a
// range to the next round. A round rewrites the files that overlap each
// truncated range, on every level; at peak load a group truncates every
// few seconds, and one round per interval bounds what those rewrites add
// to Pebble's own compactions, while the dead log of the last truncation
// is gone within the interval once a node goes idle.
const logCompactInterval = 30 * time.Second

// logCompactMinBytes is the least disk usage of a truncated range worth a
// compaction: below it the entries are still in the memtable or in small
// upper-level files that Pebble's own compactions soon fold.
const logCompactMinBytes = 1 << 20

// logCompactor reclaims the disk of truncated raft log ranges (see above).
// It owns one goroutine, from newLogCompactor to close.
type logCompactor struct {
	db       *pebble.DB
	logger   hclog.Logger
	interval time.Duration
	minBytes uint64

	mu      sync.Mutex
	pending map[uint64]uint64 // group -> highest truncated index not compacted yet

	compacted atomic.Int64 // ranges compacted so far

	wake   chan struct{} // capacity 1: a truncation is pending
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// newLogCompactor starts a compactor of db's raft logs.
func newLogCompactor(db *pebble.DB, logger hclog.Logger, interval time.Duration, minBytes uint64) *logCompactor {
	ctx, cancel := context.WithCancel(context.Background())
	c := &logCompactor{
		db:       db,
		logger:   logger,
		interval: interval,
		minBytes: minBytes,
		pending:  make(map[uint64]uint64),
		wake:     make(chan struct{}, 1),
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
	}
	go c.run()
	return c
}

// truncated records that group's log entries up to max were deleted. It
// does not block.
func (c *logCompactor) truncated(group, max uint64) {
	c.mu.Lock()
	if max > c.pending[group] {
		c.pending[group] = max
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// close stops the compactor and waits for it: a compaction in progress is
// abandoned (Pebble finishes or drops it before the DB closes). The DB must
// stay open until close returns.
func (c *logCompactor) close() {
	c.cancel()
	<-c.done
}

func (c *logCompactor) run() {
	defer close(c.done)
	var last time.Time // the last round that compacted a range
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.wake:
		}
		if wait := c.interval - time.Since(last); !last.IsZero() && wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-c.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if c.round() {
			last = time.Now()
		}
	}
}

// round compacts every pending truncated range that still holds at least
// minBytes on disk, and reports whether it compacted any. A range under
// minBytes is dropped from pending: its entries are still in the memtable
// or small upper-level files, and the group's next truncation covers it
// again (every range starts at the log's first key).
func (c *logCompactor) round() bool {
	c.mu.Lock()
	pending := c.pending
	c.pending = make(map[uint64]uint64, len(pending))
	c.mu.Unlock()
	compacted := false
	for group, max := range pending {
		if c.ctx.Err() != nil {
			return compacted
		}
		start, end := kindPrefix(group, kindLog), logKeyAfter(group, max)
		size, err := c.db.EstimateDiskUsage(start, end)
		if err != nil {
			c.logger.Warn("estimating a truncated raft log's disk usage failed", "group", group, "index", max, "err", err)
			continue
		}
		if size < c.minBytes {
			continue
		}
		compacted = true
		began := time.Now()
		if err := c.db.Compact(c.ctx, start, end, false); err != nil {
			if c.ctx.Err() == nil {
				c.logger.Warn("compacting a truncated raft log failed", "group", group, "index", max, "err", err)
			}
			continue
		}
		c.compacted.Add(1)
		c.logger.Debug("compacted a truncated raft log", "group", group, "index", max, "bytes", size, "took", time.Since(began))
	}
	return compacted
}
