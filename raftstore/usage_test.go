package raftstore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

func TestDiskUsage(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, nil, filepath.Join(dir, "pebble"))
	// Group 1: a raft log of entries 5..404 and FSM state; group 3: FSM
	// state only.
	logs := NewLogStore(db, 1)
	var entries []*raft.Log
	for i := uint64(5); i < 405; i++ {
		entries = append(entries, mkLog(i, 1, strings.Repeat("l", 200)))
	}
	if err := logs.StoreLogs(entries); err != nil {
		t.Fatal(err)
	}
	fill(newTestFSM(t, db, 1, &counterMachine{}), 1, 300, "a")
	fill(newTestFSM(t, db, 3, &counterMachine{}), 1, 300, "b")
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(dir, "snapshots", "1", "snapshots", "1-404-1", "state.bin")
	if err := os.MkdirAll(filepath.Dir(snap), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(snap, make([]byte, 1234), 0o644); err != nil {
		t.Fatal(err)
	}

	u, err := DiskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Groups) != 2 || u.Groups[0].ID != 1 || u.Groups[1].ID != 3 {
		t.Fatalf("groups %+v, want 1 and 3", u.Groups)
	}
	g1, g3 := u.Groups[0], u.Groups[1]
	if g1.FirstIndex != 5 || g1.LastIndex != 404 {
		t.Errorf("group 1 log %d-%d, want 5-404", g1.FirstIndex, g1.LastIndex)
	}
	if g1.Log <= 0 || g1.FSM <= 0 || g3.FSM <= 0 {
		t.Errorf("sstable bytes: group 1 log %d fsm %d, group 3 fsm %d; want all > 0", g1.Log, g1.FSM, g3.FSM)
	}
	if g3.FirstIndex != 0 || g3.LastIndex != 0 {
		t.Errorf("group 3 has a log: %+v", g3)
	}
	if g1.Snapshots != 1234 || g3.Snapshots != 0 || u.Snapshots != 1234 {
		t.Errorf("snapshots: group 1 %d, group 3 %d, all %d; want 1234, 0, 1234", g1.Snapshots, g3.Snapshots, u.Snapshots)
	}
	var total int64
	err = filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			total += info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if u.Total != total || u.Pebble+u.Snapshots != total || u.SSTables <= 0 || u.SSTables > u.Pebble {
		t.Errorf("usage %+v, files %d", u, total)
	}
	// The estimates count a data block that straddles two ranges in both:
	// they add up to about the sstables' bytes, never to much more.
	if sum := g1.Log + g1.FSM + g3.FSM; sum > 2*u.SSTables {
		t.Errorf("group estimates %d against the sstables' %d bytes", sum, u.SSTables)
	}
}

func TestDiskUsageRefusesOpenDB(t *testing.T) {
	dir := t.TempDir()
	db := openTestDB(t, nil, filepath.Join(dir, "pebble"))
	defer db.Close()
	if _, err := DiskUsage(dir); err == nil {
		t.Fatal("DiskUsage of a DB in use: no error")
	}
}
