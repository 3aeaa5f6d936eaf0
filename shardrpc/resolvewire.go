package shardrpc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The binary resolve RPC: the redirect path's call, the one call made for
// every redirect a router's cache does not answer. It carries no JSON: the
// request is a few bytes and the answer is the link record exactly as the
// shard stores it (package linkstore's encoding), which the client decodes
// with linkstore.DecodeRecord, so fields added to the record reach the
// router without a change here.
//
//	POST /rpc/v2/resolve, X-Linkraft-Shard and X-Linkraft-Secret as for every call
//	request:  version (0x01 or 0x02) | flags (bit 0: linearizable) | code length n (1..64) | n bytes of code
//	200 to a version 0x02 request:
//	          Content-Type application/vnd.linkraft.resolve.v1, version 0x02 | applied index u64 (big-endian) | the stored record (non-empty)
//	200 to a version 0x01 request:
//	          version 0x01 | the stored record (non-empty)
//	non-200:  the JSON ErrorBody of every call (not_found, maybe_stale, gone, not_leader, ...)
//
// The applied index of a version 0x02 answer is the answering replica's
// applied Raft index read before the record: the record reflects at least
// every entry up to it. A router keeps such an answer cached while the
// shard's change feed (feedwire.go) confirms that nothing after that index
// changed the link; a version 0x01 answer (from a node built before the
// index) is cached for the cache TTL only.
//
// The version byte comes first in both directions: a node answers in the
// version of the request and refuses a request version it does not know
// with 400 bad_request, and a client refuses an answer version it does not
// know as a protocol error. Nodes learn a new version before routers send
// it (upgrade the nodes first); a client reads both answer versions.
const (
	// PathResolveBinary is the path of the binary resolve RPC.
	PathResolveBinary = "/rpc/v2/resolve"
	// ContentTypeResolve is the content type of its request and answer.
	ContentTypeResolve = "application/vnd.linkraft.resolve.v1"
	// ResolveWireVersion is the version byte this build writes: its
	// answers carry the applied index.
	ResolveWireVersion = 0x02
	// ResolveWireVersion1 is the first version, without the applied index;
	// this build still reads and answers it.
	ResolveWireVersion1 = 0x01

	resolveFlagLinearizable = 0x01
	// maxWireCode is the longest code the request carries; it equals
	// linkstore.MaxCodeLength (checked by a test).
	maxWireCode = 64
)

// ErrMalformedResolve is wrapped by the errors of the binary resolve
// decoders for bytes that are not a valid encoding.
var ErrMalformedResolve = errors.New("shardrpc: malformed binary resolve message")

// AppendResolveRequest appends the binary resolve request for code to dst,
// in ResolveWireVersion. code must be 1 to 64 bytes (the decoder refuses
// other lengths).
func AppendResolveRequest(dst []byte, code string, linearizable bool) []byte {
	return AppendResolveRequestVersion(dst, ResolveWireVersion, code, linearizable)
}

// AppendResolveRequestVersion is AppendResolveRequest in the given version
// (ResolveWireVersion or ResolveWireVersion1).
func AppendResolveRequestVersion(dst []byte, version byte, code string, linearizable bool) []byte {
	var flags byte
	if linearizable {
		flags |= resolveFlagLinearizable
	}
	dst = append(dst, version, flags, byte(len(code)))
	return append(dst, code...)
}

// DecodeResolveRequest decodes a binary resolve request of either version.
// code aliases b. It never panics; bad input gives an error wrapping
// ErrMalformedResolve.
func DecodeResolveRequest(b []byte) (code []byte, linearizable bool, version byte, err error) {
	if len(b) < 3 {
		return nil, false, 0, fmt.Errorf("%w: request of %d bytes", ErrMalformedResolve, len(b))
	}
	version = b[0]
	if version != ResolveWireVersion && version != ResolveWireVersion1 {
		return nil, false, 0, fmt.Errorf("%w: request version %#x (this node reads %#x and %#x)", ErrMalformedResolve, b[0], ResolveWireVersion1, ResolveWireVersion)
	}
	flags := b[1]
	if flags&^resolveFlagLinearizable != 0 {
		return nil, false, 0, fmt.Errorf("%w: request flags %#x", ErrMalformedResolve, flags)
	}
	n := int(b[2])
	if n == 0 || n > maxWireCode {
		return nil, false, 0, fmt.Errorf("%w: code length %d is not in [1, %d]", ErrMalformedResolve, n, maxWireCode)
	}
	if len(b)-3 != n {
		return nil, false, 0, fmt.Errorf("%w: code length %d with %d bytes after the header", ErrMalformedResolve, n, len(b)-3)
	}
	return b[3:], flags&resolveFlagLinearizable != 0, version, nil
}

// AppendResolveResponseHeader appends the header of a 200 answer in
// version (that of the request) to dst; the stored record bytes follow
// it. applied is the answering replica's applied index, read before the
// record; version ResolveWireVersion1 does not carry it.
func AppendResolveResponseHeader(dst []byte, version byte, applied uint64) []byte {
	dst = append(dst, version)
	if version == ResolveWireVersion1 {
		return dst
	}
	return binary.BigEndian.AppendUint64(dst, applied)
}

// DecodeResolveResponse decodes the body of a 200 answer of either version
// and returns the stored record bytes, aliasing b, and the applied index
// (0 in a version ResolveWireVersion1 answer, or when the node did not
// know it). It never panics; bad input gives an error wrapping
// ErrMalformedResolve.
func DecodeResolveResponse(b []byte) (record []byte, applied uint64, err error) {
	if len(b) < 2 {
		return nil, 0, fmt.Errorf("%w: answer of %d bytes", ErrMalformedResolve, len(b))
	}
	switch b[0] {
	case ResolveWireVersion1:
		return b[1:], 0, nil
	case ResolveWireVersion:
		if len(b) < 10 {
			return nil, 0, fmt.Errorf("%w: version %#x answer of %d bytes", ErrMalformedResolve, b[0], len(b))
		}
		return b[9:], binary.BigEndian.Uint64(b[1:9]), nil
	}
	return nil, 0, fmt.Errorf("%w: answer version %#x (this client reads %#x and %#x)", ErrMalformedResolve, b[0], ResolveWireVersion1, ResolveWireVersion)
}
