package linkstore

import (
	"bytes"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/ring"
	"github.com/linkraft/linkraft/shortcode"
)

// testGroup is the group whose data range the tests' transactions use.
const testGroup = 1

// replica is one in-memory Pebble DB with the machine applied to it.
type replica struct {
	t  testing.TB
	db *pebble.DB
	m  *Machine
	ix uint64
	// memo, if set, is the replica's raftstore.Memo, as a group's FSM
	// keeps one across batches.
	memo *raftstore.Memo
}

func newReplica(t testing.TB, place Placement) *replica {
	t.Helper()
	// The production options (bloom filters on every level matter: most
	// lookups of a create are misses).
	opts := raftstore.DefaultPebbleOptions()
	opts.FS = vfs.NewMem()
	// The block cache of a node (raftstore's blockCacheSize): without it
	// Pebble's 8 MiB default makes the point reads of a benchmark on a
	// store of 100,000 links mostly block reads, which a node does not do.
	cache := pebble.NewCache(64 << 20)
	defer cache.Unref()
	opts.Cache = cache
	opts.Logger = quietLogger{t}
	db, err := pebble.Open("", opts)
	if err != nil {
		t.Fatalf("open pebble: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close pebble: %v", err)
		}
	})
	return &replica{t: t, db: db, m: New(place)}
}

// applyBatch applies cmds in one Pebble batch, commits it and returns the
// raw results.
func (r *replica) applyBatch(cmds ...[]byte) [][]byte {
	r.t.Helper()
	return r.applyWith(r.t, cmds...)
}

// applyWith is applyBatch reporting to t (a fuzz target's own T).
func (r *replica) applyWith(t testing.TB, cmds ...[]byte) [][]byte {
	t.Helper()
	b := r.db.NewIndexedBatch()
	out := make([][]byte, len(cmds))
	for i, c := range cmds {
		r.ix++
		tx := raftstore.NewTxn(b, testGroup)
		if r.memo != nil {
			tx = raftstore.NewMemoTxn(b, testGroup, r.memo)
		}
		out[i] = r.m.Apply(tx, r.ix, c)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("close batch: %v", err)
	}
	return out
}

// create applies one Create in its own batch and decodes the result.
func (r *replica) create(c Create) Result {
	r.t.Helper()
	res, err := DecodeResult(r.applyBatch(EncodeCreate(c))[0])
	if err != nil {
		r.t.Fatalf("decode result: %v", err)
	}
	return res
}

// reader returns a raftstore.Reader over the committed state.
func (r *replica) reader() raftstore.Reader {
	return raftstore.NewTxn(r.db.NewIndexedBatch(), testGroup)
}

// dump returns every key and value of the DB, in order.
func (r *replica) dump() [][2][]byte {
	r.t.Helper()
	it, err := r.db.NewIter(nil)
	if err != nil {
		r.t.Fatalf("iter: %v", err)
	}
	var kvs [][2][]byte
	for ok := it.First(); ok; ok = it.Next() {
		kvs = append(kvs, [2][]byte{bytes.Clone(it.Key()), bytes.Clone(it.Value())})
	}
	if err := it.Close(); err != nil {
		r.t.Fatalf("close iter: %v", err)
	}
	return kvs
}

// testRing returns a one-shard ring with the given code length and
// partitions.
func testRing(t testing.TB, length, partitions int) *ring.Ring {
	t.Helper()
	c, err := shortcode.New(length, partitions, []byte("linkstore test secret"))
	if err != nil {
		t.Fatalf("codec: %v", err)
	}
	r, err := ring.New([]uint64{1}, partitions, c)
	if err != nil {
		t.Fatalf("ring: %v", err)
	}
	return r
}

// quietLogger sends Pebble's informational chatter nowhere and its errors to
// the test.
type quietLogger struct{ t testing.TB }

func (quietLogger) Infof(string, ...any)             {}
func (l quietLogger) Errorf(format string, a ...any) { l.t.Errorf("pebble: "+format, a...) }
func (l quietLogger) Fatalf(format string, a ...any) { l.t.Fatalf("pebble: "+format, a...) }
