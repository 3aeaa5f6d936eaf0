package shortcode

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/quick"
)

func mustCodec(t testing.TB, length, partitions int, secret string) *Codec {
	t.Helper()
	c, err := build(length, partitions, []byte(secret))
	if err != nil {
		t.Fatalf("build(%d, %d): %v", length, partitions, err)
	}
	return c
}

// TestGolden pins codes of the development key. The permutation is part of
// the on-disk format: if this test fails, existing clusters would resolve
// their codes to the wrong partitions.
func TestGolden(t *testing.T) {
	c, err := New(7, 1024, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2faJmRg", "X4E1of0", "kWSeww9", "3htHpCE", "9TR7B6y"}
	for id, w := range want {
		if got := c.Encode(uint64(id)); got != w {
			t.Errorf("Encode(%d) = %q, want %q", id, got, w)
		}
	}
	dev, err := New(7, 1024, []byte(DevelopmentSecret))
	if err != nil {
		t.Fatal(err)
	}
	if dev.Encode(0) != want[0] {
		t.Errorf("an empty secret does not select DevelopmentSecret")
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct{ length, partitions int }{
		{4, 1}, {11, 1}, {0, 1}, {-1, 1},
		{7, 0}, {7, -1}, {7, MaxPartitions + 1},
	} {
		if _, err := New(tc.length, tc.partitions, nil); !errors.Is(err, ErrInvalidCodec) {
			t.Errorf("New(%d, %d) = %v, want ErrInvalidCodec", tc.length, tc.partitions, err)
		}
	}
	// Fewer codes than partitions (only reachable below MinLength).
	if _, err := build(2, 3845, nil); !errors.Is(err, ErrInvalidCodec) {
		t.Errorf("build(2, 3845) = %v, want ErrInvalidCodec", err)
	}
	for l := MinLength; l <= MaxLength; l++ {
		for _, p := range []int{1, 3, 1024, MaxPartitions} {
			c, err := New(l, p, []byte("k"))
			if err != nil {
				t.Fatalf("New(%d, %d): %v", l, p, err)
			}
			if c.Length() != l || c.Partitions() != p {
				t.Fatalf("New(%d, %d): Length %d Partitions %d", l, p, c.Length(), c.Partitions())
			}
			if want := uint64(math.Pow(62, float64(l))); l <= 8 && c.Space() != want {
				t.Fatalf("Space() = %d, want %d", c.Space(), want)
			}
			if c.IDsPerPartition() != c.Space()/uint64(p) {
				t.Fatalf("IDsPerPartition() = %d", c.IDsPerPartition())
			}
			// The Feistel domain is the smallest even bit width above the space.
			d := uint64(1) << (2 * c.half)
			if d < c.Space() || d/4 >= c.Space() {
				t.Fatalf("length %d: domain 2^%d for space %d", l, 2*c.half, c.Space())
			}
		}
	}
}

// TestFeistelBijection checks that the raw network and its inverse are
// inverse permutations of the whole 2k-bit domain.
func TestFeistelBijection(t *testing.T) {
	c := mustCodec(t, 3, 7, "feistel") // 62^3 = 238328 < 2^18
	size := uint64(1) << (2 * c.half)
	if size != 1<<18 {
		t.Fatalf("domain %d, want 2^18", size)
	}
	seen := make([]bool, size)
	for x := uint64(0); x < size; x++ {
		y := c.feistel(x)
		if y >= size {
			t.Fatalf("feistel(%d) = %d outside the domain", x, y)
		}
		if seen[y] {
			t.Fatalf("feistel is not injective: %d hit twice", y)
		}
		seen[y] = true
		if back := c.feistelInverse(y); back != x {
			t.Fatalf("feistelInverse(feistel(%d)) = %d", x, back)
		}
	}
}

// TestPermutationExhaustive checks, for small code lengths, that every ID
// has a distinct code, every code decodes to its ID, and every string of
// the generated shape is some ID's code.
func TestPermutationExhaustive(t *testing.T) {
	for _, tc := range []struct {
		length, partitions int
		secret             string
	}{
		{1, 1, ""}, {1, 62, "a"}, {2, 7, "b"}, {2, 3844, "c"}, {3, 1024, ""}, {3, 5, "another key"},
	} {
		c := mustCodec(t, tc.length, tc.partitions, tc.secret)
		n := c.Space()
		seen := make(map[string]uint64, n)
		buf := make([]byte, 0, MaxLength)
		for id := uint64(0); id < n; id++ {
			buf = c.AppendEncode(buf[:0], id)
			code := string(buf)
			if len(code) != tc.length {
				t.Fatalf("%+v: Encode(%d) = %q: wrong length", tc, id, code)
			}
			if prev, dup := seen[code]; dup {
				t.Fatalf("%+v: ids %d and %d share code %q", tc, prev, id, code)
			}
			seen[code] = id
			got, ok := c.Decode(code)
			if !ok || got != id {
				t.Fatalf("%+v: Decode(Encode(%d)=%q) = %d, %v", tc, id, code, got, ok)
			}
		}
		if uint64(len(seen)) != n {
			t.Fatalf("%+v: %d codes for %d ids", tc, len(seen), n)
		}
	}
}

func TestRoundTripSampled(t *testing.T) {
	for l := MinLength; l <= MaxLength; l++ {
		c, err := New(l, 1024, []byte("round trip"))
		if err != nil {
			t.Fatal(err)
		}
		n := c.Space()
		f := func(x uint64) bool {
			id := x % n
			code := c.Encode(id)
			got, ok := c.Decode(code)
			gotb, okb := c.DecodeBytes([]byte(code))
			return len(code) == l && ok && okb && got == id && gotb == id && c.IsGeneratedShape(code)
		}
		if err := quick.Check(f, &quick.Config{MaxCount: 2000}); err != nil {
			t.Fatalf("length %d: %v", l, err)
		}
		for _, id := range []uint64{0, 1, n / 2, n - 2, n - 1} {
			if !f(id) {
				t.Fatalf("length %d: round trip of %d failed", l, id)
			}
		}
		// Every shaped string decodes to an ID whose code it is.
		g := func(seed uint64) bool {
			rng := rand.New(rand.NewPCG(seed, 1))
			b := make([]byte, l)
			for i := range b {
				b[i] = Alphabet[rng.IntN(62)]
			}
			id, ok := c.Decode(string(b))
			return ok && id < n && c.Encode(id) == string(b)
		}
		if err := quick.Check(g, &quick.Config{MaxCount: 2000}); err != nil {
			t.Fatalf("length %d: %v", l, err)
		}
	}
}

func TestEncodePanicsOutsideSpace(t *testing.T) {
	c, _ := New(5, 1, nil)
	defer func() {
		if recover() == nil {
			t.Fatal("Encode(Space()) did not panic")
		}
	}()
	c.Encode(c.Space())
}

// TestDistinctAndScattered encodes runs of consecutive IDs, as an allocator
// hands them out, and checks that the codes are distinct and share no
// visible structure.
func TestDistinctAndScattered(t *testing.T) {
	c, err := New(7, 1024, []byte("scatter"))
	if err != nil {
		t.Fatal(err)
	}
	const run = 20000
	seen := make(map[string]bool, 4*run)
	var sharedPrefix, sameFirst int
	var firstChar [62]int
	for _, p := range []uint32{0, 1, 511, 1023} {
		lo, _ := c.Range(p)
		prev := ""
		for id := lo; id < lo+run; id++ {
			code := c.Encode(id)
			if seen[code] {
				t.Fatalf("code %q repeated", code)
			}
			seen[code] = true
			firstChar[decodeTable[code[0]]]++
			if prev != "" {
				if prev[:4] == code[:4] {
					sharedPrefix++
				}
				if prev[0] == code[0] {
					sameFirst++
				}
			}
			prev = code
		}
	}
	// A shared 4-character prefix has probability 62^-4 per pair: ~0 expected.
	if sharedPrefix > 2 {
		t.Errorf("%d consecutive pairs share a 4-character prefix", sharedPrefix)
	}
	// The first character matches with probability 1/62: ~1290 of 80000.
	if pairs := 4 * (run - 1); sameFirst > pairs/62*2 {
		t.Errorf("%d of %d consecutive pairs share the first character", sameFirst, pairs)
	}
	// Chi-square of the first character over 62 bins (61 degrees of
	// freedom; 120 is far beyond the 0.9999 quantile).
	exp := float64(4*run) / 62
	var chi float64
	for _, k := range firstChar {
		d := float64(k) - exp
		chi += d * d / exp
	}
	if chi > 120 {
		t.Errorf("first characters are not uniform: chi-square %.1f", chi)
	}
}

func TestSecretChangesCodes(t *testing.T) {
	a, _ := New(7, 1024, []byte("secret a"))
	b, _ := New(7, 1024, []byte("secret b"))
	same := 0
	for id := uint64(0); id < 1000; id++ {
		if a.Encode(id) == b.Encode(id) {
			same++
		}
	}
	if same > 0 {
		t.Errorf("%d of 1000 codes equal under two secrets", same)
	}
}

func TestPartitions(t *testing.T) {
	for _, tc := range []struct{ length, partitions int }{{7, 1024}, {5, 3}, {10, 65536}, {7, 1}, {6, 1000}} {
		c, err := New(tc.length, tc.partitions, []byte("parts"))
		if err != nil {
			t.Fatal(err)
		}
		r := c.IDsPerPartition()
		// The ranges tile [0, P*R).
		var next uint64
		for p := 0; p < tc.partitions; p++ {
			lo, hi := c.Range(uint32(p))
			if lo != next || hi-lo != r {
				t.Fatalf("%+v: Range(%d) = [%d, %d), want start %d size %d", tc, p, lo, hi, next, r)
			}
			next = hi
		}
		if c.Space()-next >= uint64(tc.partitions) {
			t.Fatalf("%+v: %d IDs left over", tc, c.Space()-next)
		}
		rng := rand.New(rand.NewPCG(uint64(tc.length), uint64(tc.partitions)))
		for i := 0; i < 3000; i++ {
			p := uint32(rng.IntN(tc.partitions))
			lo, hi := c.Range(p)
			var id uint64
			switch i % 3 {
			case 0:
				id = lo
			case 1:
				id = hi - 1
			default:
				id = lo + rng.Uint64N(r)
			}
			code := c.Encode(id)
			got, ok := c.PartitionOfCode(code)
			gotb, okb := c.PartitionOfCodeBytes([]byte(code))
			if !ok || !okb || got != p || gotb != p {
				t.Fatalf("%+v: PartitionOfCode(Encode(%d)) = %d %v, want %d", tc, id, got, ok, p)
			}
		}
		// IDs past the last partition belong to none.
		for id := next; id < c.Space(); id++ {
			if _, ok := c.PartitionOfCode(c.Encode(id)); ok {
				t.Fatalf("%+v: id %d beyond the partitions has a partition", tc, id)
			}
			if _, ok := c.PartitionOfID(id); ok {
				t.Fatalf("%+v: PartitionOfID(%d) ok", tc, id)
			}
		}
	}
}

func TestRangePanics(t *testing.T) {
	c, _ := New(7, 16, nil)
	defer func() {
		if recover() == nil {
			t.Fatal("Range(16) did not panic")
		}
	}()
	c.Range(16)
}

func TestDecodeRejects(t *testing.T) {
	c, _ := New(7, 1024, nil)
	for _, s := range []string{
		"", "abc", "abcdef", "abcdefgh", "abc-efg", "abc_efg", "abc efg", "abc.efg",
		"abcdéf", "abcdef\x00", "\xffabcdef", "ABCDEF/",
	} {
		if _, ok := c.Decode(s); ok {
			t.Errorf("Decode(%q) ok", s)
		}
		if _, ok := c.DecodeBytes([]byte(s)); ok {
			t.Errorf("DecodeBytes(%q) ok", s)
		}
		if _, ok := c.PartitionOfCode(s); ok {
			t.Errorf("PartitionOfCode(%q) ok", s)
		}
		if c.IsGeneratedShape(s) || c.IsGeneratedShapeBytes([]byte(s)) {
			t.Errorf("IsGeneratedShape(%q)", s)
		}
	}
	for _, s := range []string{"0000000", "zzzzzzz", "AbCdEf9"} {
		if !c.IsGeneratedShape(s) {
			t.Errorf("IsGeneratedShape(%q) = false", s)
		}
		if _, ok := c.Decode(s); !ok {
			t.Errorf("Decode(%q) not ok", s)
		}
	}
	// Case matters: two codes differing only in case are two IDs.
	a, _ := c.Decode("abcdefg")
	b, _ := c.Decode("ABCDEFG")
	if a == b {
		t.Error("codes differing in case decode to one ID")
	}
}

func TestAlphabet(t *testing.T) {
	if len(Alphabet) != 62 {
		t.Fatalf("alphabet has %d characters", len(Alphabet))
	}
	for i := 1; i < len(Alphabet); i++ {
		if Alphabet[i-1] >= Alphabet[i] {
			t.Fatalf("alphabet not in byte order at %d", i)
		}
	}
	count := 0
	for b := 0; b < 256; b++ {
		if d := decodeTable[b]; d != invalid {
			count++
			if Alphabet[d] != byte(b) {
				t.Fatalf("decodeTable[%q] = %d", byte(b), d)
			}
		}
	}
	if count != 62 {
		t.Fatalf("%d bytes decode", count)
	}
}

func TestZeroAllocs(t *testing.T) {
	c, _ := New(7, 1024, []byte("allocs"))
	code := []byte(c.Encode(123456789))
	dst := make([]byte, 0, 16)
	var sink uint64
	for name, f := range map[string]func(){
		"AppendEncode":         func() { dst = c.AppendEncode(dst[:0], 987654321) },
		"DecodeBytes":          func() { id, _ := c.DecodeBytes(code); sink += id },
		"Decode":               func() { id, _ := c.Decode("abcdefg"); sink += id },
		"PartitionOfCodeBytes": func() { p, _ := c.PartitionOfCodeBytes(code); sink += uint64(p) },
		"IsGeneratedShape":     func() { _ = c.IsGeneratedShapeBytes(code) },
		"ValidateAlias":        func() { _ = ValidateAlias("my-launch_2026") },
	} {
		if n := testing.AllocsPerRun(200, f); n != 0 {
			t.Errorf("%s: %.1f allocations per call, want 0", name, n)
		}
	}
	if n := testing.AllocsPerRun(200, func() { sinkString = c.Encode(42) }); n != 1 {
		t.Errorf("Encode: %.1f allocations per call, want 1", n)
	}
	_ = sink
}

var sinkString string

func BenchmarkEncode(b *testing.B) {
	c, _ := New(7, 1024, []byte("bench"))
	dst := make([]byte, 0, 16)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		dst = c.AppendEncode(dst[:0], uint64(i))
	}
}

func BenchmarkDecodeBytes(b *testing.B) {
	c, _ := New(7, 1024, []byte("bench"))
	codes := make([][]byte, 1024)
	for i := range codes {
		codes[i] = []byte(c.Encode(uint64(i) * 7919))
	}
	b.ReportAllocs()
	var sink uint64
	for i := 0; b.Loop(); i++ {
		id, _ := c.DecodeBytes(codes[i&1023])
		sink += id
	}
	_ = sink
}

func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		if _, err := New(7, 1024, []byte("bench")); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	c, err := New(7, 1024, []byte("fuzz"))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", "2faJmRg", "0000000", "zzzzzzz", "abc-efg", "abcdefgh", "abcdéf", "\x00\x00\x00\x00\x00\x00\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := c.Decode(s)
		idb, okb := c.DecodeBytes([]byte(s))
		if ok != okb || id != idb {
			t.Fatalf("Decode and DecodeBytes disagree on %q", s)
		}
		if ok != c.IsGeneratedShape(s) {
			t.Fatalf("Decode(%q) ok=%v but IsGeneratedShape=%v", s, ok, !ok)
		}
		if !ok {
			if _, pok := c.PartitionOfCode(s); pok {
				t.Fatalf("PartitionOfCode(%q) ok for an undecodable code", s)
			}
			return
		}
		if id >= c.Space() {
			t.Fatalf("Decode(%q) = %d outside the space", s, id)
		}
		if got := c.Encode(id); got != s {
			t.Fatalf("Encode(Decode(%q)) = %q", s, got)
		}
		p, pok := c.PartitionOfCode(s)
		if want, wok := c.PartitionOfID(id); pok != wok || p != want {
			t.Fatalf("PartitionOfCode(%q) = %d %v, want %d %v", s, p, pok, want, wok)
		}
		if pok {
			if lo, hi := c.Range(p); id < lo || id >= hi {
				t.Fatalf("id %d of %q outside its partition's range [%d, %d)", id, s, lo, hi)
			}
		}
	})
}

func TestCodeAlphabetOnly(t *testing.T) {
	c, _ := New(9, 7, []byte("alpha"))
	for id := uint64(0); id < 5000; id++ {
		code := c.Encode(id * 1_000_003)
		if strings.Trim(code, Alphabet) != "" {
			t.Fatalf("code %q has bytes outside the alphabet", code)
		}
	}
}

// TestAvalanche checks the mixing of the Feistel network: flipping one input
// bit flips each output bit with probability close to 1/2.
func TestAvalanche(t *testing.T) {
	c, _ := New(7, 1024, []byte("avalanche"))
	bits := int(2 * c.half)
	const samples = 3000
	flips := make([][]int, bits)
	for i := range flips {
		flips[i] = make([]int, bits)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	domain := uint64(1) << bits
	total := 0
	for s := 0; s < samples; s++ {
		x := rng.Uint64N(domain)
		y := c.feistel(x)
		for i := 0; i < bits; i++ {
			d := y ^ c.feistel(x^1<<i)
			for j := 0; j < bits; j++ {
				if d>>j&1 == 1 {
					flips[i][j]++
					total++
				}
			}
		}
	}
	if mean := float64(total) / float64(samples*bits*bits); mean < 0.49 || mean > 0.51 {
		t.Errorf("mean flip probability %.4f, want 0.5", mean)
	}
	// sd of one cell is 0.5/sqrt(3000) = 0.009: 0.07 is over 7 sd.
	for i := range flips {
		for j, n := range flips[i] {
			if p := float64(n) / samples; p < 0.43 || p > 0.57 {
				t.Errorf("input bit %d flips output bit %d with probability %.3f", i, j, p)
			}
		}
	}
}

func TestFingerprint(t *testing.T) {
	a, _ := New(7, 1024, []byte("x"))
	b, _ := New(7, 1024, []byte("x"))
	if a.Fingerprint() != b.Fingerprint() {
		t.Fatal("equal codecs, different fingerprints")
	}
	for _, o := range []struct {
		length, partitions int
		secret             string
	}{{7, 1024, "y"}, {8, 1024, "x"}, {7, 1023, "x"}, {7, 1024, ""}} {
		c, _ := New(o.length, o.partitions, []byte(o.secret))
		if c.Fingerprint() == a.Fingerprint() {
			t.Errorf("%+v has the fingerprint of another codec", o)
		}
	}
}
