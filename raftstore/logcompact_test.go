package raftstore

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// fillLog stores entries first..last of incompressible data, with an FSM
// key after each batch so that the group's files hold its FSM beside its
// log, as in a running store, and compacts all of it into the bottom
// level.
func fillLog(t *testing.T, db *pebble.DB, logs *LogStore, first, last uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(first, last))
	for i := first; i <= last; i += 100 {
		var batch []*raft.Log
		for j := i; j < i+100 && j <= last; j++ {
			data := make([]byte, 2048)
			for k := range data {
				data[k] = byte(rng.Uint32())
			}
			batch = append(batch, mkLog(j, 1, string(data)))
		}
		if err := logs.StoreLogs(batch); err != nil {
			t.Fatal(err)
		}
		key := append(kindPrefix(logs.group, kindData), byte(i>>8), byte(i))
		if err := db.Set(key, make([]byte, 2048), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Compact(t.Context(), groupPrefix(logs.group), groupPrefix(logs.group+1), false); err != nil {
		t.Fatal(err)
	}
}

// openManualDB opens a DB with the store's options but no automatic
// compactions (manual ones, the compactor's, still run), so that whether a
// truncation's entries leave the disk depends on the compactor alone, not
// on when Pebble's own compactions (delete-only ones among them) happen to
// run.
func openManualDB(t *testing.T) *pebble.DB {
	t.Helper()
	o := DefaultPebbleOptions()
	o.DisableAutomaticCompactions = true
	o.Logger = pebbleLogger{l: testLogger(t), fatal: func(string) {}}
	db, err := pebble.Open(filepath.Join(t.TempDir(), "pebble"), o)
	if err != nil {
		t.Fatalf("open pebble: %v", err)
	}
	return db
}

func diskUsage(t *testing.T, db *pebble.DB, start, end []byte) uint64 {
	t.Helper()
	n, err := db.EstimateDiskUsage(start, end)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLogCompactorReclaimsTruncatedLog shows the dead log a truncation
// leaves on disk without the compactor, and that the compactor reclaims
// it.
func TestLogCompactorReclaimsTruncatedLog(t *testing.T) {
	db := openManualDB(t)
	defer db.Close()
	logs := NewLogStore(db, 1)
	fillLog(t, db, logs, 1, 4000) // ~8 MiB of log
	logStart := kindPrefix(1, kindLog)

	// Without a compactor: the truncation's range tombstone is flushed,
	// but the entries it deletes stay in the bottom level's files.
	if err := logs.DeleteRange(1, 2000); err != nil {
		t.Fatal(err)
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := diskUsage(t, db, logStart, logKeyAfter(1, 2000)); n < 3<<20 {
		t.Fatalf("entries 1-2000 take %d bytes on disk after the truncation and a flush; want the ~4 MiB still there", n)
	}

	c := newLogCompactor(db, testLogger(t), time.Millisecond, 64<<10)
	defer c.close()
	logs.truncated = c.truncated
	if err := logs.DeleteRange(2001, 3000); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the truncated log's disk usage to drop", func() bool {
		return diskUsage(t, db, logStart, logKeyAfter(1, 3000)) < 64<<10
	})
	// The live entries are intact.
	if first, last := indexes(t, logs); first != 3001 || last != 4000 {
		t.Fatalf("log %d-%d after the compaction, want 3001-4000", first, last)
	}
	var l raft.Log
	if err := logs.GetLog(3500, &l); err != nil || l.Index != 3500 || len(l.Data) != 2048 {
		t.Fatalf("entry 3500 after the compaction: %+v, %v", l, err)
	}
	if n := diskUsage(t, db, logKeyAfter(1, 3000), kindPrefix(1, kindLog+1)); n < 1<<20 {
		t.Fatalf("the live entries 3001-4000 take %d bytes on disk, want ~2 MiB", n)
	}
}

// TestLogCompactorWaitsBetweenRounds checks that a truncation within the
// interval after a round waits for the next round.
func TestLogCompactorWaitsBetweenRounds(t *testing.T) {
	db := openManualDB(t)
	defer db.Close()
	logs := NewLogStore(db, 1)
	fillLog(t, db, logs, 1, 3000)
	logStart := kindPrefix(1, kindLog)

	c := newLogCompactor(db, testLogger(t), time.Hour, 64<<10)
	defer c.close()
	logs.truncated = c.truncated
	// The first truncation is compacted at once: no round ran before.
	if err := logs.DeleteRange(1, 1000); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the first truncation's disk usage to drop", func() bool {
		return diskUsage(t, db, logStart, logKeyAfter(1, 1000)) < 64<<10
	})
	// The second waits out the interval: it stays pending.
	if err := logs.DeleteRange(1001, 2000); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		pending := c.pending[1]
		c.mu.Unlock()
		if pending != 2000 {
			t.Fatalf("pending truncation of group 1 is %d within the interval, want 2000", pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStoreCompactsTruncatedLog runs a group through snapshots and log
// truncations and checks that the store hands them to its compactor, which
// reclaims what they deleted. The compactor's interval is cut to 10ms, so
// that the test waits for the group, not for the interval.
func TestStoreCompactsTruncatedLog(t *testing.T) {
	layer := newTCPLayer(t, "")
	s, err := Open(Options{
		NodeID:  "n1",
		Dir:     t.TempDir(),
		Network: testNet{testGroup: layer},
		Logger:  testLogger(t),
		Raft: func(c *raft.Config) {
			fastRaft(c)
			c.SnapshotThreshold = 256
			c.TrailingLogs = 8
			c.SnapshotInterval = 50 * time.Millisecond
		},
	})
	if err != nil {
		_ = layer.Close()
		t.Fatal(err)
	}
	defer s.Close()
	s.logCompactor.close()
	s.logCompactor = newLogCompactor(s.db, testLogger(t), 10*time.Millisecond, logCompactMinBytes)
	peers := []raft.Server{{ID: "n1", Address: raft.ServerAddress(layer.Addr().String())}}
	g, err := s.OpenGroup(GroupConfig{ID: testGroup, Peers: peers, Machine: &counterMachine{}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the group to elect itself", g.IsLeader)

	// ~6 MiB of incompressible commands (and as much again of FSM state),
	// more than a memtable, so that entries reach sstables before raft
	// truncates them.
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range 50 {
				cmd := make([]byte, 16<<10)
				for k := range cmd {
					cmd[k] = byte(rng.Uint32())
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := g.Propose(ctx, cmd, nil)
				cancel()
				if err != nil {
					t.Errorf("propose: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	db := s.DB()
	logStart := kindPrefix(testGroup, kindLog)
	var first, size uint64
	waitFor(t, 30*time.Second, "the truncated log reclaimed", func() bool {
		var err error
		if first, err = g.logs.FirstIndex(); err != nil {
			t.Fatal(err)
		}
		if first <= 1 || s.logCompactor.compacted.Load() == 0 {
			return false
		}
		size = diskUsage(t, db, logStart, logKey(testGroup, first))
		return size < 256<<10
	})
	t.Logf("log starts at %d; the truncated range takes %d bytes after %d compactions", first, size, s.logCompactor.compacted.Load())
}

// TestLogStoreReportsHeadTruncations checks that only deletions of the
// log's head reach the compactor, not a conflicting suffix.
func TestLogStoreReportsHeadTruncations(t *testing.T) {
	db := openTestDB(t, nil, filepath.Join(t.TempDir(), "pebble"))
	defer db.Close()
	logs := NewLogStore(db, 1)
	var got []uint64
	logs.truncated = func(group, max uint64) { got = append(got, max) }
	var entries []*raft.Log
	for i := uint64(1); i <= 100; i++ {
		entries = append(entries, mkLog(i, 1, "x"))
	}
	if err := logs.StoreLogs(entries); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]uint64{{81, 100}, {1, 40}, {41, 80}} { // suffix, head, the rest
		if err := logs.DeleteRange(r[0], r[1]); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 || got[0] != 40 || got[1] != 80 {
		t.Fatalf("reported truncations up to %v, want [40 80]", got)
	}
}
