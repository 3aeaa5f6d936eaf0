package linkstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Format limits. Apply refuses commands beyond them (ResultBadRequest), so
// no replica stores what a decoder would refuse.
const (
	// MaxURLLength bounds the length of a stored URL in bytes.
	MaxURLLength = 8192
	// MaxCodeLength bounds the length of a code or alias in bytes; it
	// covers generated codes (at most 10) and aliases (at most 64).
	MaxCodeLength = 64
)

// Errors of the decoders, each returned wrapped with the detail; check them
// with errors.Is.
var (
	// ErrMalformed is returned for bytes that are not a valid encoding:
	// truncated, overlong or with an unknown field value.
	ErrMalformed = errors.New("linkstore: malformed encoding")
	// ErrUnknownVersion is returned for an encoding whose version byte
	// this build does not know.
	ErrUnknownVersion = errors.New("linkstore: unknown encoding version")
)

const (
	recordVersion = 0x01
	// recordVersionLimits is a record with an expiry or a click limit; a
	// record without either is still written as version 0x01, byte for
	// byte as before limits existed.
	recordVersionLimits = 0x02
	// recordVersionMeta is a record with an owner, a title, tags, a
	// redirect status or an update time; the limits are always written
	// in it (zero when absent).
	recordVersionMeta = 0x03
	flagAlias         = 0x01
)

// Record is one stored link.
type Record struct {
	// Code is the link's code: generated, or the custom alias.
	Code string
	// URL is the target.
	URL string
	// CreatedAtMs is the creation time in Unix milliseconds, chosen by the
	// leader that proposed the create.
	CreatedAtMs int64
	// Alias is true when the code was chosen by the client.
	Alias bool
	// ExpiresAtMs is when the link stops redirecting, in Unix
	// milliseconds; 0 for never.
	ExpiresAtMs int64
	// MaxClicks is how many (human) clicks the link redirects before it
	// stops; 0 for no limit. The routers enforce it from the shard's
	// click counts, so it lags (see package router).
	MaxClicks uint64
	// Owner is the ID of the API key that created the link; "" when the
	// cluster has no API keys (or had none when the link was created).
	Owner string
	// Title is a free text of at most MaxTitleLength bytes.
	Title string
	// Tags are at most MaxTags labels (see ValidTag), in the order given;
	// nil when there are none.
	Tags []string
	// RedirectStatus is the HTTP status of the link's redirect: 301, 302,
	// 307 or 308; 0 for the cluster's default.
	RedirectStatus uint16
	// UpdatedAtMs is when the link was last edited, in Unix milliseconds;
	// 0 when it never was.
	UpdatedAtMs int64
}

// hasLimits reports whether r needs at least the version 0x02 encoding.
func (r Record) hasLimits() bool { return r.ExpiresAtMs != 0 || r.MaxClicks != 0 }

// hasMeta reports whether r needs the version 0x03 encoding.
func (r Record) hasMeta() bool {
	return r.Owner != "" || r.Title != "" || len(r.Tags) != 0 || r.RedirectStatus != 0 || r.UpdatedAtMs != 0
}

// Equal reports whether r and o hold the same link, field by field (a nil
// and an empty Tags are equal).
func (r Record) Equal(o Record) bool {
	return r.Code == o.Code && r.URL == o.URL && r.CreatedAtMs == o.CreatedAtMs && r.Alias == o.Alias &&
		r.ExpiresAtMs == o.ExpiresAtMs && r.MaxClicks == o.MaxClicks && r.Owner == o.Owner &&
		r.Title == o.Title && slices.Equal(r.Tags, o.Tags) && r.RedirectStatus == o.RedirectStatus &&
		r.UpdatedAtMs == o.UpdatedAtMs
}

// AppendRecord appends the encoding of r to dst and returns the extended
// slice, in the smallest version that holds r:
//
//	0x01 | flags | created_at varint | code len u8 | code | url
//	0x02 | flags | created_at varint | expires_at varint | max_clicks uvarint | code len u8 | code | url
//	0x03 | flags | created_at varint | expires_at varint | max_clicks uvarint |
//	       updated_at varint | redirect_status uvarint | owner len u8 | owner |
//	       title len uvarint | title | tag count u8 | (tag len u8 | tag)* |
//	       code len u8 | code | url
//
// r.Code must be at most MaxCodeLength bytes and the other fields within
// their limits (Apply checks them before it stores a record).
func AppendRecord(dst []byte, r Record) []byte {
	var flags byte
	if r.Alias {
		flags |= flagAlias
	}
	if r.hasMeta() {
		dst = append(dst, recordVersionMeta, flags)
		dst = binary.AppendVarint(dst, r.CreatedAtMs)
		dst = binary.AppendVarint(dst, r.ExpiresAtMs)
		dst = binary.AppendUvarint(dst, r.MaxClicks)
		dst = binary.AppendVarint(dst, r.UpdatedAtMs)
		dst = binary.AppendUvarint(dst, uint64(r.RedirectStatus))
		dst = append(dst, byte(len(r.Owner)))
		dst = append(dst, r.Owner...)
		dst = binary.AppendUvarint(dst, uint64(len(r.Title)))
		dst = append(dst, r.Title...)
		dst = append(dst, byte(len(r.Tags)))
		for _, t := range r.Tags {
			dst = append(dst, byte(len(t)))
			dst = append(dst, t...)
		}
	} else if r.hasLimits() {
		dst = append(dst, recordVersionLimits, flags)
		dst = binary.AppendVarint(dst, r.CreatedAtMs)
		dst = binary.AppendVarint(dst, r.ExpiresAtMs)
		dst = binary.AppendUvarint(dst, r.MaxClicks)
	} else {
		dst = append(dst, recordVersion, flags)
		dst = binary.AppendVarint(dst, r.CreatedAtMs)
	}
	dst = append(dst, byte(len(r.Code)))
	dst = append(dst, r.Code...)
	return append(dst, r.URL...)
}

// DecodeRecord decodes a record encoded by AppendRecord. It never panics;
// bad input gives an error wrapping ErrMalformed or ErrUnknownVersion.
func DecodeRecord(b []byte) (Record, error) {
	if len(b) < 2 {
		return Record{}, fmt.Errorf("%w: record of %d bytes", ErrMalformed, len(b))
	}
	version := b[0]
	if version != recordVersion && version != recordVersionLimits && version != recordVersionMeta {
		return Record{}, fmt.Errorf("%w: record version %#x", ErrUnknownVersion, b[0])
	}
	flags := b[1]
	if flags&^flagAlias != 0 {
		return Record{}, fmt.Errorf("%w: record flags %#x", ErrMalformed, flags)
	}
	b = b[2:]
	created, n := binary.Varint(b)
	if n <= 0 {
		return Record{}, fmt.Errorf("%w: record creation time", ErrMalformed)
	}
	b = b[n:]
	var expires int64
	var maxClicks uint64
	var meta Record
	if version == recordVersionMeta {
		var err error
		if meta, b, err = decodeMeta(b); err != nil {
			return Record{}, err
		}
		expires, maxClicks = meta.ExpiresAtMs, meta.MaxClicks
	}
	if version == recordVersionLimits {
		expires, n = binary.Varint(b)
		if n <= 0 {
			return Record{}, fmt.Errorf("%w: record expiry", ErrMalformed)
		}
		b = b[n:]
		maxClicks, n = binary.Uvarint(b)
		if n <= 0 {
			return Record{}, fmt.Errorf("%w: record click limit", ErrMalformed)
		}
		b = b[n:]
		if expires == 0 && maxClicks == 0 {
			// Version 0x02 without limits is not what AppendRecord writes.
			return Record{}, fmt.Errorf("%w: record version 0x02 without limits", ErrMalformed)
		}
	}
	if len(b) < 1 {
		return Record{}, fmt.Errorf("%w: record code length missing", ErrMalformed)
	}
	cl := int(b[0])
	b = b[1:]
	if cl == 0 || cl > MaxCodeLength || cl > len(b) {
		return Record{}, fmt.Errorf("%w: record code length %d", ErrMalformed, cl)
	}
	r := Record{
		Code:        string(b[:cl]),
		URL:         string(b[cl:]),
		CreatedAtMs: created,
		Alias:       flags&flagAlias != 0,
		ExpiresAtMs: expires,
		MaxClicks:   maxClicks,

		Owner:          meta.Owner,
		Title:          meta.Title,
		Tags:           meta.Tags,
		RedirectStatus: meta.RedirectStatus,
		UpdatedAtMs:    meta.UpdatedAtMs,
	}
	if r.URL == "" || len(r.URL) > MaxURLLength {
		return Record{}, fmt.Errorf("%w: record URL of %d bytes", ErrMalformed, len(r.URL))
	}
	return r, nil
}

// decodeMeta decodes the fields of a version 0x03 record that follow the
// creation time, up to the code length, and returns the rest of b.
func decodeMeta(b []byte) (Record, []byte, error) {
	var r Record
	var n int
	if r.ExpiresAtMs, n = binary.Varint(b); n <= 0 {
		return r, nil, fmt.Errorf("%w: record expiry", ErrMalformed)
	}
	b = b[n:]
	if r.MaxClicks, n = binary.Uvarint(b); n <= 0 {
		return r, nil, fmt.Errorf("%w: record click limit", ErrMalformed)
	}
	b = b[n:]
	if r.UpdatedAtMs, n = binary.Varint(b); n <= 0 {
		return r, nil, fmt.Errorf("%w: record update time", ErrMalformed)
	}
	b = b[n:]
	status, n := binary.Uvarint(b)
	if n <= 0 || status > 999 || !ValidRedirectStatus(int(status)) {
		return r, nil, fmt.Errorf("%w: record redirect status", ErrMalformed)
	}
	r.RedirectStatus = uint16(status)
	b = b[n:]
	owner, b, err := cutByteLength(b, MaxOwnerLength)
	if err != nil {
		return r, nil, fmt.Errorf("record owner: %w", err)
	}
	r.Owner = string(owner)
	title, b, err := cutLength(b, MaxTitleLength)
	if err != nil {
		return r, nil, fmt.Errorf("record title: %w", err)
	}
	r.Title = string(title)
	if len(b) < 1 || int(b[0]) > MaxTags {
		return r, nil, fmt.Errorf("%w: record tag count", ErrMalformed)
	}
	count := int(b[0])
	b = b[1:]
	if count > 0 {
		r.Tags = make([]string, count)
		for i := range r.Tags {
			var tag []byte
			if tag, b, err = cutByteLength(b, MaxTagLength); err != nil || len(tag) == 0 {
				return r, nil, fmt.Errorf("%w: record tag %d", ErrMalformed, i)
			}
			r.Tags[i] = string(tag)
		}
	}
	if !r.hasMeta() {
		// Version 0x03 without its fields is not what AppendRecord writes.
		return r, nil, fmt.Errorf("%w: record version 0x03 without owner, title, tags, status or update time", ErrMalformed)
	}
	return r, b, nil
}

// cutByteLength splits a one-byte length (at most limit) and that many
// bytes off the front of b.
func cutByteLength(b []byte, limit int) (field, rest []byte, err error) {
	if len(b) < 1 || int(b[0]) > limit || int(b[0]) > len(b)-1 {
		return nil, nil, fmt.Errorf("%w: length", ErrMalformed)
	}
	l := int(b[0])
	return b[1 : 1+l], b[1+l:], nil
}
