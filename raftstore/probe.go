package raftstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// GroupProbe is what this node's disk holds of one group's raft state. It
// is read without opening the group, and also while it is open.
type GroupProbe struct {
	// HasState is raft.HasExistingState: the group has log entries, a
	// current term or a snapshot here. OpenGroup resumes such a group and
	// never bootstraps it.
	HasState bool
	// LastIndex is the last raft log index here, 0 for an empty log.
	LastIndex uint64
	// Term is the stored current term, 0 for none.
	Term uint64
	// Applied is the FSM's durable applied index.
	Applied uint64
	// Snapshots is how many raft snapshots are on disk.
	Snapshots int
}

// Ran reports whether the group went beyond its bootstrap here: a log past
// the bootstrap configuration entry (index 1), an applied entry or a
// snapshot. Every leader's first act is to append an entry (raft's no-op at
// index 2 or later), so a replica whose group never ran holds at most the
// bootstrap entry: it never received an entry from a leader, and no vote it
// cast ever elected one that appended anything.
func (p GroupProbe) Ran() bool {
	return p.LastIndex > 1 || p.Applied > 0 || p.Snapshots > 0
}

// Probe reads what the node holds of group id's raft state, whether the
// group is open or not.
func (s *Store) Probe(id uint64) (GroupProbe, error) {
	if id == 0 {
		return GroupProbe{}, errors.New("raftstore: group ID 0 is reserved")
	}
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.dbClosed {
		return GroupProbe{}, ErrClosed
	}
	var p GroupProbe
	logs := NewLogStore(s.db, id)
	var err error
	if p.LastIndex, err = logs.LastIndex(); err != nil {
		return GroupProbe{}, err
	}
	p.Term, err = logs.GetUint64(keyCurrentTerm)
	if err != nil && !errors.Is(err, errStableNotFound) {
		return GroupProbe{}, err
	}
	if p.Applied, err = readApplied(s.db, metaKey(id, metaApplied, nil)); err != nil {
		return GroupProbe{}, fmt.Errorf("raftstore: group %d: %w", id, err)
	}
	if p.Snapshots, err = countSnapshots(filepath.Join(s.opts.Dir, "snapshots", fmt.Sprint(id), "snapshots")); err != nil {
		return GroupProbe{}, fmt.Errorf("raftstore: group %d: %w", id, err)
	}
	// raft.HasExistingState: a current term, a last log index or a
	// snapshot.
	p.HasState = p.Term != 0 || p.LastIndex != 0 || p.Snapshots > 0
	return p, nil
}

// keyCurrentTerm is the stable store key hashicorp/raft keeps its current
// term under (raft.go, keyCurrentTerm).
var keyCurrentTerm = []byte("CurrentTerm")

// countSnapshots counts the complete snapshots raft.FileSnapshotStore keeps
// in dir: one directory each; ".tmp" ones are still being written.
func countSnapshots(dir string) (int, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list snapshots in %s: %w", dir, err)
	}
	n := 0
	for _, e := range ents {
		if e.IsDir() && !strings.HasSuffix(e.Name(), ".tmp") {
			n++
		}
	}
	return n, nil
}
