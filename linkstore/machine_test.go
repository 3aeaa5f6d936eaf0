package linkstore

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/ring"
)

// aliasIn returns an alias that is not of generated shape and that the ring
// places in partition p.
func aliasIn(t *testing.T, r *ring.Ring, p uint32, prefix string) string {
	t.Helper()
	for i := 0; i < 1_000_000; i++ {
		a := fmt.Sprintf("%s-%d", prefix, i)
		if r.PartitionOfCode(a) == p {
			return a
		}
	}
	t.Fatalf("no alias with prefix %q in partition %d", prefix, p)
	return ""
}

func TestGeneratedCodesFollowTheAllocator(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 17
	lo, _ := rg.Codec().Range(p)
	for i := uint64(0); i < 20; i++ {
		url := fmt.Sprintf("https://example.com/%d", i)
		res := rep.create(Create{Partition: p, URL: url, CreatedAtMs: int64(1000 + i)})
		if res.Status != ResultCreated {
			t.Fatalf("create %d: status %s (%s)", i, res.Status, res.Reason)
		}
		want := Record{Code: rg.Codec().Encode(lo + i), URL: url, CreatedAtMs: int64(1000 + i)}
		if !res.Record.Equal(want) {
			t.Fatalf("create %d: record %+v, want %+v", i, res.Record, want)
		}
		if got := rg.PartitionOfCode(res.Record.Code); got != p {
			t.Fatalf("code %s is in partition %d, want %d", res.Record.Code, got, p)
		}
		got, err := Get(rep.reader(), p, want.Code)
		if err != nil || !got.Equal(want) {
			t.Fatalf("Get(%s) = %+v, %v; want %+v", want.Code, got, err, want)
		}
	}
	if n, err := Allocated(rep.reader(), p); err != nil || n != 20 {
		t.Fatalf("Allocated = %d, %v; want 20", n, err)
	}
	if n, err := Count(rep.reader(), p); err != nil || n != 20 {
		t.Fatalf("Count = %d, %v; want 20", n, err)
	}
	// Another partition has its own allocator.
	if n, err := Allocated(rep.reader(), p+1); err != nil || n != 0 {
		t.Fatalf("Allocated(p+1) = %d, %v; want 0", n, err)
	}
	if _, err := Get(rep.reader(), p, "nothere"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing code: %v, want ErrNotFound", err)
	}
}

func TestAliasOfGeneratedShapeBlocksTheAllocator(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const p = 3
	lo, _ := rg.Codec().Range(p)
	held := rg.Codec().Encode(lo + 1) // the code the second generated create would get

	res := rep.create(Create{Partition: p, URL: "https://alias.example/", Alias: held, CreatedAtMs: 5})
	if res.Status != ResultCreated || !res.Record.Alias || res.Record.Code != held {
		t.Fatalf("alias create: %+v", res)
	}
	first := rep.create(Create{Partition: p, URL: "https://a.example/"})
	second := rep.create(Create{Partition: p, URL: "https://b.example/"})
	if first.Record.Code != rg.Codec().Encode(lo) {
		t.Fatalf("first generated code %s, want %s", first.Record.Code, rg.Codec().Encode(lo))
	}
	if second.Record.Code != rg.Codec().Encode(lo+2) {
		t.Fatalf("second generated code %s, want %s (skipping the alias %s)", second.Record.Code, rg.Codec().Encode(lo+2), held)
	}
	if got, err := Get(rep.reader(), p, held); err != nil || got.URL != "https://alias.example/" || !got.Alias {
		t.Fatalf("alias record after allocation: %+v, %v", got, err)
	}
	if n, _ := Allocated(rep.reader(), p); n != 3 {
		t.Fatalf("Allocated = %d, want 3", n)
	}

	// The code of an ID already allocated is taken for an alias too.
	if res := rep.create(Create{Partition: p, URL: "https://x.example/", Alias: first.Record.Code}); res.Status != ResultAliasTaken {
		t.Fatalf("alias on an allocated code: %s, want alias_taken", res.Status)
	}
	// A generated-shaped alias must come in its own partition.
	other := rg.Codec().Encode(lo + 100)
	if res := rep.create(Create{Partition: p + 1, URL: "https://x.example/", Alias: other}); res.Status != ResultBadRequest {
		t.Fatalf("alias in the wrong partition: %s, want bad_request", res.Status)
	}
}

func TestAliasTaken(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	a := aliasIn(t, rg, 9, "launch")
	if res := rep.create(Create{Partition: 9, URL: "https://one.example/", Alias: a, CreatedAtMs: 1}); res.Status != ResultCreated {
		t.Fatalf("first alias create: %s %s", res.Status, res.Reason)
	}
	before := rep.dump()
	for _, reuse := range []bool{false, true} {
		res := rep.create(Create{Partition: 9, URL: "https://two.example/", Alias: a, CreatedAtMs: 2, Reuse: reuse})
		if res.Status != ResultAliasTaken {
			t.Fatalf("second alias create (reuse %v): %s, want alias_taken", reuse, res.Status)
		}
	}
	if after := rep.dump(); !equalDumps(before, after) {
		t.Fatalf("a refused alias changed the state")
	}
	got, err := Get(rep.reader(), 9, a)
	if err != nil || got.URL != "https://one.example/" || got.CreatedAtMs != 1 {
		t.Fatalf("alias record: %+v, %v", got, err)
	}
	// Aliases do not feed the reuse index.
	if _, err := FindURL(rep.reader(), 9, "", "https://one.example/"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("FindURL of an alias' URL: %v, want ErrNotFound", err)
	}
}

func TestReuse(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	const url = "https://reuse.example/page"
	first := rep.create(Create{Partition: 5, URL: url, CreatedAtMs: 10})
	if first.Status != ResultCreated {
		t.Fatalf("first create: %s", first.Status)
	}
	again := rep.create(Create{Partition: 5, URL: url, Reuse: true, CreatedAtMs: 20})
	if again.Status != ResultExisting || !again.Record.Equal(first.Record) {
		t.Fatalf("reuse create: %+v, want existing %+v", again, first.Record)
	}
	fresh := rep.create(Create{Partition: 5, URL: url, CreatedAtMs: 30})
	if fresh.Status != ResultCreated || fresh.Record.Code == first.Record.Code {
		t.Fatalf("create without reuse: %+v, want a new code", fresh)
	}
	// The index keeps the first link.
	if res := rep.create(Create{Partition: 5, URL: url, Reuse: true}); res.Record.Code != first.Record.Code {
		t.Fatalf("reuse after a second link: %s, want the first %s", res.Record.Code, first.Record.Code)
	}
	if rec, err := FindURL(rep.reader(), 5, "", url); err != nil || !rec.Equal(first.Record) {
		t.Fatalf("FindURL = %+v, %v", rec, err)
	}
	// A reuse create of a new URL creates and indexes it.
	n := rep.create(Create{Partition: 5, URL: url + "/other", Reuse: true})
	if n.Status != ResultCreated {
		t.Fatalf("reuse create of a new URL: %s", n.Status)
	}
	if rec, err := FindURL(rep.reader(), 5, "", url+"/other"); err != nil || !rec.Equal(n.Record) {
		t.Fatalf("FindURL of the new URL = %+v, %v", rec, err)
	}
	// Reuse is per partition.
	if res := rep.create(Create{Partition: 6, URL: url, Reuse: true}); res.Status != ResultCreated {
		t.Fatalf("reuse in another partition: %s, want created", res.Status)
	}
	if n, _ := Allocated(rep.reader(), 5); n != 3 {
		t.Fatalf("Allocated = %d, want 3 (existing answers allocate nothing)", n)
	}
}

func TestExhaustion(t *testing.T) {
	// 62^5 / 65536 = 13981 IDs per partition.
	rg := testRing(t, 5, 65536)
	rep := newReplica(t, rg)
	const p = 40000
	lo, hi := rg.Codec().Range(p)
	size := hi - lo
	// An alias holds the last code of the range: the allocator skips it.
	last := rg.Codec().Encode(hi - 1)
	if res := rep.create(Create{Partition: p, URL: "https://alias.example/", Alias: last}); res.Status != ResultCreated {
		t.Fatalf("alias on the last code: %s %s", res.Status, res.Reason)
	}
	const perBatch = 500
	seen := make(map[string]bool, size)
	created := uint64(0)
	for created < size-1 {
		var cmds [][]byte
		for i := 0; i < perBatch && created+uint64(len(cmds)) < size-1; i++ {
			cmds = append(cmds, EncodeCreate(Create{Partition: p, URL: fmt.Sprintf("https://e.example/%d", created+uint64(i))}))
		}
		for _, raw := range rep.applyBatch(cmds...) {
			res, err := DecodeResult(raw)
			if err != nil || res.Status != ResultCreated {
				t.Fatalf("create %d: %+v, %v", created, res, err)
			}
			if seen[res.Record.Code] || res.Record.Code == last {
				t.Fatalf("code %s handed out twice", res.Record.Code)
			}
			seen[res.Record.Code] = true
			created++
		}
	}
	if res := rep.create(Create{Partition: p, URL: "https://full.example/"}); res.Status != ResultExhausted {
		t.Fatalf("create in a full partition: %s, want exhausted", res.Status)
	}
	if n, _ := Allocated(rep.reader(), p); n != size {
		t.Fatalf("Allocated = %d, want %d (the skipped alias code counts)", n, size)
	}
	// A full partition still takes hashed aliases and serves reuse.
	if res := rep.create(Create{Partition: p, URL: "https://e.example/7", Reuse: true}); res.Status != ResultExisting {
		t.Fatalf("reuse in a full partition: %s, want existing", res.Status)
	}
	a := aliasIn(t, rg, p, "full")
	if res := rep.create(Create{Partition: p, URL: "https://x.example/", Alias: a}); res.Status != ResultCreated {
		t.Fatalf("hashed alias in a full partition: %s", res.Status)
	}
	if n, _ := Count(rep.reader(), p); n != size+1 {
		t.Fatalf("Count = %d, want %d", n, size+1)
	}
}

func TestBadCommandsChangeNothing(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	long := "https://x.example/" + strings.Repeat("a", MaxURLLength)
	cases := map[string][]byte{
		"empty":             nil,
		"garbage":           []byte("\x07garbage"),
		"unknown type":      {commandVersion, 0x7f, 0},
		"truncated create":  EncodeCreate(Create{Partition: 1, URL: "https://x.example/"})[:5],
		"partition too big": EncodeCreate(Create{Partition: 64, URL: "https://x.example/"}),
		"empty url":         EncodeCreate(Create{Partition: 1}),
		"long url":          EncodeCreate(Create{Partition: 1, URL: long}),
		"bad alias charset": EncodeCreate(Create{Partition: rg.PartitionOfCode("a b c"), URL: "https://x.example/", Alias: "a b c"}),
		"reserved alias":    EncodeCreate(Create{Partition: rg.PartitionOfCode("admin"), URL: "https://x.example/", Alias: "admin"}),
		"short alias":       EncodeCreate(Create{Partition: rg.PartitionOfCode("ab"), URL: "https://x.example/", Alias: "ab"}),
		"alias elsewhere":   EncodeCreate(Create{Partition: (rg.PartitionOfCode("my-alias") + 1) % 64, URL: "https://x.example/", Alias: "my-alias"}),
	}
	for name, cmd := range cases {
		res, err := DecodeResult(rep.applyBatch(cmd)[0])
		if err != nil {
			t.Fatalf("%s: decode result: %v", name, err)
		}
		if res.Status != ResultBadRequest || res.Reason == "" {
			t.Errorf("%s: %+v, want bad_request with a reason", name, res)
		}
	}
	if kvs := rep.dump(); len(kvs) != 0 {
		t.Fatalf("bad commands stored %d keys", len(kvs))
	}
}

// TestReplicasEndIdentical applies one random command sequence to two
// replicas, cut into batches differently, and requires byte-identical
// results and state.
func TestReplicasEndIdentical(t *testing.T) {
	rg := testRing(t, 7, 8)
	a, b := newReplica(t, rg), newReplica(t, rg)
	rnd := rand.New(rand.NewPCG(1, 2))
	var cmds [][]byte
	var aliases []string
	for i := 0; i < 3000; i++ {
		p := uint32(rnd.IntN(8))
		url := fmt.Sprintf("https://d.example/%d", rnd.IntN(500))
		switch k := rnd.IntN(10); {
		case k < 2:
			// A new or repeated hashed alias.
			var al string
			if len(aliases) > 0 && rnd.IntN(3) == 0 {
				al = aliases[rnd.IntN(len(aliases))]
			} else {
				al = fmt.Sprintf("al-%d", i)
				aliases = append(aliases, al)
			}
			cmds = append(cmds, EncodeCreate(Create{Partition: rg.PartitionOfCode(al), URL: url, Alias: al, CreatedAtMs: int64(i)}))
		case k < 3:
			// A generated-shaped alias ahead of the allocator.
			lo, _ := rg.Codec().Range(p)
			code := rg.Codec().Encode(lo + uint64(rnd.IntN(400)))
			cmds = append(cmds, EncodeCreate(Create{Partition: p, URL: url, Alias: code, CreatedAtMs: int64(i)}))
		case k < 4:
			cmds = append(cmds, []byte{commandVersion, byte(rnd.IntN(256))})
		case k < 6:
			// Per-link fields, an owner's reuse; now and then a bad tag.
			owners := []string{"", "alice", "bob"}
			c := Create{Partition: p, URL: url, Reuse: rnd.IntN(2) == 0, CreatedAtMs: int64(i),
				Owner: owners[rnd.IntN(3)], Title: fmt.Sprintf("title %d", i), RedirectStatus: []uint16{0, 301, 302, 307, 308}[rnd.IntN(5)]}
			for j := range rnd.IntN(4) {
				c.Tags = append(c.Tags, fmt.Sprintf("t%d", j))
			}
			if rnd.IntN(20) == 0 {
				c.Tags = append(c.Tags, "bad tag")
			}
			cmds = append(cmds, EncodeCreate(c))
		default:
			cmds = append(cmds, EncodeCreate(Create{Partition: p, URL: url, Reuse: rnd.IntN(2) == 0, CreatedAtMs: int64(i)}))
		}
	}
	resA := applyChunked(a, cmds, func() int { return 1 })
	resB := applyChunked(b, cmds, func() int { return 1 + rnd.IntN(64) })
	for i := range resA {
		if !bytes.Equal(resA[i], resB[i]) {
			t.Fatalf("command %d: results differ: %x vs %x", i, resA[i], resB[i])
		}
	}
	da, db := a.dump(), b.dump()
	if !equalDumps(da, db) {
		t.Fatalf("replicas differ: %d vs %d keys", len(da), len(db))
	}
	// No code is held twice across partitions.
	codes := map[string]bool{}
	created := 0
	for _, raw := range resA {
		res, err := DecodeResult(raw)
		if err != nil {
			t.Fatalf("decode result: %v", err)
		}
		if res.Status == ResultCreated {
			created++
			if codes[res.Record.Code] {
				t.Fatalf("code %s created twice", res.Record.Code)
			}
			codes[res.Record.Code] = true
		}
	}
	if created < 1000 {
		t.Fatalf("only %d creates succeeded; the sequence does not exercise the machine", created)
	}
}

func applyChunked(r *replica, cmds [][]byte, size func() int) [][]byte {
	var out [][]byte
	for i := 0; i < len(cmds); {
		n := min(size(), len(cmds)-i)
		out = append(out, r.applyBatch(cmds[i:i+n]...)...)
		i += n
	}
	return out
}

func equalDumps(a, b [][2][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i][0], b[i][0]) || !bytes.Equal(a[i][1], b[i][1]) {
			return false
		}
	}
	return true
}

func TestStorageErrorPanics(t *testing.T) {
	rg := testRing(t, 7, 64)
	m := New(rg)
	defer func() {
		v := recover()
		se, ok := v.(*StorageError)
		if !ok || !errors.Is(se, errDisk) {
			t.Fatalf("recovered %v, want a *StorageError wrapping the disk error", v)
		}
	}()
	m.Apply(failingTxn{}, 1, EncodeCreate(Create{Partition: 1, URL: "https://x.example/"}))
	t.Fatal("Apply returned despite a failing store")
}

var errDisk = errors.New("disk on fire")

type failingTxn struct{}

func (failingTxn) Get([]byte) ([]byte, error)                        { return nil, errDisk }
func (failingTxn) Scan([]byte, []byte, func(k, v []byte) bool) error { return errDisk }
func (failingTxn) Set(k, v []byte) error                             { return errDisk }
func (failingTxn) Delete([]byte) error                               { return errDisk }
func (failingTxn) DeleteRange(a, b []byte) error                     { return errDisk }

// BenchmarkApplyCreate measures one generated create, 100 per batch.
func BenchmarkApplyCreate(b *testing.B) {
	rg := testRing(b, 7, 1024)
	rep := newReplica(b, rg)
	cmds := make([][]byte, 100)
	for i := range cmds {
		cmds[i] = EncodeCreate(Create{Partition: uint32(i % 1024), URL: fmt.Sprintf("https://bench.example/some/path/%d", i), CreatedAtMs: 1})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(cmds) {
		rep.applyBatch(cmds...)
	}
}

func TestAllocatorChecksOnlyWhereAliasesMayCollide(t *testing.T) {
	rg := testRing(t, 7, 64)
	rep := newReplica(t, rg)
	c := rg.Codec()

	// A hashed alias cannot collide with a generated code: the allocator
	// is not touched.
	a := aliasIn(t, rg, 2, "hashed")
	if res := rep.create(Create{Partition: 2, URL: "https://h.example/", Alias: a}); res.Status != ResultCreated {
		t.Fatalf("hashed alias: %s", res.Status)
	}
	if _, err := rep.reader().Get(NextKey(2)); !errors.Is(err, raftstore.ErrNotFound) {
		t.Fatalf("a hashed alias wrote the allocator: %v", err)
	}

	// Generated creates first, then a generated-shaped alias ahead of the
	// allocator: the flag is set and the allocator skips the alias.
	const p = 4
	lo, _ := c.Range(p)
	for i := 0; i < 3; i++ {
		rep.create(Create{Partition: p, URL: fmt.Sprintf("https://g.example/%d", i)})
	}
	if v, _ := rep.reader().Get(NextKey(p)); !bytes.Equal(v, []byte{0, 0, 0, 0, 0, 0, 0, 3, 0}) {
		t.Fatalf("allocator %x, want offset 3 without the aliases flag", v)
	}
	held := c.Encode(lo + 3)
	if res := rep.create(Create{Partition: p, URL: "https://a.example/", Alias: held}); res.Status != ResultCreated {
		t.Fatalf("alias ahead: %s %s", res.Status, res.Reason)
	}
	if v, _ := rep.reader().Get(NextKey(p)); !bytes.Equal(v, []byte{0, 0, 0, 0, 0, 0, 0, 3, 1}) {
		t.Fatalf("allocator %x, want offset 3 with the aliases flag", v)
	}
	if res := rep.create(Create{Partition: p, URL: "https://g.example/next"}); res.Record.Code != c.Encode(lo+4) {
		t.Fatalf("next generated code %s, want %s (skipping the alias)", res.Record.Code, c.Encode(lo+4))
	}

	// An allocator written as a bare 8-byte offset is read as "aliases may
	// exist".
	const q = 6
	qlo, _ := c.Range(q)
	b := rep.db.NewIndexedBatch()
	tx := raftstore.NewTxn(b, testGroup)
	must("seed", tx.Set(NextKey(q), []byte{0, 0, 0, 0, 0, 0, 0, 0}))
	must("seed", tx.Set(LinkKey(q, c.Encode(qlo)), AppendRecord(nil, Record{Code: c.Encode(qlo), URL: "https://old.example/", Alias: true})))
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if res := rep.create(Create{Partition: q, URL: "https://new.example/"}); res.Record.Code != c.Encode(qlo+1) {
		t.Fatalf("after a legacy allocator: %s, want %s", res.Record.Code, c.Encode(qlo+1))
	}

	for _, bad := range [][]byte{{1}, {0, 0, 0, 0, 0, 0, 0, 0, 2}, make([]byte, 10)} {
		b := rep.db.NewIndexedBatch()
		must("seed", raftstore.NewTxn(b, testGroup).Set(NextKey(9), bad))
		if err := b.Commit(nil); err != nil {
			t.Fatal(err)
		}
		b.Close()
		if _, err := Allocated(rep.reader(), 9); !errors.Is(err, ErrMalformed) {
			t.Fatalf("allocator %x: %v, want ErrMalformed", bad, err)
		}
	}
}
