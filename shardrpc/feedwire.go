package shardrpc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The change feed RPC: a router long-polls each shard's leader for the
// codes whose redirect answer changed (deleted, edited, purged), so that it
// can keep cached links while it keeps hearing from the shard, instead of
// dropping each one after the cache TTL.
//
//	POST /rpc/v1/changes, X-Linkraft-Shard and X-Linkraft-Secret as for every call
//	request:  version 0x01 | since u64 | wait_ms u32            (big-endian)
//	200:      Content-Type application/vnd.linkraft.changes.v1,
//	          version 0x01 | flags (bit 0: reset) | index u64 | count uvarint |
//	          { index delta uvarint | code length u8 (1..64) | code }*
//	non-200:  the JSON ErrorBody of every call (not_leader with a hint, unavailable, ...)
//
// The leader first confirms it leads and has applied everything committed
// before the request (a linearizable read barrier), then waits up to wait_ms
// for an event after since. The answer's events are every change in
// (since, index], in index order; the first delta is counted from since and
// is at least 1, later ones from the previous event (0: the same entry).
// The caller continues from index. A reset (no events) says the shard
// cannot list the changes after since (its memory of them starts later, or
// the group's state was replaced): the caller must drop what it cached of
// the shard and continue from index.
const (
	// PathChanges is the path of the change feed RPC.
	PathChanges = "/rpc/v1/changes"
	// ContentTypeChanges is the content type of its request and answer.
	ContentTypeChanges = "application/vnd.linkraft.changes.v1"
	// ChangesWireVersion is the version byte this build writes and reads.
	ChangesWireVersion = 0x01
	// MaxChangeEvents bounds the events of one answer: a node with more
	// answers a prefix (its index is that of the prefix's last event).
	MaxChangeEvents = 4096
	// MaxChangesWait bounds the wait a request may ask for.
	MaxChangesWait = 10_000 // ms

	changesFlagReset   = 0x01
	changesRequestSize = 1 + 8 + 4
)

// ErrMalformedChanges is wrapped by the errors of the change feed decoders
// for bytes that are not a valid encoding.
var ErrMalformedChanges = errors.New("shardrpc: malformed change feed message")

// ChangeEvent is one change of the feed: the Raft index of the entry that
// changed the link of Code.
type ChangeEvent struct {
	Index uint64
	Code  string
}

// Changes is the answer of the change feed RPC.
type Changes struct {
	// Index is where the caller continues: the events are every change in
	// (since, Index].
	Index uint64
	// Reset: the changes after since are not known; Events is empty.
	Reset bool
	// Events, in index order.
	Events []ChangeEvent
}

// AppendChangesRequest appends the change feed request to dst. waitMs is
// clamped to [0, MaxChangesWait].
func AppendChangesRequest(dst []byte, since uint64, waitMs int64) []byte {
	waitMs = min(max(waitMs, 0), MaxChangesWait)
	dst = append(dst, ChangesWireVersion)
	dst = binary.BigEndian.AppendUint64(dst, since)
	return binary.BigEndian.AppendUint32(dst, uint32(waitMs))
}

// DecodeChangesRequest decodes a change feed request. It never panics; bad
// input gives an error wrapping ErrMalformedChanges.
func DecodeChangesRequest(b []byte) (since uint64, waitMs int64, err error) {
	if len(b) != changesRequestSize {
		return 0, 0, fmt.Errorf("%w: request of %d bytes, want %d", ErrMalformedChanges, len(b), changesRequestSize)
	}
	if b[0] != ChangesWireVersion {
		return 0, 0, fmt.Errorf("%w: request version %#x (this node reads %#x)", ErrMalformedChanges, b[0], ChangesWireVersion)
	}
	since = binary.BigEndian.Uint64(b[1:9])
	waitMs = int64(binary.BigEndian.Uint32(b[9:13]))
	if waitMs > MaxChangesWait {
		return 0, 0, fmt.Errorf("%w: wait of %d ms is over %d", ErrMalformedChanges, waitMs, MaxChangesWait)
	}
	return since, waitMs, nil
}

// AppendChanges appends the 200 answer ch to a request with since to dst.
// The events must be in index order within (since, ch.Index], at most
// MaxChangeEvents, with codes of 1 to 64 bytes, and none with Reset (the
// decoder refuses anything else).
func AppendChanges(dst []byte, since uint64, ch Changes) []byte {
	var flags byte
	if ch.Reset {
		flags |= changesFlagReset
	}
	dst = append(dst, ChangesWireVersion, flags)
	dst = binary.BigEndian.AppendUint64(dst, ch.Index)
	dst = binary.AppendUvarint(dst, uint64(len(ch.Events)))
	prev := since
	for _, e := range ch.Events {
		dst = binary.AppendUvarint(dst, e.Index-prev)
		prev = e.Index
		dst = append(dst, byte(len(e.Code)))
		dst = append(dst, e.Code...)
	}
	return dst
}

// DecodeChanges decodes the body of a 200 answer to a request with since.
// It checks everything AppendChanges requires. It never panics; bad input
// gives an error wrapping ErrMalformedChanges.
func DecodeChanges(b []byte, since uint64) (Changes, error) {
	var ch Changes
	if len(b) < 11 {
		return ch, fmt.Errorf("%w: answer of %d bytes", ErrMalformedChanges, len(b))
	}
	if b[0] != ChangesWireVersion {
		return ch, fmt.Errorf("%w: answer version %#x (this client reads %#x)", ErrMalformedChanges, b[0], ChangesWireVersion)
	}
	if b[1]&^changesFlagReset != 0 {
		return ch, fmt.Errorf("%w: answer flags %#x", ErrMalformedChanges, b[1])
	}
	ch.Reset = b[1]&changesFlagReset != 0
	ch.Index = binary.BigEndian.Uint64(b[2:10])
	n, k := binary.Uvarint(b[10:])
	if k <= 0 {
		return Changes{}, fmt.Errorf("%w: bad event count", ErrMalformedChanges)
	}
	b = b[10+k:]
	switch {
	case n > MaxChangeEvents:
		return Changes{}, fmt.Errorf("%w: %d events, at most %d", ErrMalformedChanges, n, MaxChangeEvents)
	case ch.Reset && n != 0:
		return Changes{}, fmt.Errorf("%w: a reset with %d events", ErrMalformedChanges, n)
	case !ch.Reset && ch.Index < since:
		return Changes{}, fmt.Errorf("%w: index %d is before since %d", ErrMalformedChanges, ch.Index, since)
	}
	if n > 0 {
		ch.Events = make([]ChangeEvent, 0, n)
	}
	prev := since
	for i := range n {
		d, k := binary.Uvarint(b)
		if k <= 0 {
			return Changes{}, fmt.Errorf("%w: event %d: bad index delta", ErrMalformedChanges, i)
		}
		b = b[k:]
		if i == 0 && d == 0 {
			return Changes{}, fmt.Errorf("%w: event 0 at since %d", ErrMalformedChanges, since)
		}
		if d > ch.Index-prev {
			return Changes{}, fmt.Errorf("%w: event %d after index %d", ErrMalformedChanges, i, ch.Index)
		}
		prev += d
		if len(b) < 1 {
			return Changes{}, fmt.Errorf("%w: event %d: no code length", ErrMalformedChanges, i)
		}
		cl := int(b[0])
		if cl == 0 || cl > maxWireCode || len(b)-1 < cl {
			return Changes{}, fmt.Errorf("%w: event %d: code length %d with %d bytes left", ErrMalformedChanges, i, cl, len(b)-1)
		}
		ch.Events = append(ch.Events, ChangeEvent{Index: prev, Code: string(b[1 : 1+cl])})
		b = b[1+cl:]
	}
	if len(b) != 0 {
		return Changes{}, fmt.Errorf("%w: %d bytes after the last event", ErrMalformedChanges, len(b))
	}
	return ch, nil
}
