package linkstore

import (
	"encoding/binary"
	"fmt"
)

const commandVersion = 0x01

// CommandType is the type byte of a command.
type CommandType byte

// Command types.
const (
	// TypeCreate creates a link (Create).
	TypeCreate CommandType = 0x01
)

// Command is a decoded command. The concrete types are the command structs
// of this package (Create, ClickBatch, Delete).
type Command interface {
	// Type returns the command's type byte.
	Type() CommandType
}

// Create stores a new link in a partition: under Alias when it is set,
// else under the partition's next generated code.
type Create struct {
	// Partition is the partition the link goes to. For an alias it must be
	// the alias's partition (ring.PartitionOfCode).
	Partition uint32
	// URL is the target, already validated and normalized by the router.
	URL string
	// Alias is the custom code, or empty for a generated code.
	Alias string
	// Reuse, for a generated code, returns the partition's first generated
	// link of the same URL, if there is one, instead of creating another.
	// It is ignored for an alias.
	Reuse bool
	// CreatedAtMs is the creation time in Unix milliseconds, set by the
	// proposer (the leader's clock), so every replica stores the same.
	CreatedAtMs int64
	// ExpiresAtMs is the link's expiry in Unix milliseconds (0: never),
	// and MaxClicks its click limit (0: none); see Record. A create with
	// either is never reused and never feeds the reuse index.
	ExpiresAtMs int64
	MaxClicks   uint64
}

// hasLimits reports whether c carries an expiry or a click limit.
func (c Create) hasLimits() bool { return c.ExpiresAtMs != 0 || c.MaxClicks != 0 }

// Type returns TypeCreate.
func (Create) Type() CommandType { return TypeCreate }

const (
	createFlagReuse = 0x01
	// createFlagLimits: expires_at_ms zigzag varint | max_clicks uvarint
	// follow created_at_ms. Without it the encoding is as before limits.
	createFlagLimits = 0x02
)

// AppendCreate appends the encoding of c to dst and returns the extended
// slice.
func AppendCreate(dst []byte, c Create) []byte {
	var flags byte
	if c.Reuse {
		flags |= createFlagReuse
	}
	if c.hasLimits() {
		flags |= createFlagLimits
	}
	dst = append(dst, commandVersion, byte(TypeCreate), flags)
	dst = binary.BigEndian.AppendUint32(dst, c.Partition)
	dst = binary.AppendVarint(dst, c.CreatedAtMs)
	if c.hasLimits() {
		dst = binary.AppendVarint(dst, c.ExpiresAtMs)
		dst = binary.AppendUvarint(dst, c.MaxClicks)
	}
	dst = binary.AppendUvarint(dst, uint64(len(c.Alias)))
	dst = append(dst, c.Alias...)
	return append(dst, c.URL...)
}

// EncodeCreate returns the encoding of c, sized exactly.
func EncodeCreate(c Create) []byte {
	return AppendCreate(make([]byte, 0, 3+4+3*binary.MaxVarintLen64+1+len(c.Alias)+len(c.URL)), c)
}

// DecodeCommand decodes a command encoded by this package. It never panics;
// bad input gives an error wrapping ErrMalformed or ErrUnknownVersion. It
// checks the encoding only; the limits on URL and alias are Apply's.
func DecodeCommand(b []byte) (Command, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: command of %d bytes", ErrMalformed, len(b))
	}
	if b[0] != commandVersion {
		return nil, fmt.Errorf("%w: command version %#x", ErrUnknownVersion, b[0])
	}
	switch t := CommandType(b[1]); t {
	case TypeCreate:
		return decodeCreate(b[2:])
	case TypeClicks:
		return decodeClickBatch(b[2:])
	case TypeDelete:
		return decodeDelete(b[2:])
	case TypeCreateBatch:
		return decodeCreateBatch(b[2:])
	default:
		return nil, fmt.Errorf("%w: command type %#x", ErrMalformed, byte(t))
	}
}

func decodeCreate(b []byte) (Create, error) {
	if len(b) < 5 {
		return Create{}, fmt.Errorf("%w: create of %d bytes", ErrMalformed, len(b))
	}
	flags := b[0]
	if flags&^(createFlagReuse|createFlagLimits) != 0 {
		return Create{}, fmt.Errorf("%w: create flags %#x", ErrMalformed, flags)
	}
	c := Create{Reuse: flags&createFlagReuse != 0, Partition: binary.BigEndian.Uint32(b[1:5])}
	b = b[5:]
	var n int
	c.CreatedAtMs, n = binary.Varint(b)
	if n <= 0 {
		return Create{}, fmt.Errorf("%w: create time", ErrMalformed)
	}
	b = b[n:]
	if flags&createFlagLimits != 0 {
		c.ExpiresAtMs, n = binary.Varint(b)
		if n <= 0 {
			return Create{}, fmt.Errorf("%w: create expiry", ErrMalformed)
		}
		b = b[n:]
		c.MaxClicks, n = binary.Uvarint(b)
		if n <= 0 {
			return Create{}, fmt.Errorf("%w: create click limit", ErrMalformed)
		}
		b = b[n:]
		if !c.hasLimits() {
			return Create{}, fmt.Errorf("%w: create limits flag without limits", ErrMalformed)
		}
	}
	al, n := binary.Uvarint(b)
	if n <= 0 || al > uint64(len(b)-n) {
		return Create{}, fmt.Errorf("%w: create alias length", ErrMalformed)
	}
	b = b[n:]
	c.Alias = string(b[:al])
	c.URL = string(b[al:])
	return c, nil
}
