package raftstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// pebbleVariants are the option sets BenchmarkPebbleWriteMix compares:
// DefaultPebbleOptions as it is, and the variations tried against it
// (docs/BENCHMARKS.md, "Pebble: the base level size").
var pebbleVariants = []struct {
	name string
	tune func(*pebble.Options)
}{
	{"default", func(*pebble.Options) {}},
	// The options before L0 was compacted at 8 sublevels: the 8 MiB base,
	// L0 at Pebble's default 4.
	{"l0-4", l0(8<<20, 4)},
	// The options before: Pebble's default LBaseMaxBytes (64 MiB).
	{"lbase-64", lbase(64 << 20)},
	{"lbase-4", lbase(4 << 20)},
	{"lbase-16", lbase(16 << 20)},
	// Tried and not taken: L0 compacted later (more L0 data held, more
	// disk), and the fast codec on every level (more disk).
	{"lbase-64-l0-8", l0(64<<20, 8)},
	{"lbase-64-l0-16", l0(64<<20, 16)},
	{"lbase-64-fastest", func(o *pebble.Options) {
		o.LBaseMaxBytes = 64 << 20
		o.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionFastest })
	}},
}

// lbase returns a variant with LBaseMaxBytes n.
func lbase(n int64) func(*pebble.Options) {
	return func(o *pebble.Options) { o.LBaseMaxBytes = n }
}

// l0 returns a variant with LBaseMaxBytes n that compacts L0 at threshold
// sublevels and stops writes at 3x that (Pebble's default ratio, 4 and 12).
func l0(n int64, threshold int) func(*pebble.Options) {
	return func(o *pebble.Options) {
		o.LBaseMaxBytes = n
		o.L0CompactionThreshold = threshold
		o.L0StopWritesThreshold = 3 * threshold
	}
}

// cpuTime returns the user+system CPU the process has used so far: the
// benchmark's goroutine and Pebble's flushes and compactions alike.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writeMix is the model of a node's writes that BenchmarkPebbleWriteMix
// drives: three groups in one DB, each appending one synced raft log entry
// per step, applying it in a second synced batch with the applied index,
// and truncating its log head with a range delete every 2,048 entries down
// to the last 1,024 (DefaultRaftConfig's SnapshotThreshold and
// TrailingLogs).
type writeMix struct {
	db      *pebble.DB
	rng     *rand.Rand
	next    [3]uint64 // next log index per group
	payload []byte
}

const mixGroups = 3

func (m *writeMix) step(b *testing.B, g uint64, entry int, apply func(*pebble.Batch)) {
	lb := m.db.NewBatch()
	idx := m.next[g]
	m.next[g]++
	if err := lb.Set(logKey(g+1, idx), m.payload[:entry], nil); err != nil {
		b.Fatal(err)
	}
	if err := lb.Commit(pebble.Sync); err != nil {
		b.Fatal(err)
	}
	_ = lb.Close()
	ab := m.db.NewBatch()
	apply(ab)
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], idx)
	if err := ab.Set(metaKey(g+1, metaApplied, nil), v[:], nil); err != nil {
		b.Fatal(err)
	}
	if idx%2048 == 0 && idx > 1024 {
		if err := ab.DeleteRange(logKey(g+1, 1), logKeyAfter(g+1, idx-1024), nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := ab.Commit(pebble.Sync); err != nil {
		b.Fatal(err)
	}
	_ = ab.Close()
}

// value fills n bytes of the payload with half random, half repeated bytes
// (records are part URL text, part binary counters and IDs).
func (m *writeMix) value(n int) []byte {
	v := m.payload[:n]
	for i := 0; i < n/2; i += 8 {
		binary.LittleEndian.PutUint64(m.payload[i:i+8], m.rng.Uint64())
	}
	return v
}

// BenchmarkPebbleWriteMix measures the CPU per operation of the node's
// storage engine, compactions and flushes included, for each of
// pebbleVariants, on two write mixes:
//
//   - clicks: a click flush per op: every group overwrites 1,000 per-code
//     per-day records of 120 bytes, the codes drawn Zipf from 100,000 per
//     group (the cached redirect workload with clicks flushed every second);
//   - creates: a batch of 256 creates per op on one group (round robin):
//     six keys per create at random positions (the link, its list index,
//     the allocator, the reuse index, the request table's result and
//     order entry) and the deletion of the request entries that fall out
//     of a 65,536-create window, on top of 300,000 existing links.
//
// It reports cpu-us/op (user+system CPU of the process, over the timed
// loop and the wait for the compactions it queued), compact-B/op and
// flush-B/op (bytes Pebble wrote), and the compaction count. Run with a
// fixed -benchtime so every variant does the same work; -v prints
// Pebble's per-level metrics at the end of each run:
//
//	go test ./raftstore -run '^$' -bench 'PebbleWriteMix/mix=clicks' -benchtime 800x -count 2
func BenchmarkPebbleWriteMix(b *testing.B) {
	for _, mix := range []string{"clicks", "creates"} {
		for _, v := range pebbleVariants {
			b.Run(fmt.Sprintf("mix=%s/opts=%s", mix, v.name), func(b *testing.B) {
				o := DefaultPebbleOptions()
				v.tune(o)
				o.Logger = pebbleLogger{l: testLogger(b), fatal: func(string) {}}
				o.Cache = pebble.NewCache(blockCacheSize)
				defer o.Cache.Unref()
				db, err := pebble.Open(b.TempDir(), o)
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				m := &writeMix{db: db, rng: rand.New(rand.NewPCG(1, 2)), payload: make([]byte, 1<<20)}
				for g := range m.next {
					m.next[g] = 1
				}
				var op func(i int)
				switch mix {
				case "clicks":
					op = m.clicks(b)
				case "creates":
					op = m.creates(b)
				}
				// Start from a compacted DB, as a node that has run a while.
				if err := db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
					b.Fatal(err)
				}
				before := db.Metrics()
				c0 := cpuTime(b)
				b.ResetTimer()
				for i := range b.N {
					op(i)
				}
				// The compactions the loop queued are part of its cost.
				deadline := time.Now().Add(time.Minute)
				for db.Metrics().Compact.NumInProgress > 0 {
					if time.Now().After(deadline) {
						b.Fatal("compactions still running a minute after the last op")
					}
					time.Sleep(10 * time.Millisecond)
				}
				b.StopTimer()
				cpu := cpuTime(b) - c0
				after := db.Metrics()
				var compacted, flushed uint64
				for l := range after.Levels {
					compacted += after.Levels[l].TableBytesCompacted - before.Levels[l].TableBytesCompacted
					flushed += after.Levels[l].TableBytesFlushed - before.Levels[l].TableBytesFlushed
				}
				n := float64(b.N)
				b.ReportMetric(float64(cpu.Microseconds())/n, "cpu-us/op")
				b.ReportMetric(float64(compacted)/n, "compact-B/op")
				b.ReportMetric(float64(flushed)/n, "flush-B/op")
				b.ReportMetric(float64(after.Compact.Count-before.Compact.Count), "compactions")
				b.ReportMetric(float64(after.ReadAmp()), "read-amp")
				if testing.Verbose() {
					b.Logf("%s/%s after %d ops:\n%s", mix, v.name, b.N, after)
				}
			})
		}
	}
}

// clicks returns the op of the click mix, after writing every record once.
func (m *writeMix) clicks(b *testing.B) func(int) {
	const codes, perFlush, rec = 100_000, 1_000, 120
	key := func(g uint64, code uint64) []byte {
		k := kindPrefix(g+1, kindData)
		k = append(k, 'c')
		k = binary.BigEndian.AppendUint16(k, uint16(code%1024))
		k = binary.BigEndian.AppendUint64(k, code*0x9E3779B97F4A7C15) // scattered like codes
		return binary.BigEndian.AppendUint32(k, 20_000)               // the day
	}
	for g := range uint64(mixGroups) {
		pb := m.db.NewBatch()
		for c := range uint64(codes) {
			if err := pb.Set(key(g, c), m.value(rec), nil); err != nil {
				b.Fatal(err)
			}
		}
		if err := pb.Commit(pebble.NoSync); err != nil {
			b.Fatal(err)
		}
		_ = pb.Close()
	}
	zipf := rand.NewZipf(m.rng, 1.1, 1, codes-1)
	return func(int) {
		for g := range uint64(mixGroups) {
			m.step(b, g, perFlush*rec, func(ab *pebble.Batch) {
				for range perFlush {
					if err := ab.Set(key(g, zipf.Uint64()), m.value(rec), nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// creates returns the op of the create mix, after creating 100,000 links
// per group.
func (m *writeMix) creates(b *testing.B) func(int) {
	const perBatch, window, prefill = 256, 65_536, 100_000
	var created [mixGroups]uint64
	data := func(g uint64, kind byte, id []byte) []byte {
		k := kindPrefix(g+1, kindData)
		k = append(k, kind)
		return append(k, id...)
	}
	var id [32]byte
	create := func(ab *pebble.Batch, g uint64, idx uint64) {
		n := created[g]
		created[g]++
		code := (n + 1) * 0x9E3779B97F4A7C15
		var c [8]byte
		binary.BigEndian.PutUint64(c[:], code)
		set := func(k, v []byte) {
			if err := ab.Set(k, v, nil); err != nil {
				b.Fatal(err)
			}
		}
		set(data(g, 'l', c[:]), m.value(110))                                          // the link record
		set(data(g, 'o', append(binary.BigEndian.AppendUint64(nil, n), c[:]...)), nil) // list index
		set(data(g, 'a', nil), c[:])                                                   // the allocator
		for i := 0; i < 32; i += 8 {
			binary.LittleEndian.PutUint64(id[i:], m.rng.Uint64())
		}
		set(data(g, 'u', id[:]), c[:])                     // reuse index: SHA-256 of the URL
		set(metaKey(g+1, metaIdem, id[:16]), m.value(120)) // request table: the result
		set(expiryKey(g+1, idx, id[:16]), nil)             // and its order entry
		if n >= window {
			// The request that falls out of the window: recreated from
			// the same generator position is not worth it; its keys are
			// random, so delete a random one of the same shape.
			for i := 0; i < 16; i += 8 {
				binary.LittleEndian.PutUint64(id[i:], m.rng.Uint64())
			}
			if err := ab.Delete(metaKey(g+1, metaIdem, id[:16]), nil); err != nil {
				b.Fatal(err)
			}
			if err := ab.Delete(expiryKey(g+1, idx-window/perBatch, id[:16]), nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	for g := range uint64(mixGroups) {
		pb := m.db.NewBatch()
		for range prefill {
			create(pb, g, 0)
		}
		if err := pb.Commit(pebble.NoSync); err != nil {
			b.Fatal(err)
		}
		_ = pb.Close()
	}
	return func(i int) {
		g := uint64(i % mixGroups)
		m.step(b, g, perBatch*130, func(ab *pebble.Batch) {
			for range perBatch {
				create(ab, g, m.next[g]-1)
			}
		})
	}
}
