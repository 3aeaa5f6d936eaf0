package clickstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/axiomhq/hyperloglog"
	"github.com/linkraft/linkraft/clicks"
)

const recordVersion = 0x01

// ErrMalformed is wrapped by errors about stored bytes or batches that do
// not decode.
var ErrMalformed = errors.New("clickstore: malformed")

// dayRecord is the stored aggregate of one code on one day.
type dayRecord struct {
	clicks, bots uint64
	visitors     *hyperloglog.Sketch // nil: no human visitor yet
	tallies      [4][]clicks.Count   // referrers, browsers, OSes, devices
}

func decodeDayRecord(b []byte) (*dayRecord, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return nil, fmt.Errorf("%w: day record version", ErrMalformed)
	}
	b = b[1:]
	r := &dayRecord{}
	var err error
	if r.clicks, b, err = uvarint(b); err != nil {
		return nil, err
	}
	if r.bots, b, err = uvarint(b); err != nil {
		return nil, err
	}
	n, b, err := uvarint(b)
	if err != nil || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: day record sketch length", ErrMalformed)
	}
	if n > 0 {
		if r.visitors, err = decodeSketch(b[:n]); err != nil {
			return nil, err
		}
	}
	b = b[n:]
	// One string for all the tallies' keys: each key is a substring of it,
	// so decoding allocates once, not once a key.
	str := string(b)
	off := 0
	for i := range r.tallies {
		if r.tallies[i], off, err = decodeTallyAt(b, str, off); err != nil {
			return nil, err
		}
	}
	if off != len(b) {
		return nil, fmt.Errorf("%w: day record: %d trailing bytes", ErrMalformed, len(b)-off)
	}
	return r, nil
}

// decodeTallyAt decodes the clicks.AppendTally encoding at b[off:], with
// the same limits as clicks.DecodeTally (at most clicks.MaxTallyKeys keys
// of at most clicks.MaxKeyLen bytes); str holds the same bytes as b and the
// keys are its substrings. It returns the offset after the tally.
func decodeTallyAt(b []byte, str string, off int) ([]clicks.Count, int, error) {
	return appendTallyAt(nil, b, str, off)
}

// appendTallyAt is decodeTallyAt appending the tally's counts to dst; it
// returns dst unchanged when the tally is empty.
func appendTallyAt(dst []clicks.Count, b []byte, str string, off int) ([]clicks.Count, int, error) {
	n, m := binary.Uvarint(b[off:])
	if m <= 0 || n > clicks.MaxTallyKeys {
		return nil, 0, fmt.Errorf("%w: tally count", ErrMalformed)
	}
	off += m
	if n == 0 {
		return dst, off, nil
	}
	dst = slices.Grow(dst, int(n))
	t := dst[len(dst) : len(dst)+int(n)]
	for i := range t {
		l, m := binary.Uvarint(b[off:])
		if m <= 0 || l > clicks.MaxKeyLen || l > uint64(len(b)-off-m) {
			return nil, 0, fmt.Errorf("%w: tally key", ErrMalformed)
		}
		off += m
		t[i].Key = str[off : off+int(l)]
		off += int(l)
		if t[i].N, m = binary.Uvarint(b[off:]); m <= 0 {
			return nil, 0, fmt.Errorf("%w: tally key count", ErrMalformed)
		}
		off += m
	}
	return dst[:len(dst)+int(n)], off, nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: varint", ErrMalformed)
	}
	return v, b[n:], nil
}

// decodeSketch decodes a visitor sketch of precision clicks.SketchPrecision.
func decodeSketch(b []byte) (*hyperloglog.Sketch, error) {
	sk := new(hyperloglog.Sketch)
	if err := sk.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: visitor sketch: %w", ErrMalformed, err)
	}
	if len(b) < 2 || b[1] != clicks.SketchPrecision {
		return nil, fmt.Errorf("%w: visitor sketch precision %d, want %d", ErrMalformed, b[1], clicks.SketchPrecision)
	}
	return sk, nil
}

// totals is a code's all-time counts.
type totals struct{ clicks, bots uint64 }

func appendTotals(dst []byte, t totals) []byte {
	dst = append(dst, recordVersion)
	dst = binary.AppendUvarint(dst, t.clicks)
	return binary.AppendUvarint(dst, t.bots)
}

func decodeTotals(b []byte) (totals, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return totals{}, fmt.Errorf("%w: totals version", ErrMalformed)
	}
	var t totals
	var err error
	rest := b[1:]
	if t.clicks, rest, err = uvarint(rest); err != nil {
		return totals{}, err
	}
	if t.bots, rest, err = uvarint(rest); err != nil {
		return totals{}, err
	}
	if len(rest) != 0 {
		return totals{}, fmt.Errorf("%w: totals: trailing bytes", ErrMalformed)
	}
	return t, nil
}
