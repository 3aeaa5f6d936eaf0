package clicks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"unsafe"
)

// Batch is one flush of one router to one shard.
type Batch struct {
	// Router is the ID of the router that counted the clicks.
	Router string
	// Seq is the flush sequence, strictly increasing per router and shard.
	Seq uint64
	// Deltas are the counts, at most one per (code, day).
	Deltas []Delta
}

// Delta is the counts of one code on one day since the previous flush.
type Delta struct {
	Code string
	Day  Day
	// Clicks counts human clicks, Bots bot clicks.
	Clicks, Bots uint64
	// Visitors is the HyperLogLog sketch of the human visitors
	// (axiomhq/hyperloglog binary encoding), empty when there were none.
	Visitors []byte
	// Referrers, Browsers, OSes and Devices tally the human clicks, each
	// sorted by count (largest first), then key.
	Referrers, Browsers, OSes, Devices []Count
}

// Count is one key of a tally and its count.
type Count struct {
	Key string `json:"key"`
	N   uint64 `json:"clicks"`
}

// Encoding limits, checked by DecodeBatch.
const (
	batchVersion = 0x01
	// MaxRouterLen is the longest router ID.
	MaxRouterLen = 128
	// MaxCodeLen is the longest code.
	MaxCodeLen = 64
	// MaxKeyLen is the longest tally key.
	MaxKeyLen = 256
	// MaxTallyKeys is the most keys a tally holds; the rest go to OtherKey.
	MaxTallyKeys = 32
	// MaxSketchLen is the longest visitor sketch accepted.
	MaxSketchLen = 1 << 16
)

// OtherKey sums the tally keys beyond the largest MaxTallyKeys-1.
const OtherKey = "(other)"

// Errors of DecodeBatch.
var (
	// ErrMalformed is wrapped by errors about bytes that are not a batch.
	ErrMalformed = errors.New("clicks: malformed batch")
	// ErrUnknownVersion is wrapped when the version byte is unknown.
	ErrUnknownVersion = errors.New("clicks: unknown batch version")
)

// AppendBatch appends the encoding of b to dst. It grows dst at most once,
// to the batch's exact size: a router's flush to a shard is tens to
// hundreds of KiB, and growing by doubling would allocate and copy about
// twice that every flush interval.
func AppendBatch(dst []byte, b Batch) []byte {
	dst = slices.Grow(dst, batchSize(b))
	dst = append(dst, batchVersion)
	dst = appendString(dst, b.Router)
	dst = binary.AppendUvarint(dst, b.Seq)
	dst = binary.AppendUvarint(dst, uint64(len(b.Deltas)))
	for i := range b.Deltas {
		d := &b.Deltas[i]
		dst = appendString(dst, d.Code)
		dst = binary.AppendUvarint(dst, uint64(d.Day))
		dst = binary.AppendUvarint(dst, d.Clicks)
		dst = binary.AppendUvarint(dst, d.Bots)
		dst = binary.AppendUvarint(dst, uint64(len(d.Visitors)))
		dst = append(dst, d.Visitors...)
		for _, t := range [...][]Count{d.Referrers, d.Browsers, d.OSes, d.Devices} {
			dst = AppendTally(dst, t)
		}
	}
	return dst
}

// batchSize returns the length of AppendBatch's encoding of b.
func batchSize(b Batch) int {
	n := 1 + stringSize(b.Router) + uvarintSize(b.Seq) + uvarintSize(uint64(len(b.Deltas)))
	for i := range b.Deltas {
		d := &b.Deltas[i]
		n += stringSize(d.Code) + uvarintSize(uint64(d.Day)) + uvarintSize(d.Clicks) + uvarintSize(d.Bots) +
			uvarintSize(uint64(len(d.Visitors))) + len(d.Visitors)
		for _, t := range [...][]Count{d.Referrers, d.Browsers, d.OSes, d.Devices} {
			n += uvarintSize(uint64(len(t)))
			for _, c := range t {
				n += stringSize(c.Key) + uvarintSize(c.N)
			}
		}
	}
	return n
}

// uvarintSize is the length of binary.AppendUvarint's encoding of x.
func uvarintSize(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// stringSize is the length of appendString's encoding of s.
func stringSize(s string) int { return uvarintSize(uint64(len(s))) + len(s) }

// AppendTally appends the encoding of a tally to dst.
func AppendTally(dst []byte, t []Count) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(t)))
	for _, c := range t {
		dst = appendString(dst, c.Key)
		dst = binary.AppendUvarint(dst, c.N)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// DecodeBatch decodes a batch encoded by AppendBatch. It never panics and
// checks the limits above; bad input gives an error wrapping ErrMalformed or
// ErrUnknownVersion. The result does not alias b.
//
// It allocates a handful of times a batch, not a few times a delta: the
// router ID, codes and tally keys are strings over one copy of b, the
// sketches slices of the same copy (capped at their ends), and the tallies
// share slabs of Counts. So any one of them keeps the whole batch's copy
// in memory. The strings and the sketches cover disjoint bytes of the
// copy, so writing a sketch's bytes never changes a string.
func DecodeBatch(b []byte) (Batch, error) {
	if len(b) == 0 {
		return Batch{}, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if b[0] != batchVersion {
		return Batch{}, fmt.Errorf("%w: %#x", ErrUnknownVersion, b[0])
	}
	buf := bytes.Clone(b[1:])
	d := decoder{b: buf, str: unsafe.String(unsafe.SliceData(buf), len(buf)), copy: buf, shared: true}
	var out Batch
	out.Router = d.string(MaxRouterLen, "router")
	out.Seq = d.uvarint("seq")
	// A delta takes at least 10 bytes, which bounds the allocation.
	n := d.count(10, "delta count")
	if d.err != nil {
		return Batch{}, d.err
	}
	out.Deltas = make([]Delta, n)
	for i := range out.Deltas {
		x := &out.Deltas[i]
		x.Code = d.string(MaxCodeLen, "code")
		day := d.uvarint("day")
		if day > uint64(^uint32(0)) {
			d.fail("day out of range")
		}
		x.Day = Day(day)
		x.Clicks = d.uvarint("clicks")
		x.Bots = d.uvarint("bots")
		if sk := d.bytes(MaxSketchLen, "sketch"); len(sk) > 0 {
			x.Visitors = d.copyOf(sk)
		}
		x.Referrers = d.tally(&referrerNames)
		x.Browsers = d.tally(&browserNames)
		x.OSes = d.tally(&osNames)
		x.Devices = d.tally(&deviceNames)
		if d.err != nil {
			return Batch{}, d.err
		}
	}
	if len(d.b) != 0 {
		return Batch{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b))
	}
	return out, nil
}

// DecodeTally decodes a tally encoded by AppendTally, which must be the
// whole of b.
func DecodeTally(b []byte) ([]Count, error) {
	d := decoder{b: b}
	t := d.tally(&tallyNames)
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	return t, d.err
}

// decoder reads a batch; the first error sticks and later reads return
// zero values.
type decoder struct {
	b   []byte
	err error
	// shared: b is a suffix of copy, a copy of the bytes being decoded
	// that nothing else holds; strings are substrings of str, a string
	// over copy's bytes, and sketches slices of copy; tallies are cut
	// from the counts slab.
	shared bool
	str    string
	copy   []byte
	counts []Count
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, what)
	}
	d.b = nil
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(limit int, what string) []byte {
	n := d.uvarint(what)
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) || n > uint64(len(d.b)) {
		d.fail(what + " length")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string(limit int, what string) string {
	v := d.bytes(limit, what)
	if !d.shared || len(v) == 0 {
		return string(v)
	}
	end := len(d.str) - len(d.b)
	return d.str[end-len(v) : end]
}

// copyOf returns a copy of v, which d.bytes just returned: with shared,
// v itself, a slice of copy (capped, so appends do not run into its
// neighbours).
func (d *decoder) copyOf(v []byte) []byte {
	if !d.shared {
		return append([]byte(nil), v...)
	}
	return v[:len(v):len(v)]
}

// count reads an element count, each element taking at least minSize bytes.
func (d *decoder) count(minSize int, what string) int {
	n := d.uvarint(what)
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/minSize) {
		d.fail(what)
		return 0
	}
	return int(n)
}

// countSlab is how many Counts DecodeBatch allocates at a time.
const countSlab = 256

// tallyWhat names a tally and its parts in decoding errors, built once
// rather than for every key decoded.
type tallyWhat struct{ name, key, count string }

func tallyWhatOf(name string) tallyWhat { return tallyWhat{name, name + " key", name + " count"} }

var (
	referrerNames = tallyWhatOf("referrers")
	browserNames  = tallyWhatOf("browsers")
	osNames       = tallyWhatOf("oses")
	deviceNames   = tallyWhatOf("devices")
	tallyNames    = tallyWhatOf("tally")
)

func (d *decoder) tally(names *tallyWhat) []Count {
	what := names.name
	n := d.count(2, what)
	if d.err != nil || n == 0 {
		return nil
	}
	if n > MaxTallyKeys {
		d.fail(what + ": too many keys")
		return nil
	}
	var t []Count
	if d.shared {
		// Cut from a slab, capped so that appends do not run into the
		// next tally.
		if cap(d.counts)-len(d.counts) < n {
			d.counts = make([]Count, 0, max(n, countSlab))
		}
		l := len(d.counts)
		d.counts = d.counts[:l+n]
		t = d.counts[l : l+n : l+n]
	} else {
		t = make([]Count, n)
	}
	for i := range t {
		t[i].Key = d.string(MaxKeyLen, names.key)
		t[i].N = d.uvarint(names.count)
	}
	if d.err != nil {
		return nil
	}
	return t
}
