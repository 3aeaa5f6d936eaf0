package shardrpc

import (
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
//	request:  version 0x01 | flags (bit 0: linearizable) | code length n (1..64) | n bytes of code
//	200:      Content-Type application/vnd.linkraft.resolve.v1, version 0x01 | the stored record (non-empty)
//	non-200:  the JSON ErrorBody of every call (not_found, maybe_stale, gone, not_leader, ...)
//
// The version byte comes first in both directions: a node refuses a request
// version it does not know with 400 bad_request, and a client refuses an
// answer version it does not know as a protocol error. Nodes learn a new
// version before routers send it (upgrade the nodes first).
const (
	// PathResolveBinary is the path of the binary resolve RPC.
	PathResolveBinary = "/rpc/v2/resolve"
	// ContentTypeResolve is the content type of its request and answer.
	ContentTypeResolve = "application/vnd.linkraft.resolve.v1"
	// ResolveWireVersion is the version byte this build writes and reads.
	ResolveWireVersion = 0x01

	resolveFlagLinearizable = 0x01
	// maxWireCode is the longest code the request carries; it equals
	// linkstore.MaxCodeLength (checked by a test).
	maxWireCode = 64
)

// ErrMalformedResolve is wrapped by the errors of the binary resolve
// decoders for bytes that are not a valid encoding.
var ErrMalformedResolve = errors.New("shardrpc: malformed binary resolve message")

// AppendResolveRequest appends the binary resolve request for code to dst.
// code must be 1 to 64 bytes (the decoder refuses other lengths).
func AppendResolveRequest(dst []byte, code string, linearizable bool) []byte {
	var flags byte
	if linearizable {
		flags |= resolveFlagLinearizable
	}
	dst = append(dst, ResolveWireVersion, flags, byte(len(code)))
	return append(dst, code...)
}

// DecodeResolveRequest decodes a binary resolve request. code aliases b.
// It never panics; bad input gives an error wrapping ErrMalformedResolve.
func DecodeResolveRequest(b []byte) (code []byte, linearizable bool, err error) {
	if len(b) < 3 {
		return nil, false, fmt.Errorf("%w: request of %d bytes", ErrMalformedResolve, len(b))
	}
	if b[0] != ResolveWireVersion {
		return nil, false, fmt.Errorf("%w: request version %#x (this node reads %#x)", ErrMalformedResolve, b[0], ResolveWireVersion)
	}
	flags := b[1]
	if flags&^resolveFlagLinearizable != 0 {
		return nil, false, fmt.Errorf("%w: request flags %#x", ErrMalformedResolve, flags)
	}
	n := int(b[2])
	if n == 0 || n > maxWireCode {
		return nil, false, fmt.Errorf("%w: code length %d is not in [1, %d]", ErrMalformedResolve, n, maxWireCode)
	}
	if len(b)-3 != n {
		return nil, false, fmt.Errorf("%w: code length %d with %d bytes after the header", ErrMalformedResolve, n, len(b)-3)
	}
	return b[3:], flags&resolveFlagLinearizable != 0, nil
}

// AppendResolveResponseHeader appends the header of a 200 answer to dst;
// the stored record bytes follow it.
func AppendResolveResponseHeader(dst []byte) []byte {
	return append(dst, ResolveWireVersion)
}

// DecodeResolveResponse decodes the body of a 200 answer and returns the
// stored record bytes, aliasing b. It never panics; bad input gives an
// error wrapping ErrMalformedResolve.
func DecodeResolveResponse(b []byte) (record []byte, err error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: answer of %d bytes", ErrMalformedResolve, len(b))
	}
	if b[0] != ResolveWireVersion {
		return nil, fmt.Errorf("%w: answer version %#x (this client reads %#x)", ErrMalformedResolve, b[0], ResolveWireVersion)
	}
	return b[1:], nil
}
