package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/go-hclog"
)

// Usage is what a node's data directory (Options.Dir) holds on disk, by
// kind. Sizes are in bytes. The sstable figures per group are Pebble's
// estimates (DB.EstimateDiskUsage: whole sstables inside the range, and the
// overlapping data blocks of the ones that straddle a boundary, so a block
// on a boundary counts on both sides); what is still only in the WAL (the
// memtables) is counted in WAL, not in any group.
type Usage struct {
	// Total is every file under the directory.
	Total int64
	// Pebble is every file of the Pebble DB (Dir/pebble).
	Pebble int64
	// SSTables is Pebble's sstables, WAL its write-ahead log files; the
	// rest of Pebble (MANIFEST, OPTIONS, markers) is Pebble - SSTables - WAL.
	SSTables, WAL int64
	// Snapshots is every raft snapshot file (Dir/snapshots).
	Snapshots int64
	// Groups has one entry per group with keys in the DB, by ID.
	Groups []GroupUsage
}

// GroupUsage is one group's share of a Usage.
type GroupUsage struct {
	ID uint64
	// Log is the raft log's sstable bytes; FirstIndex and LastIndex are its
	// first and last entries (0 when empty).
	Log                   int64
	FirstIndex, LastIndex uint64
	// FSM is the sstable bytes of the state machine's range (metadata,
	// idempotency table and application data: what a snapshot holds).
	FSM int64
	// Snapshots is the group's raft snapshot files.
	Snapshots int64
}

// DiskUsage reports what the data directory dir of a stopped node holds. It
// opens the Pebble DB read-only, so the node must not be running (Pebble's
// lock refuses a second open).
func DiskUsage(dir string) (Usage, error) {
	var u Usage
	pdir := filepath.Join(dir, "pebble")
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n := info.Size()
		u.Total += n
		rel, _ := filepath.Rel(dir, path)
		switch {
		case strings.HasPrefix(path, pdir+string(filepath.Separator)):
			u.Pebble += n
			switch filepath.Ext(path) {
			case ".sst":
				u.SSTables += n
			case ".log":
				u.WAL += n
			}
		case strings.HasPrefix(rel, "snapshots"+string(filepath.Separator)):
			u.Snapshots += n
		}
		return nil
	})
	if err != nil {
		return Usage{}, fmt.Errorf("raftstore: disk usage of %s: %w", dir, err)
	}
	snapGroups, err := snapshotUsage(filepath.Join(dir, "snapshots"))
	if err != nil {
		return Usage{}, err
	}

	// A fatal error panics in the failing call (see pebbleLogger): this
	// is a reporting tool, not a replica.
	quiet := pebbleLogger{l: hclog.NewNullLogger(), fatal: func(string) {}}
	db, err := pebble.Open(pdir, &pebble.Options{ReadOnly: true, Logger: quiet})
	if err != nil {
		return Usage{}, fmt.Errorf("raftstore: open %s read-only: %w", pdir, err)
	}
	defer db.Close()
	groups, err := listGroups(db)
	if err != nil {
		return Usage{}, fmt.Errorf("raftstore: disk usage of %s: %w", pdir, err)
	}
	for _, id := range groups {
		g := GroupUsage{ID: id, Snapshots: snapGroups[id]}
		logBytes, err := db.EstimateDiskUsage(kindPrefix(id, kindLog), kindPrefix(id, kindLog+1))
		if err != nil {
			return Usage{}, fmt.Errorf("raftstore: group %d: log usage: %w", id, err)
		}
		fsmBytes, err := db.EstimateDiskUsage(kindPrefix(id, kindMeta), kindPrefix(id, kindData+1))
		if err != nil {
			return Usage{}, fmt.Errorf("raftstore: group %d: fsm usage: %w", id, err)
		}
		g.Log, g.FSM = int64(logBytes), int64(fsmBytes)
		ls := NewLogStore(db, id)
		if g.FirstIndex, err = ls.FirstIndex(); err != nil {
			return Usage{}, fmt.Errorf("raftstore: group %d: %w", id, err)
		}
		if g.LastIndex, err = ls.LastIndex(); err != nil {
			return Usage{}, fmt.Errorf("raftstore: group %d: %w", id, err)
		}
		u.Groups = append(u.Groups, g)
	}
	return u, nil
}

// listGroups returns the IDs of the groups with keys in db, in order.
func listGroups(db *pebble.DB) ([]uint64, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{keyspaceGroups}, UpperBound: []byte{keyspaceGroups + 1}})
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for ok := it.First(); ok; {
		k := it.Key()
		if len(k) < groupPrefixLen {
			ok = it.Next()
			continue
		}
		id := binary.BigEndian.Uint64(k[1:groupPrefixLen])
		ids = append(ids, id)
		if id == ^uint64(0) {
			break
		}
		ok = it.SeekGE(groupPrefix(id + 1))
	}
	return ids, it.Close()
}

// snapshotUsage sums the raft snapshot files of each group under base
// (base/<group>/snapshots/...).
func snapshotUsage(base string) (map[uint64]int64, error) {
	out := make(map[uint64]int64)
	entries, err := os.ReadDir(base)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("raftstore: disk usage: %w", err)
	}
	for _, e := range entries {
		id, err := strconv.ParseUint(e.Name(), 10, 64)
		if err != nil || !e.IsDir() {
			continue
		}
		err = filepath.WalkDir(filepath.Join(base, e.Name()), func(_ string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			out[id] += info.Size()
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("raftstore: disk usage of group %d's snapshots: %w", id, err)
		}
	}
	return out, nil
}
