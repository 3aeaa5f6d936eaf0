package clicks

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
	"github.com/dchest/siphash"
)

// VisitorHasher computes the keyed visitor hash of a click: SipHash-2-4,
// a pseudo-random function keyed with a per-cluster key, of the client IP
// and the user agent's xxhash64. The hashes cannot be reversed to IPs or
// matched across clusters, and every router of one cluster hashes a
// visitor alike (uniques merge across routers). It is safe for concurrent
// use.
type VisitorHasher struct {
	k0, k1 uint64
}

// VisitorKey derives the 128-bit visitor key from a cluster secret (e.g.
// the cluster's code secret). Every router of a cluster must use the same.
func VisitorKey(secret string) [16]byte {
	sum := sha256.Sum256([]byte("linkraft/clicks/visitor\x00" + secret))
	var k [16]byte
	copy(k[:], sum[:16])
	return k
}

// NewVisitorHasher returns a hasher with key.
func NewVisitorHasher(key [16]byte) *VisitorHasher {
	return &VisitorHasher{k0: binary.LittleEndian.Uint64(key[:8]), k1: binary.LittleEndian.Uint64(key[8:])}
}

// maxIPLen bounds the IP bytes hashed: a textual IPv6 address is at most 45
// bytes, a binary one 16.
const maxIPLen = 64

// Sum returns the visitor hash of a client IP (binary or textual) and user
// agent. It does not allocate.
func (h *VisitorHasher) Sum(ip, userAgent []byte) uint64 {
	return h.SumHash(ip, xxhash.Sum64(userAgent))
}

// SumHash is Sum with the user agent's xxhash64 (Agent.UAHash) already
// computed.
func (h *VisitorHasher) SumHash(ip []byte, uaHash uint64) uint64 {
	var buf [maxIPLen + 9]byte
	if len(ip) > maxIPLen {
		ip = ip[:maxIPLen]
	}
	n := copy(buf[:], ip)
	buf[n] = byte(len(ip)) // frames the IP
	binary.LittleEndian.PutUint64(buf[n+1:], uaHash)
	return siphash.Hash(h.k0, h.k1, buf[:n+9])
}
