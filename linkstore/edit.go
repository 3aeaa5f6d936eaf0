package linkstore

import (
	"encoding/binary"
	"fmt"

	"github.com/linkraft/linkraft/raftstore"
)

// TypeEdit changes fields of a stored link (Edit).
const TypeEdit CommandType = 0x04

// ResultEdited: an Edit changed the link; Result.Record is the link as it
// is now.
const ResultEdited Status = 0x0c

// EditField is a bit of Edit.Fields: the fields an edit sets.
type EditField uint8

// Edit fields.
const (
	EditURL EditField = 1 << iota
	EditExpiry
	EditMaxClicks
	EditTitle
	EditTags
	EditRedirectStatus

	editKnown = EditURL | EditExpiry | EditMaxClicks | EditTitle | EditTags | EditRedirectStatus
)

// Edit sets the fields named by Fields of the link of Code in Partition;
// the others keep their values. Setting an expiry, a click limit, a
// title, tags or a redirect status to its zero value clears it. Every
// value is checked in Apply as a create's would be; a bad one refuses the
// whole edit (ResultBadRequest) and nothing changes. An edit applies to a
// link whose expiry has passed too: moving the expiry later (or clearing
// it) revives the link until the purge sweep has removed it (then it is
// gone, ResultGone, like a deleted link).
//
// A link whose URL changes, or that gets an expiry or a click limit,
// leaves the reuse index if it was there, so that a reuse create never
// returns a link with another target or with limits; an edit never adds a
// link to the index.
type Edit struct {
	// Partition is the code's partition (ring.PartitionOfCode).
	Partition uint32
	// Code is the generated code or alias of the link.
	Code string
	// Owner, when not empty, restricts the edit to a link of that owner:
	// another owner's link is answered ResultNotFound, unchanged. Empty
	// edits any link (no API keys, or an admin key).
	Owner string
	// UpdatedAtMs is the edit's time in Unix milliseconds, set by the
	// proposer, stored as the record's UpdatedAtMs.
	UpdatedAtMs int64
	// Fields are the fields to set; at least one.
	Fields EditField

	URL            string
	ExpiresAtMs    int64
	MaxClicks      uint64
	Title          string
	Tags           []string
	RedirectStatus uint16
}

// Type returns TypeEdit.
func (Edit) Type() CommandType { return TypeEdit }

// AppendEdit appends the command encoding of e to dst:
//
//	version 0x01 | 0x04 | fields u8 | partition u32 |
//	updated_at_ms zigzag varint | code length u8 | code |
//	owner length u8 | owner |
//	[url length uvarint | url]            with EditURL
//	[expires_at_ms zigzag varint]         with EditExpiry
//	[max_clicks uvarint]                  with EditMaxClicks
//	[title length uvarint | title]        with EditTitle
//	[tag count u8 | (tag length u8 | tag)*] with EditTags
//	[redirect_status uvarint]             with EditRedirectStatus
func AppendEdit(dst []byte, e Edit) []byte {
	dst = append(dst, commandVersion, byte(TypeEdit), byte(e.Fields))
	dst = binary.BigEndian.AppendUint32(dst, e.Partition)
	dst = binary.AppendVarint(dst, e.UpdatedAtMs)
	dst = append(dst, byte(len(e.Code)))
	dst = append(dst, e.Code...)
	dst = append(dst, byte(len(e.Owner)))
	dst = append(dst, e.Owner...)
	if e.Fields&EditURL != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(e.URL)))
		dst = append(dst, e.URL...)
	}
	if e.Fields&EditExpiry != 0 {
		dst = binary.AppendVarint(dst, e.ExpiresAtMs)
	}
	if e.Fields&EditMaxClicks != 0 {
		dst = binary.AppendUvarint(dst, e.MaxClicks)
	}
	if e.Fields&EditTitle != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(e.Title)))
		dst = append(dst, e.Title...)
	}
	if e.Fields&EditTags != 0 {
		dst = append(dst, byte(len(e.Tags)))
		for _, t := range e.Tags {
			dst = append(dst, byte(len(t)))
			dst = append(dst, t...)
		}
	}
	if e.Fields&EditRedirectStatus != 0 {
		dst = binary.AppendUvarint(dst, uint64(e.RedirectStatus))
	}
	return dst
}

func decodeEdit(b []byte) (Edit, error) {
	if len(b) < 5 {
		return Edit{}, fmt.Errorf("%w: edit of %d bytes", ErrMalformed, len(b))
	}
	e := Edit{Fields: EditField(b[0]), Partition: binary.BigEndian.Uint32(b[1:5])}
	if e.Fields&^editKnown != 0 {
		return Edit{}, fmt.Errorf("%w: edit fields %#x", ErrMalformed, byte(e.Fields))
	}
	b = b[5:]
	var n int
	if e.UpdatedAtMs, n = binary.Varint(b); n <= 0 {
		return Edit{}, fmt.Errorf("%w: edit time", ErrMalformed)
	}
	b = b[n:]
	var field []byte
	var err error
	if field, b, err = cutByteLength(b, MaxCodeLength); err != nil {
		return Edit{}, fmt.Errorf("edit code: %w", err)
	}
	e.Code = string(field)
	if field, b, err = cutByteLength(b, MaxOwnerLength); err != nil {
		return Edit{}, fmt.Errorf("edit owner: %w", err)
	}
	e.Owner = string(field)
	if e.Fields&EditURL != 0 {
		if field, b, err = cutLength(b, MaxURLLength); err != nil {
			return Edit{}, fmt.Errorf("edit url: %w", err)
		}
		e.URL = string(field)
	}
	if e.Fields&EditExpiry != 0 {
		if e.ExpiresAtMs, n = binary.Varint(b); n <= 0 {
			return Edit{}, fmt.Errorf("%w: edit expiry", ErrMalformed)
		}
		b = b[n:]
	}
	if e.Fields&EditMaxClicks != 0 {
		if e.MaxClicks, n = binary.Uvarint(b); n <= 0 {
			return Edit{}, fmt.Errorf("%w: edit click limit", ErrMalformed)
		}
		b = b[n:]
	}
	if e.Fields&EditTitle != 0 {
		if field, b, err = cutLength(b, MaxTitleLength); err != nil {
			return Edit{}, fmt.Errorf("edit title: %w", err)
		}
		e.Title = string(field)
	}
	if e.Fields&EditTags != 0 {
		if len(b) < 1 || int(b[0]) > MaxTags {
			return Edit{}, fmt.Errorf("%w: edit tag count", ErrMalformed)
		}
		count := int(b[0])
		b = b[1:]
		if count > 0 {
			e.Tags = make([]string, count)
		}
		for i := range count {
			if field, b, err = cutByteLength(b, MaxTagLength); err != nil {
				return Edit{}, fmt.Errorf("edit tag %d: %w", i, err)
			}
			e.Tags[i] = string(field)
		}
	}
	if e.Fields&EditRedirectStatus != 0 {
		s, n := binary.Uvarint(b)
		if n <= 0 || s > 0xffff {
			return Edit{}, fmt.Errorf("%w: edit redirect status", ErrMalformed)
		}
		e.RedirectStatus = uint16(s)
		b = b[n:]
	}
	if len(b) != 0 {
		return Edit{}, fmt.Errorf("%w: %d bytes after the edit", ErrMalformed, len(b))
	}
	return e, nil
}

// checkEdit returns why e cannot be applied, or "".
func (m *Machine) checkEdit(e Edit) string {
	if reason := m.checkPlace(e.Partition, e.Code); reason != "" {
		return reason
	}
	if e.Fields == 0 {
		return "the edit changes no field"
	}
	if e.Fields&EditURL != 0 && e.URL == "" {
		return "empty URL"
	}
	if e.Fields&EditExpiry != 0 && e.ExpiresAtMs < 0 {
		return fmt.Sprintf("expiry %d is before 1970", e.ExpiresAtMs)
	}
	return checkMeta(e.Owner, e.Title, e.Tags, e.RedirectStatus)
}

func (m *Machine) applyEdit(tx raftstore.Txn, e Edit) Result {
	if reason := m.checkEdit(e); reason != "" {
		return Result{Status: ResultBadRequest, Reason: reason}
	}
	key := LinkKey(e.Partition, e.Code)
	v, status := liveLink(tx, key)
	if status != 0 {
		return Result{Status: status}
	}
	old, err := DecodeRecord(v)
	must("decode edited record", err)
	if e.Owner != "" && old.Owner != e.Owner {
		// Never reveal another owner's link.
		return Result{Status: ResultNotFound}
	}
	rec := old
	if e.Fields&EditURL != 0 {
		rec.URL = e.URL
	}
	if e.Fields&EditExpiry != 0 {
		rec.ExpiresAtMs = e.ExpiresAtMs
	}
	if e.Fields&EditMaxClicks != 0 {
		rec.MaxClicks = e.MaxClicks
	}
	if e.Fields&EditTitle != 0 {
		rec.Title = e.Title
	}
	if e.Fields&EditTags != 0 {
		rec.Tags = e.Tags
	}
	if e.Fields&EditRedirectStatus != 0 {
		rec.RedirectStatus = e.RedirectStatus
	}
	rec.UpdatedAtMs = e.UpdatedAtMs
	if rec.URL != old.URL || rec.hasLimits() {
		m.dropReuse(tx, e.Partition, old)
	}
	must("store edited link", tx.Set(key, AppendRecord(nil, rec)))
	return Result{Status: ResultEdited, Record: rec}
}
