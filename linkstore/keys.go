package linkstore

import (
	"crypto/sha256"
	"encoding/binary"
)

// Key kinds, the byte after the partition.
const (
	kindLink  = 'c'
	kindNext  = 'n'
	kindReuse = 'u'
)

// LinkKey returns the key of the link record of code in partition p.
func LinkKey(p uint32, code string) []byte {
	k := make([]byte, 0, 5+len(code))
	k = binary.BigEndian.AppendUint32(k, p)
	k = append(k, kindLink)
	return append(k, code...)
}

// appendLinkKey appends LinkKey(p, code) to dst.
func appendLinkKey(dst []byte, p uint32, code []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, p)
	dst = append(dst, kindLink)
	return append(dst, code...)
}

// NextKey returns the key of partition p's allocator offset.
func NextKey(p uint32) []byte { return appendNextKey(make([]byte, 0, 5), p) }

// appendNextKey appends NextKey(p) to dst.
func appendNextKey(dst []byte, p uint32) []byte {
	dst = binary.BigEndian.AppendUint32(dst, p)
	return append(dst, kindNext)
}

// ReuseKey returns the key of the reuse index entry of owner's url in
// partition p: the hash is over the URL alone for the empty owner (as
// before owners existed), else over owner | 0x00 | url, so that different
// owners never share an entry.
func ReuseKey(p uint32, owner, url string) []byte {
	return appendReuseKey(make([]byte, 0, reuseKeyLen), p, owner, url)
}

// reuseKeyLen is the length of a reuse index key.
const reuseKeyLen = 5 + sha256.Size

// appendReuseKey appends ReuseKey(p, owner, url) to dst.
func appendReuseKey(dst []byte, p uint32, owner, url string) []byte {
	var sum [sha256.Size]byte
	if owner == "" {
		sum = sha256.Sum256([]byte(url))
	} else {
		h := sha256.New()
		h.Write([]byte(owner))
		h.Write([]byte{0})
		h.Write([]byte(url))
		h.Sum(sum[:0])
	}
	dst = binary.BigEndian.AppendUint32(dst, p)
	dst = append(dst, kindReuse)
	return append(dst, sum[:]...)
}

// PartitionBounds returns the key range [lower, upper) that holds every key
// of partition p: the unit in which a partition can move between shards.
func PartitionBounds(p uint32) (lower, upper []byte) {
	lower = binary.BigEndian.AppendUint32(nil, p)
	if p == ^uint32(0) {
		return lower, []byte{0xff, 0xff, 0xff, 0xff, 0xff}
	}
	return lower, binary.BigEndian.AppendUint32(nil, p+1)
}
