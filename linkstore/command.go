package linkstore

import (
	"encoding/binary"
	"fmt"
	"slices"
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
	// Owner is the ID of the API key that asks for the link ("" when the
	// cluster has no keys). A reuse create only finds a link of the same
	// owner: the reuse index is keyed by owner and URL.
	Owner string
	// Title, Tags and RedirectStatus are the link's fields of the same
	// name (see Record); Apply checks their limits.
	Title          string
	Tags           []string
	RedirectStatus uint16
}

// hasLimits reports whether c carries an expiry or a click limit.
func (c Create) hasLimits() bool { return c.ExpiresAtMs != 0 || c.MaxClicks != 0 }

// hasMeta reports whether c carries an owner, a title, tags or a redirect
// status.
func (c Create) hasMeta() bool {
	return c.Owner != "" || c.Title != "" || len(c.Tags) != 0 || c.RedirectStatus != 0
}

// Equal reports whether c and o are the same create (a nil and an empty
// Tags are equal).
func (c Create) Equal(o Create) bool {
	return c.Partition == o.Partition && c.URL == o.URL && c.Alias == o.Alias && c.Reuse == o.Reuse &&
		c.CreatedAtMs == o.CreatedAtMs && c.ExpiresAtMs == o.ExpiresAtMs && c.MaxClicks == o.MaxClicks &&
		c.Owner == o.Owner && c.Title == o.Title && slices.Equal(c.Tags, o.Tags) && c.RedirectStatus == o.RedirectStatus
}

// Type returns TypeCreate.
func (Create) Type() CommandType { return TypeCreate }

const (
	createFlagReuse = 0x01
	// createFlagLimits: expires_at_ms zigzag varint | max_clicks uvarint
	// follow created_at_ms. Without it the encoding is as before limits.
	createFlagLimits = 0x02
	// createFlagMeta: owner | title | tags | redirect_status follow the
	// limits (or created_at_ms): owner and title each a uvarint length and
	// the bytes, the tag count uvarint and each tag as a uvarint length
	// and the bytes, the status uvarint. Without it the encoding is as
	// before these fields existed.
	createFlagMeta = 0x04
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
	if c.hasMeta() {
		flags |= createFlagMeta
	}
	dst = append(dst, commandVersion, byte(TypeCreate), flags)
	dst = binary.BigEndian.AppendUint32(dst, c.Partition)
	dst = binary.AppendVarint(dst, c.CreatedAtMs)
	if c.hasLimits() {
		dst = binary.AppendVarint(dst, c.ExpiresAtMs)
		dst = binary.AppendUvarint(dst, c.MaxClicks)
	}
	if c.hasMeta() {
		dst = binary.AppendUvarint(dst, uint64(len(c.Owner)))
		dst = append(dst, c.Owner...)
		dst = binary.AppendUvarint(dst, uint64(len(c.Title)))
		dst = append(dst, c.Title...)
		dst = binary.AppendUvarint(dst, uint64(len(c.Tags)))
		for _, t := range c.Tags {
			dst = binary.AppendUvarint(dst, uint64(len(t)))
			dst = append(dst, t...)
		}
		dst = binary.AppendUvarint(dst, uint64(c.RedirectStatus))
	}
	dst = binary.AppendUvarint(dst, uint64(len(c.Alias)))
	dst = append(dst, c.Alias...)
	return append(dst, c.URL...)
}

// EncodeCreate returns the encoding of c, sized exactly.
func EncodeCreate(c Create) []byte {
	size := 3 + 4 + 3*binary.MaxVarintLen64 + 1 + len(c.Alias) + len(c.URL)
	if c.hasMeta() {
		size += 4*binary.MaxVarintLen64 + len(c.Owner) + len(c.Title)
		for _, t := range c.Tags {
			size += binary.MaxVarintLen64 + len(t)
		}
	}
	return AppendCreate(make([]byte, 0, size), c)
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
	case TypeEdit:
		return decodeEdit(b[2:])
	case TypePurge:
		return decodePurge(b[2:])
	default:
		return nil, fmt.Errorf("%w: command type %#x", ErrMalformed, byte(t))
	}
}

func decodeCreate(b []byte) (Create, error) {
	if len(b) < 5 {
		return Create{}, fmt.Errorf("%w: create of %d bytes", ErrMalformed, len(b))
	}
	flags := b[0]
	if flags&^(createFlagReuse|createFlagLimits|createFlagMeta) != 0 {
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
	if flags&createFlagMeta != 0 {
		var err error
		if b, err = decodeCreateMeta(b, &c); err != nil {
			return Create{}, err
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

// decodeCreateMeta decodes the fields createFlagMeta announces into c and
// returns the rest of b. It bounds each length by the bytes left, not by
// the fields' limits (Apply checks those).
func decodeCreateMeta(b []byte, c *Create) ([]byte, error) {
	owner, b, err := cutLength(b, len(b))
	if err != nil {
		return nil, fmt.Errorf("create owner: %w", err)
	}
	c.Owner = string(owner)
	title, b, err := cutLength(b, len(b))
	if err != nil {
		return nil, fmt.Errorf("create title: %w", err)
	}
	c.Title = string(title)
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)-n) {
		// Every tag takes at least its length byte.
		return nil, fmt.Errorf("%w: create tag count", ErrMalformed)
	}
	b = b[n:]
	if count > 0 {
		c.Tags = make([]string, count)
		for i := range c.Tags {
			var tag []byte
			if tag, b, err = cutLength(b, len(b)); err != nil {
				return nil, fmt.Errorf("create tag %d: %w", i, err)
			}
			c.Tags[i] = string(tag)
		}
	}
	status, n := binary.Uvarint(b)
	if n <= 0 || status > 0xffff {
		return nil, fmt.Errorf("%w: create redirect status", ErrMalformed)
	}
	c.RedirectStatus = uint16(status)
	b = b[n:]
	if !c.hasMeta() {
		return nil, fmt.Errorf("%w: create meta flag without owner, title, tags or status", ErrMalformed)
	}
	return b, nil
}
