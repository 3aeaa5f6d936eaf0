package shortcode

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// Limits of the code format.
const (
	// MinLength and MaxLength bound the length of generated codes. 62^10
	// still fits a uint64 with room for the Feistel domain (2^60).
	MinLength = 5
	MaxLength = 10
	// MaxPartitions bounds the number of partitions: partition numbers are
	// uint32 on the wire and in keys, and 65536 is far more than any
	// cluster needs.
	MaxPartitions = 65536
)

// DevelopmentSecret is the key of the permutation when the secret given to
// New is empty. It is public (it is written here), so codes produced with it
// can be enumerated by anyone who has the source: use it only for local
// development and tests.
const DevelopmentSecret = "linkraft development code secret: set cluster.code_secret_env in production"

// Alphabet is the base62 alphabet, in digit order: "0" is 0, "z" is 61.
const Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// rounds is the number of Feistel rounds.
const rounds = 8

// invalid marks a byte that is not in Alphabet in decodeTable.
const invalid = 0xff

// decodeTable maps a byte to its base62 digit, or invalid.
var decodeTable = func() (t [256]byte) {
	for i := range t {
		t[i] = invalid
	}
	for i := 0; i < len(Alphabet); i++ {
		t[Alphabet[i]] = byte(i)
	}
	return t
}()

// ErrInvalidCodec is returned (wrapped) by New for a length, partition
// count or combination of both that the format does not allow.
var ErrInvalidCodec = errors.New("shortcode: invalid codec parameters")

// Codec encodes IDs as codes and back for one cluster: one code length, one
// partition count, one secret. It is immutable and safe for concurrent use.
type Codec struct {
	fingerprint uint64
	length      int
	partitions  uint32
	n           uint64 // 62^length: the code space
	r           uint64 // IDs per partition: n / partitions
	half        uint   // bits per Feistel half
	mask        uint64 // (1 << half) - 1
	keys        [rounds][2]uint64
}

// New returns the codec for codes of length characters (MinLength to
// MaxLength), partitions partitions (1 to MaxPartitions, and at most one
// per ID: 62^length / partitions >= 1) and the permutation key secret. An
// empty secret selects DevelopmentSecret.
func New(length, partitions int, secret []byte) (*Codec, error) {
	if length < MinLength || length > MaxLength {
		return nil, fmt.Errorf("%w: code length %d is outside [%d, %d]", ErrInvalidCodec, length, MinLength, MaxLength)
	}
	return build(length, partitions, secret)
}

// build is New without the lower bound on length, so that tests can check
// the permutation exhaustively on a small space.
func build(length, partitions int, secret []byte) (*Codec, error) {
	if length < 1 || length > MaxLength {
		return nil, fmt.Errorf("%w: code length %d is outside [1, %d]", ErrInvalidCodec, length, MaxLength)
	}
	if partitions < 1 || partitions > MaxPartitions {
		return nil, fmt.Errorf("%w: partitions %d is outside [1, %d]", ErrInvalidCodec, partitions, MaxPartitions)
	}
	n := uint64(1)
	for i := 0; i < length; i++ {
		n *= 62
	}
	if n/uint64(partitions) < 1 {
		return nil, fmt.Errorf("%w: %d partitions exceed the %d codes of length %d", ErrInvalidCodec, partitions, n, length)
	}
	// The smallest even bit width 2k with 2^(2k) >= n.
	bits := uint(0)
	for bits < 64 && uint64(1)<<bits < n {
		bits++
	}
	if bits%2 == 1 {
		bits++
	}
	if bits < 2 {
		bits = 2
	}
	c := &Codec{
		length:     length,
		partitions: uint32(partitions),
		n:          n,
		r:          n / uint64(partitions),
		half:       bits / 2,
		mask:       uint64(1)<<(bits/2) - 1,
	}
	if len(secret) == 0 {
		secret = []byte(DevelopmentSecret)
	}
	mac := hmac.New(sha256.New, secret)
	for i := range c.keys {
		mac.Reset()
		mac.Write([]byte("linkraft/shortcode/v1/round/" + strconv.Itoa(i)))
		sum := mac.Sum(nil)
		c.keys[i][0] = binary.BigEndian.Uint64(sum[0:8])
		c.keys[i][1] = binary.BigEndian.Uint64(sum[8:16])
	}
	mac.Reset()
	mac.Write([]byte("linkraft/shortcode/v1/fingerprint/" + strconv.Itoa(length) + "/" + strconv.Itoa(partitions)))
	c.fingerprint = binary.BigEndian.Uint64(mac.Sum(nil))
	return c, nil
}

// Fingerprint identifies the codec's parameters (length, partitions and
// secret) without revealing the secret: two codecs with equal fingerprints
// map every ID to the same code. Processes of one cluster can exchange it
// to detect a misconfigured peer.
func (c *Codec) Fingerprint() uint64 { return c.fingerprint }

// Length is the number of characters of a generated code.
func (c *Codec) Length() int { return c.length }

// Partitions is the number of partitions P.
func (c *Codec) Partitions() int { return int(c.partitions) }

// Space is N = 62^Length(), the number of distinct generated codes.
func (c *Codec) Space() uint64 { return c.n }

// IDsPerPartition is R = Space() / Partitions(), the size of each
// partition's ID range.
func (c *Codec) IDsPerPartition() uint64 { return c.r }

// Range returns partition p's ID range [lo, hi). It panics if p is not a
// partition (p >= Partitions()).
func (c *Codec) Range(p uint32) (lo, hi uint64) {
	if p >= c.partitions {
		panic(fmt.Sprintf("shortcode: partition %d out of range [0, %d)", p, c.partitions))
	}
	lo = uint64(p) * c.r
	return lo, lo + c.r
}

// PartitionOfID returns the partition whose range holds id; ok is false for
// an ID that no partition owns (id >= Partitions()*IDsPerPartition()).
func (c *Codec) PartitionOfID(id uint64) (p uint32, ok bool) {
	q := id / c.r
	if q >= uint64(c.partitions) {
		return 0, false
	}
	return uint32(q), true
}

// Encode returns the code of id. It panics if id >= Space(): IDs come from
// partition ranges, which lie inside the space.
func (c *Codec) Encode(id uint64) string {
	var buf [MaxLength]byte
	return string(c.AppendEncode(buf[:0], id))
}

// AppendEncode appends the code of id to dst and returns the extended
// slice. It does not allocate when dst has room for Length() more bytes. It
// panics if id >= Space().
func (c *Codec) AppendEncode(dst []byte, id uint64) []byte {
	if id >= c.n {
		panic(fmt.Sprintf("shortcode: id %d outside the code space [0, %d)", id, c.n))
	}
	x := c.permute(id)
	var buf [MaxLength]byte
	for i := c.length - 1; i >= 0; i-- {
		buf[i] = Alphabet[x%62]
		x /= 62
	}
	return append(dst, buf[:c.length]...)
}

// Decode returns the ID whose code is code. ok is false when code does not
// have the shape of a generated code: a length other than Length() or a
// byte outside Alphabet. Every string of that shape decodes to an ID below
// Space(); whether a partition owns the ID is PartitionOfID's question.
func (c *Codec) Decode(code string) (id uint64, ok bool) {
	return decode(c, code)
}

// DecodeBytes is Decode for a byte slice, for the request path of the
// router. It does not allocate and does not retain b.
func (c *Codec) DecodeBytes(code []byte) (id uint64, ok bool) {
	return decode(c, code)
}

func decode[T string | []byte](c *Codec, code T) (uint64, bool) {
	if len(code) != c.length {
		return 0, false
	}
	var x uint64
	for i := 0; i < len(code); i++ {
		d := decodeTable[code[i]]
		if d == invalid {
			return 0, false
		}
		x = x*62 + uint64(d)
	}
	return c.unpermute(x), true
}

// PartitionOfCode returns the partition of a generated code:
// unpermute(base62⁻¹(code)) / R. ok is false when code does not have the
// shape of a generated code or its ID lies beyond the last partition.
func (c *Codec) PartitionOfCode(code string) (p uint32, ok bool) {
	id, ok := decode(c, code)
	if !ok {
		return 0, false
	}
	return c.PartitionOfID(id)
}

// PartitionOfCodeBytes is PartitionOfCode for a byte slice. It does not
// allocate and does not retain code.
func (c *Codec) PartitionOfCodeBytes(code []byte) (p uint32, ok bool) {
	id, ok := decode(c, code)
	if !ok {
		return 0, false
	}
	return c.PartitionOfID(id)
}

// IsGeneratedShape reports whether s has the shape of a generated code:
// exactly Length() characters of Alphabet. An alias of this shape is placed
// by decoding it (see the package documentation).
func (c *Codec) IsGeneratedShape(s string) bool {
	return isShape(c, s)
}

// IsGeneratedShapeBytes is IsGeneratedShape for a byte slice.
func (c *Codec) IsGeneratedShapeBytes(s []byte) bool {
	return isShape(c, s)
}

func isShape[T string | []byte](c *Codec, s T) bool {
	if len(s) != c.length {
		return false
	}
	for i := 0; i < len(s); i++ {
		if decodeTable[s[i]] == invalid {
			return false
		}
	}
	return true
}

// permute maps [0, n) onto itself: the Feistel network, cycle-walked.
func (c *Codec) permute(x uint64) uint64 {
	for {
		x = c.feistel(x)
		if x < c.n {
			return x
		}
	}
}

// unpermute is the inverse of permute.
func (c *Codec) unpermute(x uint64) uint64 {
	for {
		x = c.feistelInverse(x)
		if x < c.n {
			return x
		}
	}
}

// feistel is a permutation of [0, 2^(2*half)).
func (c *Codec) feistel(x uint64) uint64 {
	l, r := x>>c.half, x&c.mask
	for i := 0; i < rounds; i++ {
		l, r = r, l^(c.round(i, r)&c.mask)
	}
	return l<<c.half | r
}

// feistelInverse is the inverse of feistel.
func (c *Codec) feistelInverse(x uint64) uint64 {
	l, r := x>>c.half, x&c.mask
	for i := rounds - 1; i >= 0; i-- {
		l, r = r^(c.round(i, l)&c.mask), l
	}
	return l<<c.half | r
}

// round is the keyed round function F_i: the splitmix64 finalizer applied
// twice, keyed before each application.
func (c *Codec) round(i int, x uint64) uint64 {
	k := &c.keys[i]
	z := x ^ k[0]
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	z ^= z >> 31
	z ^= k[1]
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
