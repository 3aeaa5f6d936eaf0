package linkstore

import (
	"encoding/binary"
	"errors"
	"fmt"
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
	flagAlias           = 0x01
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
}

// hasLimits reports whether r needs the version 0x02 encoding.
func (r Record) hasLimits() bool { return r.ExpiresAtMs != 0 || r.MaxClicks != 0 }

// AppendRecord appends the encoding of r to dst and returns the extended
// slice. r.Code must be at most MaxCodeLength bytes.
func AppendRecord(dst []byte, r Record) []byte {
	var flags byte
	if r.Alias {
		flags |= flagAlias
	}
	if r.hasLimits() {
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
	if version != recordVersion && version != recordVersionLimits {
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
	}
	if r.URL == "" || len(r.URL) > MaxURLLength {
		return Record{}, fmt.Errorf("%w: record URL of %d bytes", ErrMalformed, len(r.URL))
	}
	return r, nil
}
