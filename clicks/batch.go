package clicks

import (
	"encoding/binary"
	"errors"
	"fmt"
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

// AppendBatch appends the encoding of b to dst.
func AppendBatch(dst []byte, b Batch) []byte {
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
func DecodeBatch(b []byte) (Batch, error) {
	if len(b) == 0 {
		return Batch{}, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if b[0] != batchVersion {
		return Batch{}, fmt.Errorf("%w: %#x", ErrUnknownVersion, b[0])
	}
	d := decoder{b: b[1:]}
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
			x.Visitors = append([]byte(nil), sk...)
		}
		x.Referrers = d.tally("referrers")
		x.Browsers = d.tally("browsers")
		x.OSes = d.tally("oses")
		x.Devices = d.tally("devices")
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
	t := d.tally("tally")
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

func (d *decoder) string(limit int, what string) string { return string(d.bytes(limit, what)) }

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

func (d *decoder) tally(what string) []Count {
	n := d.count(2, what)
	if d.err != nil || n == 0 {
		return nil
	}
	if n > MaxTallyKeys {
		d.fail(what + ": too many keys")
		return nil
	}
	t := make([]Count, n)
	for i := range t {
		t[i].Key = d.string(MaxKeyLen, what+" key")
		t[i].N = d.uvarint(what + " count")
	}
	if d.err != nil {
		return nil
	}
	return t
}
