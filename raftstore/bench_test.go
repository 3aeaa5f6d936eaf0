package raftstore

import (
	"context"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// BenchmarkStoreLogs appends batches of 64 entries of 100 bytes, each batch
// synced, to the Pebble log store and, as the baseline, to raft-boltdb (also
// syncing: NoSync false).
func BenchmarkStoreLogs(b *testing.B) {
	const batch, size = 64, 100
	run := func(b *testing.B, s raft.LogStore) {
		logs := make([]*raft.Log, batch)
		data := make([]byte, size)
		for i := range logs {
			logs[i] = &raft.Log{Term: 1, Type: raft.LogCommand, Data: data}
		}
		next := uint64(1)
		b.SetBytes(batch * size)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			for _, l := range logs {
				l.Index = next
				next++
			}
			if err := s.StoreLogs(logs); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
	}
	b.Run("pebble", func(b *testing.B) {
		db := openTestDB(b, nil, b.TempDir())
		defer db.Close()
		run(b, NewLogStore(db, 1))
	})
	b.Run("boltdb", func(b *testing.B) {
		s, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(b.TempDir(), "raft.db")})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		run(b, s)
	})
}

// BenchmarkStoreLogsGroups appends 64-entry batches from 8 groups at once
// into one DB: their synced batches share WAL syncs (Pebble's group commit),
// the reason every group of a node lives in one DB.
func BenchmarkStoreLogsGroups(b *testing.B) {
	const batch, size, groups = 64, 100, 8
	db := openTestDB(b, nil, b.TempDir())
	defer db.Close()
	var gid atomic.Uint64
	b.SetBytes(batch * size)
	b.ReportAllocs()
	b.SetParallelism(groups / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		s := NewLogStore(db, gid.Add(1))
		logs := make([]*raft.Log, batch)
		data := make([]byte, size)
		for i := range logs {
			logs[i] = &raft.Log{Term: 1, Type: raft.LogCommand, Data: data}
		}
		next := uint64(1)
		for pb.Next() {
			for _, l := range logs {
				l.Index = next
				next++
			}
			if err := s.StoreLogs(logs); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkPropose measures Propose on a single-replica group over TCP
// (raft commit = one synced log append, then the FSM batch), with
// concurrent proposers so BatchApplyCh can batch them.
func BenchmarkPropose(b *testing.B) {
	layer := newTCPLayer(b, "")
	s, err := Open(Options{NodeID: "n1", Dir: b.TempDir(), Network: testNet{1: layer}, Logger: testLogger(b), Raft: fastRaft})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	g, err := s.OpenGroup(GroupConfig{ID: 1, Peers: []raft.Server{{ID: "n1", Address: raft.ServerAddress(layer.Addr().String())}}, Machine: &counterMachine{}})
	if err != nil {
		b.Fatal(err)
	}
	waitFor(b, 10*time.Second, "leadership", g.IsLeader)
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := g.Propose(ctx, []byte("k"), nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "proposals/s")
}
