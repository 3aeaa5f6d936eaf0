package shardrpc

import (
	"encoding/binary"
	"fmt"
)

// The multi-resolve RPC: the local (maybe stale) reads of many codes of one
// shard in one request, which the client sends when several resolves for
// the shard wait while its resolve RPCs are busy (resolvebatch.go). Each
// item is answered as a single binary resolve's local read would be: the
// stored record with the replica's applied index, or the error that resolve
// would have answered for that code alone (gone, maybe_stale, wrong_shard,
// unavailable, ...). There is no linearizable variant: a code a replica did
// not find is asked again at the leader with the single binary resolve.
//
//	POST /rpc/v2/resolve-many, X-Linkraft-Shard and X-Linkraft-Secret as for every call
//	request:  version 0x01 | flags 0x00 | item count u16 (1..MaxResolveMany, big-endian)
//	          | per item: code length n (1..64) | n bytes of code
//	200:      Content-Type application/vnd.linkraft.resolve-many.v1,
//	          version 0x01 | item count u16 (that of the request) | per item, in request order:
//	            0x00 | applied index u64 | record length u32 (1..MaxResolveManyRecord) | the stored record
//	            0x01 | error code length (1..255) | error code | message length u16 | message
//	non-200:  the JSON ErrorBody of every call, for the request as a whole
//	          (bad_request, unauthorized, unknown_shard, unavailable, ...)
//
// A node built before this RPC answers 404 with a bad_request ErrorBody
// ("no RPC at ..."); the client then sends single resolves to that node
// for a while (resolveManyRetry) before trying again. The version byte
// comes first in both directions, and a node refuses a request version it
// does not know with 400 bad_request, as for the single binary resolve.
const (
	// PathResolveMany is the path of the multi-resolve RPC.
	PathResolveMany = "/rpc/v2/resolve-many"
	// ContentTypeResolveMany is the content type of its request and answer.
	ContentTypeResolveMany = "application/vnd.linkraft.resolve-many.v1"
	// ResolveManyWireVersion is the version byte this build writes and reads.
	ResolveManyWireVersion = 0x01
	// MaxResolveMany bounds the items of one request.
	MaxResolveMany = 128
	// MaxResolveManyRecord bounds one record of an answer: far above the
	// largest record package linkstore stores (an 8 KiB URL plus its
	// bounded fields), so that a full answer stays well below the
	// client's response limit.
	MaxResolveManyRecord = 32 << 10

	resolveManyItemOK    = 0x00
	resolveManyItemError = 0x01
	// maxResolveManyMessage bounds an item's error message; a longer one
	// is cut.
	maxResolveManyMessage = 1024
)

// AppendResolveManyRequest appends the multi-resolve request for codes to
// dst. There must be 1 to MaxResolveMany codes of 1 to 64 bytes each (the
// decoder refuses anything else).
func AppendResolveManyRequest(dst []byte, codes []string) []byte {
	dst = append(dst, ResolveManyWireVersion, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(codes)))
	for _, c := range codes {
		dst = append(dst, byte(len(c)))
		dst = append(dst, c...)
	}
	return dst
}

// DecodeResolveManyRequest decodes a multi-resolve request, appending its
// codes (aliasing b) to dst in request order. It never panics; bad input
// gives an error wrapping ErrMalformedResolve, and then dst is returned
// as it was given.
func DecodeResolveManyRequest(b []byte, dst [][]byte) ([][]byte, error) {
	if len(b) < 4 {
		return dst, fmt.Errorf("%w: multi-resolve request of %d bytes", ErrMalformedResolve, len(b))
	}
	if b[0] != ResolveManyWireVersion {
		return dst, fmt.Errorf("%w: multi-resolve request version %#x (this node reads %#x)", ErrMalformedResolve, b[0], ResolveManyWireVersion)
	}
	if b[1] != 0 {
		return dst, fmt.Errorf("%w: multi-resolve request flags %#x", ErrMalformedResolve, b[1])
	}
	count := int(binary.BigEndian.Uint16(b[2:4]))
	if count == 0 || count > MaxResolveMany {
		return dst, fmt.Errorf("%w: %d items is not in [1, %d]", ErrMalformedResolve, count, MaxResolveMany)
	}
	start := len(dst)
	rest := b[4:]
	for i := range count {
		if len(rest) == 0 {
			return dst[:start], fmt.Errorf("%w: the request ends before item %d of %d", ErrMalformedResolve, i, count)
		}
		n := int(rest[0])
		if n == 0 || n > maxWireCode {
			return dst[:start], fmt.Errorf("%w: item %d: code length %d is not in [1, %d]", ErrMalformedResolve, i, n, maxWireCode)
		}
		if len(rest)-1 < n {
			return dst[:start], fmt.Errorf("%w: item %d: code length %d with %d bytes left", ErrMalformedResolve, i, n, len(rest)-1)
		}
		dst = append(dst, rest[1:1+n:1+n])
		rest = rest[1+n:]
	}
	if len(rest) != 0 {
		return dst[:start], fmt.Errorf("%w: %d bytes after the last item", ErrMalformedResolve, len(rest))
	}
	return dst, nil
}

// AppendResolveManyResponseHeader appends the header of a 200 answer of
// count items to dst; the count items follow it, in request order.
func AppendResolveManyResponseHeader(dst []byte, count int) []byte {
	dst = append(dst, ResolveManyWireVersion)
	return binary.BigEndian.AppendUint16(dst, uint16(count))
}

// AppendResolveManyRecordHeader appends the header of an item answered
// with a stored record of recordLen bytes (1..MaxResolveManyRecord) read
// at applied index applied; the record bytes follow it.
func AppendResolveManyRecordHeader(dst []byte, applied uint64, recordLen int) []byte {
	dst = append(dst, resolveManyItemOK)
	dst = binary.BigEndian.AppendUint64(dst, applied)
	return binary.BigEndian.AppendUint32(dst, uint32(recordLen))
}

// AppendResolveManyError appends an item answered with the error e (its
// code and message; a message longer than 1 KiB is cut). e.Code must be 1
// to 255 bytes.
func AppendResolveManyError(dst []byte, e ErrorBody) []byte {
	msg := e.Message
	if len(msg) > maxResolveManyMessage {
		msg = msg[:maxResolveManyMessage]
	}
	dst = append(dst, resolveManyItemError, byte(len(e.Code)))
	dst = append(dst, e.Code...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(msg)))
	return append(dst, msg...)
}

// ResolveManyItem is one decoded item of a multi-resolve answer: either
// Record (aliasing the answer) with Applied, or Err.
type ResolveManyItem struct {
	// Record is the stored record (package linkstore's encoding); nil
	// when Err is set.
	Record []byte
	// Applied is the answering replica's applied index, read before the
	// record.
	Applied uint64
	// Err is the error a single resolve of the code would have answered.
	Err *ErrorBody
}

// DecodeResolveManyResponse decodes the body of a 200 answer to a request
// of want items, appending them to dst in request order. It never panics;
// bad input, or a count other than want, gives an error wrapping
// ErrMalformedResolve, and then dst is returned as it was given.
func DecodeResolveManyResponse(b []byte, want int, dst []ResolveManyItem) ([]ResolveManyItem, error) {
	if len(b) < 3 {
		return dst, fmt.Errorf("%w: multi-resolve answer of %d bytes", ErrMalformedResolve, len(b))
	}
	if b[0] != ResolveManyWireVersion {
		return dst, fmt.Errorf("%w: multi-resolve answer version %#x (this client reads %#x)", ErrMalformedResolve, b[0], ResolveManyWireVersion)
	}
	if count := int(binary.BigEndian.Uint16(b[1:3])); count != want {
		return dst, fmt.Errorf("%w: multi-resolve answer of %d items to a request of %d", ErrMalformedResolve, count, want)
	}
	start := len(dst)
	rest := b[3:]
	for i := range want {
		if len(rest) == 0 {
			return dst[:start], fmt.Errorf("%w: the answer ends before item %d of %d", ErrMalformedResolve, i, want)
		}
		switch rest[0] {
		case resolveManyItemOK:
			if len(rest) < 13 {
				return dst[:start], fmt.Errorf("%w: item %d: record header of %d bytes", ErrMalformedResolve, i, len(rest))
			}
			applied := binary.BigEndian.Uint64(rest[1:9])
			n := binary.BigEndian.Uint32(rest[9:13])
			if n == 0 || n > MaxResolveManyRecord || uint64(len(rest)-13) < uint64(n) {
				return dst[:start], fmt.Errorf("%w: item %d: record of %d bytes with %d left", ErrMalformedResolve, i, n, len(rest)-13)
			}
			end := 13 + int(n)
			dst = append(dst, ResolveManyItem{Record: rest[13:end:end], Applied: applied})
			rest = rest[end:]
		case resolveManyItemError:
			if len(rest) < 2 || rest[1] == 0 || len(rest)-2 < int(rest[1])+2 {
				return dst[:start], fmt.Errorf("%w: item %d: truncated error", ErrMalformedResolve, i)
			}
			cl := int(rest[1])
			code := Code(rest[2 : 2+cl])
			rest = rest[2+cl:]
			ml := int(binary.BigEndian.Uint16(rest[:2]))
			if ml > maxResolveManyMessage || len(rest)-2 < ml {
				return dst[:start], fmt.Errorf("%w: item %d: error message of %d bytes with %d left", ErrMalformedResolve, i, ml, len(rest)-2)
			}
			dst = append(dst, ResolveManyItem{Err: &ErrorBody{Code: code, Message: string(rest[2 : 2+ml])}})
			rest = rest[2+ml:]
		default:
			return dst[:start], fmt.Errorf("%w: item %d: kind %#x", ErrMalformedResolve, i, rest[0])
		}
	}
	if len(rest) != 0 {
		return dst[:start], fmt.Errorf("%w: %d bytes after the last item", ErrMalformedResolve, len(rest))
	}
	return dst, nil
}
