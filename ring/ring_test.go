package ring

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/buraksezer/consistent"
	"github.com/linkraft/linkraft/shortcode"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current placement")

func mustRing(t testing.TB, shards []uint64, partitions int) *Ring {
	t.Helper()
	codec, err := shortcode.New(7, partitions, []byte("ring test"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(shards, partitions, codec)
	if err != nil {
		t.Fatalf("New(%v, %d): %v", shards, partitions, err)
	}
	return r
}

// TestGoldenDefault pins the partition -> shard map of the default
// cluster.yaml (shards 1, 2, 3; 1024 partitions). The map decides where
// every link lives: a change here strands the data of existing clusters.
// Run with -update to rewrite the file after a deliberate change.
func TestGoldenDefault(t *testing.T) {
	r := mustRing(t, []uint64{1, 2, 3}, 1024)
	var b bytes.Buffer
	fmt.Fprintf(&b, "# partition -> shard for shards [1 2 3], 1024 partitions,\n")
	fmt.Fprintf(&b, "# replication factor %d, load %.2f, xxhash64 (buraksezer/consistent v1.0.0)\n", ReplicationFactor, Load)
	for p := 0; p < r.Partitions(); p++ {
		fmt.Fprintf(&b, "%d %d\n", p, r.ShardOf(uint32(p)))
	}
	path := filepath.Join("testdata", "default.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		got := bufio.NewScanner(&b)
		exp := bufio.NewScanner(bytes.NewReader(want))
		for line := 1; ; line++ {
			g, e := got.Scan(), exp.Scan()
			if !g && !e {
				break
			}
			if got.Text() != exp.Text() {
				t.Fatalf("placement differs from %s at line %d: got %q, want %q", path, line, got.Text(), exp.Text())
			}
		}
		t.Fatalf("placement differs from %s", path)
	}
}

// TestBoundedLoad checks, over many shard sets and partition counts, that
// every partition has an owner from the set, no shard exceeds the bounded
// load, and PartitionsOf agrees with ShardOf.
func TestBoundedLoad(t *testing.T) {
	for _, partitions := range []int{1, 3, 16, 271, 1024, 4096} {
		for shards := 1; shards <= 12 && shards <= partitions; shards++ {
			ids := make([]uint64, shards)
			for i := range ids {
				ids[i] = uint64(i*7 + 1)
			}
			r := mustRing(t, ids, partitions)
			limit := int(math.Ceil(float64(partitions) / float64(shards) * Load))
			total := 0
			for _, id := range ids {
				ps := r.PartitionsOf(id)
				if len(ps) > limit {
					t.Errorf("P=%d shards=%d: shard %d owns %d partitions, limit %d", partitions, shards, id, len(ps), limit)
				}
				if partitions >= 16*shards && len(ps) < partitions/shards/2 {
					t.Errorf("P=%d shards=%d: shard %d owns only %d partitions", partitions, shards, id, len(ps))
				}
				if !slices.IsSorted(ps) {
					t.Errorf("PartitionsOf(%d) is not sorted", id)
				}
				for _, p := range ps {
					if r.ShardOf(p) != id {
						t.Fatalf("PartitionsOf(%d) lists %d, owned by %d", id, p, r.ShardOf(p))
					}
				}
				total += len(ps)
			}
			if total != partitions {
				t.Fatalf("P=%d shards=%d: %d partitions owned", partitions, shards, total)
			}
			if got := r.PartitionsOf(9999); got != nil {
				t.Fatalf("unknown shard owns %v", got)
			}
		}
	}
}

func TestDefaultBalance(t *testing.T) {
	r := mustRing(t, []uint64{1, 2, 3}, 1024)
	for _, id := range []uint64{1, 2, 3} {
		if n := len(r.PartitionsOf(id)); n < 300 || n > 380 {
			t.Errorf("shard %d owns %d of 1024 partitions", id, n)
		}
	}
}

func TestOrderDoesNotMatter(t *testing.T) {
	ids := []uint64{3, 17, 5, 42, 1000000007, 8}
	ref := mustRing(t, ids, 1024)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10; i++ {
		shuffled := slices.Clone(ids)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		r := mustRing(t, shuffled, 1024)
		if !slices.Equal(r.owner, ref.owner) {
			t.Fatalf("order %v gives another placement than %v", shuffled, ids)
		}
	}
	if !slices.Equal(ref.Shards(), []uint64{3, 5, 8, 17, 42, 1000000007}) {
		t.Fatalf("Shards() = %v", ref.Shards())
	}
	s := ref.Shards()
	s[0] = 99
	if ref.Shards()[0] != 3 {
		t.Fatal("Shards returns the ring's own slice")
	}
}

// TestPlacementStability adds a fourth shard and checks that
// partitions only move to the new shard, as consistent hashing promises
// (up to bounded-load spill).
func TestPlacementStability(t *testing.T) {
	a := mustRing(t, []uint64{1, 2, 3}, 1024)
	b := mustRing(t, []uint64{1, 2, 3, 4}, 1024)
	moved, toNew := 0, 0
	for p := uint32(0); p < 1024; p++ {
		if a.ShardOf(p) != b.ShardOf(p) {
			moved++
			if b.ShardOf(p) == 4 {
				toNew++
			}
		}
	}
	if toNew < 150 || moved > 2*toNew {
		t.Errorf("adding a shard moved %d partitions, %d of them to the new shard", moved, toNew)
	}
}

func TestNewRejects(t *testing.T) {
	codec, _ := shortcode.New(7, 16, nil)
	other, _ := shortcode.New(7, 32, nil)
	for name, tc := range map[string]struct {
		shards     []uint64
		partitions int
		codec      *shortcode.Codec
	}{
		"no shards":      {nil, 16, codec},
		"zero shard":     {[]uint64{1, 0}, 16, codec},
		"duplicate":      {[]uint64{1, 2, 1}, 16, codec},
		"too few parts":  {[]uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, 16, codec},
		"nil codec":      {[]uint64{1}, 16, nil},
		"codec mismatch": {[]uint64{1}, 16, other},
	} {
		if _, err := New(tc.shards, tc.partitions, tc.codec); !errors.Is(err, ErrInvalidRing) {
			t.Errorf("%s: New = %v, want ErrInvalidRing", name, err)
		}
	}
}

// TestPartitionOfCode checks both placements: generated-shaped codes by
// decoding, everything else by consistent's FindPartitionID.
func TestPartitionOfCode(t *testing.T) {
	r := mustRing(t, []uint64{1, 2, 3}, 1024)
	codec := r.Codec()
	ch := consistent.New(nil, consistent.Config{Hasher: hasher{}, PartitionCount: 1024, ReplicationFactor: ReplicationFactor, Load: Load})
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 5000; i++ {
		p := uint32(rng.IntN(1024))
		lo, hi := codec.Range(p)
		code := codec.Encode(lo + rng.Uint64N(hi-lo))
		if got := r.PartitionOfCode(code); got != p {
			t.Fatalf("PartitionOfCode(%q) = %d, want %d", code, got, p)
		}
		if got := r.PartitionOfCodeBytes([]byte(code)); got != p {
			t.Fatalf("PartitionOfCodeBytes(%q) = %d, want %d", code, got, p)
		}
		if got := r.ShardOfCode(code); got != r.ShardOf(p) {
			t.Fatalf("ShardOfCode(%q) = %d, want %d", code, got, r.ShardOf(p))
		}
	}
	aliases := []string{"my-launch", "abc", "spring_sale-2026", "abcdefgh", "abc-efg", strings.Repeat("z", 64)}
	// Generated-shaped strings whose ID lies beyond the last partition are
	// hashed too.
	beyond := codec.Encode(codec.IDsPerPartition() * 1024)
	if _, ok := codec.PartitionOfCode(beyond); ok {
		t.Fatal("beyond-range code has a partition")
	}
	aliases = append(aliases, beyond)
	for i := 0; i < 1000; i++ {
		aliases = append(aliases, "alias-"+strconv.Itoa(i))
	}
	for _, a := range aliases {
		want := uint32(ch.FindPartitionID([]byte(a)))
		if got := r.PartitionOfCode(a); got != want {
			t.Fatalf("PartitionOfCode(%q) = %d, want FindPartitionID %d", a, got, want)
		}
		if got := r.PartitionOfCodeBytes([]byte(a)); got != want {
			t.Fatalf("PartitionOfCodeBytes(%q) = %d, want %d", a, got, want)
		}
		if got := r.ShardOfCodeBytes([]byte(a)); got != r.ShardOf(want) {
			t.Fatalf("ShardOfCodeBytes(%q) = %d", a, got)
		}
	}
}

func TestPartitionOfURL(t *testing.T) {
	r := mustRing(t, []uint64{1, 2, 3}, 1024)
	ch := consistent.New(nil, consistent.Config{Hasher: hasher{}, PartitionCount: 1024, ReplicationFactor: ReplicationFactor, Load: Load})
	counts := make([]int, 1024)
	for i := 0; i < 102400; i++ {
		u := "https://example.com/page/" + strconv.Itoa(i)
		p := r.PartitionOfURL(u)
		if p != r.PartitionOfURL(u) || p != uint32(ch.FindPartitionID([]byte(u))) {
			t.Fatalf("PartitionOfURL(%q) unstable or not FindPartitionID", u)
		}
		counts[p]++
	}
	for p, n := range counts {
		if n < 40 || n > 180 { // mean 100, sd 10
			t.Fatalf("partition %d got %d of 102400 URLs", p, n)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	r := mustRing(t, []uint64{1, 2, 3}, 1024)
	code := []byte(r.Codec().Encode(12345))
	alias := []byte("my-launch")
	var sink uint64
	for name, f := range map[string]func(){
		"ShardOfCodeBytes(code)":  func() { sink += r.ShardOfCodeBytes(code) },
		"ShardOfCodeBytes(alias)": func() { sink += r.ShardOfCodeBytes(alias) },
		"PartitionOfURL":          func() { sink += uint64(r.PartitionOfURL("https://example.com/x")) },
		"ShardOfCode":             func() { sink += r.ShardOfCode("my-launch") },
	} {
		if n := testing.AllocsPerRun(200, f); n != 0 {
			t.Errorf("%s: %.1f allocations per call", name, n)
		}
	}
	_ = sink
}

func BenchmarkShardOfCodeBytes(b *testing.B) {
	r := mustRing(b, []uint64{1, 2, 3}, 1024)
	code := []byte(r.Codec().Encode(12345))
	b.ReportAllocs()
	var sink uint64
	for b.Loop() {
		sink += r.ShardOfCodeBytes(code)
	}
	_ = sink
}

func BenchmarkNew(b *testing.B) {
	codec, _ := shortcode.New(7, 1024, nil)
	for b.Loop() {
		if _, err := New([]uint64{1, 2, 3}, 1024, codec); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzPartitionOfCode(f *testing.F) {
	r := mustRing(f, []uint64{1, 2, 3}, 1024)
	for _, s := range []string{"", "2faJmRg", "my-launch", "zzzzzzz", "\xff\xfe", "abc-efg"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := r.PartitionOfCode(s)
		if p >= 1024 || p != r.PartitionOfCodeBytes([]byte(s)) {
			t.Fatalf("PartitionOfCode(%q) = %d", s, p)
		}
		if sh := r.ShardOfCode(s); sh < 1 || sh > 3 {
			t.Fatalf("ShardOfCode(%q) = %d", s, sh)
		}
	})
}

func TestFingerprint(t *testing.T) {
	a := mustRing(t, []uint64{1, 2, 3}, 1024)
	if b := mustRing(t, []uint64{3, 2, 1}, 1024); a.Fingerprint() != b.Fingerprint() {
		t.Fatal("equal placements, different fingerprints")
	}
	if b := mustRing(t, []uint64{1, 2, 4}, 1024); a.Fingerprint() == b.Fingerprint() {
		t.Fatal("other shards, same fingerprint")
	}
	codec, _ := shortcode.New(7, 1024, []byte("another secret"))
	b, err := New([]uint64{1, 2, 3}, 1024, codec)
	if err != nil {
		t.Fatal(err)
	}
	if a.Fingerprint() == b.Fingerprint() {
		t.Fatal("other code secret, same fingerprint")
	}
}

// TestManyShards builds rings with random shard sets up to the extremes the
// config allows (as many shards as partitions, up to 65536 partitions) and
// checks that New never fails and every shard stays under the bounded load.
func TestManyShards(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	cases := [][2]int{{1, 1}, {2, 2}, {64, 64}, {100, 100}, {100, 1024}, {5, 65536}}
	for i := 0; i < 6; i++ {
		shards := 1 + rng.IntN(120)
		cases = append(cases, [2]int{shards, shards + rng.IntN(2000)})
	}
	for _, tc := range cases {
		shards, partitions := tc[0], tc[1]
		seen := map[uint64]bool{}
		ids := make([]uint64, 0, shards)
		for len(ids) < shards {
			id := 1 + rng.Uint64N(1<<40)
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		codec, err := shortcode.New(5, partitions, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := New(ids, partitions, codec)
		if err != nil {
			t.Fatalf("%d shards, %d partitions: %v", shards, partitions, err)
		}
		limit := int(math.Ceil(float64(partitions) / float64(shards) * Load))
		count := map[uint64]int{}
		for p := 0; p < partitions; p++ {
			s := r.ShardOf(uint32(p))
			if !seen[s] {
				t.Fatalf("partition %d owned by unknown shard %d", p, s)
			}
			count[s]++
		}
		for s, n := range count {
			if n > limit {
				t.Fatalf("%d shards, %d partitions: shard %d owns %d > %d", shards, partitions, s, n, limit)
			}
		}
	}
}
