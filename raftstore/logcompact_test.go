package raftstore

import (
	"math/rand/v2"
	"path/filepath"
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
	db := openTestDB(t, nil, filepath.Join(t.TempDir(), "pebble"))
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
	db := openTestDB(t, nil, filepath.Join(t.TempDir(), "pebble"))
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
