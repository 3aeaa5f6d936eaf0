// Package ring places codes on shards: code -> partition -> shard.
//
// # Partitions
//
// A cluster has a fixed number P of partitions (cluster.yaml's partitions,
// 1024 by default), set when the cluster is created. A partition is the unit
// of data: every key of a link lives under its partition's prefix, so a
// partition could later move between shards as one key range.
//
// The partition of a code is found without asking anyone:
//
//   - A code of the generated shape (package shortcode: exactly code_length
//     base62 characters) is decoded: p = unpermute(base62⁻¹(code)) / R. This
//     holds for generated codes and for aliases of that shape alike, so an
//     alias of generated shape lands in the partition whose allocator would
//     produce that code, and that allocator skips it.
//   - Any other code (an alias such as "my-launch", or a generated-shaped
//     string whose ID lies beyond the last partition) is hashed:
//     p = xxhash64(code) mod P, which is buraksezer/consistent's
//     FindPartitionID with the xxhash64 hasher.
//
// A new generated code is placed by its URL: p = xxhash64(normalized URL)
// mod P (PartitionOfURL). The same URL always reaches the same partition,
// which is what lets a shard answer "reuse" from its own state.
//
// # Partition -> shard
//
// buraksezer/consistent v1.0.0 maps partitions to shards: the members of the
// ring are the shard IDs written in decimal ("1", "2", ...), each placed
// ReplicationFactor times on the hash circle, and partition p goes to the
// first member clockwise of xxhash64(p as 8 little-endian bytes) that has
// room under the bounded load ceil(P / shards * Load). With Load = 1.25 no
// shard holds more than 1.25 times its fair share.
//
// The map is a pure function of the set of shard IDs and P: New sorts the IDs
// before building the circle, so the order of shards in cluster.yaml does not
// matter, and every router and node that reads the same file computes the
// same map. The map is computed once, in New, into a slice indexed by
// partition; every lookup afterwards is an array index and does not allocate.
//
// Changing the set of shards changes the map, and this package does not move
// data: adding or removing a shard of a cluster that holds links needs a
// resharding step that does not exist yet.
//
// A Ring is immutable and safe for concurrent use.
package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
	"github.com/linkraft/linkraft/shortcode"
)

// Parameters of the consistent hash ring. They are part of the placement:
// changing either one moves partitions between shards.
const (
	// ReplicationFactor is the number of points each shard has on the
	// hash circle. Measured on 1024 partitions, 40 points leave 3 shards
	// with 268..379 partitions and 200 points with 334..348; the circle is
	// built once per process, so the extra points cost nothing that matters.
	ReplicationFactor = 200
	// Load bounds each shard to Load times its fair share of partitions.
	Load = 1.25
)

// ErrInvalidRing is returned (wrapped) by New for an unusable shard list or
// partition count.
var ErrInvalidRing = errors.New("ring: invalid parameters")

// Ring is the placement of one cluster: partitions to shards, codes and URLs
// to partitions.
type Ring struct {
	codec      *shortcode.Codec
	partitions uint32
	owner      []uint64 // partition -> shard ID
	shards     []uint64 // sorted
	print      uint64   // Fingerprint
}

// hasher is xxhash64 for consistent.
type hasher struct{}

func (hasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

// member is a shard ID on the circle.
type member string

func (m member) String() string { return string(m) }

// New builds the ring of the shards shardIDs (distinct, > 0) over partitions
// partitions (at least one per shard), placing generated codes with codec,
// whose partition count must be partitions.
func New(shardIDs []uint64, partitions int, codec *shortcode.Codec) (*Ring, error) {
	if codec == nil {
		return nil, fmt.Errorf("%w: nil codec", ErrInvalidRing)
	}
	if codec.Partitions() != partitions {
		return nil, fmt.Errorf("%w: codec has %d partitions, ring %d", ErrInvalidRing, codec.Partitions(), partitions)
	}
	if len(shardIDs) == 0 {
		return nil, fmt.Errorf("%w: no shards", ErrInvalidRing)
	}
	if partitions < len(shardIDs) || partitions > shortcode.MaxPartitions {
		return nil, fmt.Errorf("%w: %d partitions for %d shards (need %d..%d)",
			ErrInvalidRing, partitions, len(shardIDs), len(shardIDs), shortcode.MaxPartitions)
	}
	shards := slices.Clone(shardIDs)
	slices.Sort(shards)
	for i, id := range shards {
		if id == 0 {
			return nil, fmt.Errorf("%w: shard ID 0", ErrInvalidRing)
		}
		if i > 0 && shards[i-1] == id {
			return nil, fmt.Errorf("%w: shard ID %d listed twice", ErrInvalidRing, id)
		}
	}
	members := make([]consistent.Member, len(shards))
	for i, id := range shards {
		members[i] = member(strconv.FormatUint(id, 10))
	}
	ch := consistent.New(members, consistent.Config{
		Hasher:            hasher{},
		PartitionCount:    partitions,
		ReplicationFactor: ReplicationFactor,
		Load:              Load,
	})
	owner := make([]uint64, partitions)
	for p := range owner {
		m := ch.GetPartitionOwner(p)
		if m == nil {
			return nil, fmt.Errorf("%w: partition %d has no owner", ErrInvalidRing, p)
		}
		id, err := strconv.ParseUint(m.String(), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("ring: member %q: %w", m.String(), err)
		}
		owner[p] = id
	}
	d := xxhash.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], codec.Fingerprint())
	d.Write(b[:])
	for _, s := range owner {
		binary.BigEndian.PutUint64(b[:], s)
		d.Write(b[:])
	}
	return &Ring{codec: codec, partitions: uint32(partitions), owner: owner, shards: shards, print: d.Sum64()}, nil
}

// Fingerprint identifies the whole placement: the codec's fingerprint and
// the partition -> shard map. Two rings with equal fingerprints send every
// code to the same partition and shard (up to a 64-bit hash collision).
// Processes of one cluster can exchange it to detect a peer that read
// another cluster file or another code secret.
func (r *Ring) Fingerprint() uint64 { return r.print }

// Partitions is the number of partitions P.
func (r *Ring) Partitions() int { return int(r.partitions) }

// Codec is the codec the ring decodes generated codes with.
func (r *Ring) Codec() *shortcode.Codec { return r.codec }

// Shards returns the shard IDs, sorted.
func (r *Ring) Shards() []uint64 { return slices.Clone(r.shards) }

// ShardOf returns the shard that owns partition p. It panics if p >=
// Partitions(); partitions come from this package or the codec of the
// same cluster.
func (r *Ring) ShardOf(p uint32) uint64 { return r.owner[p] }

// PartitionsOf returns the partitions shard owns, ascending; none for a
// shard that is not in the ring.
func (r *Ring) PartitionsOf(shard uint64) []uint32 {
	var ps []uint32
	for p, s := range r.owner {
		if s == shard {
			ps = append(ps, uint32(p))
		}
	}
	return ps
}

// PartitionOfCode returns the partition of a code or alias: decoded for a
// code of the generated shape whose ID a partition owns, hashed otherwise
// (see the package documentation). It does not allocate.
func (r *Ring) PartitionOfCode(code string) uint32 {
	if p, ok := r.codec.PartitionOfCode(code); ok {
		return p
	}
	return uint32(xxhash.Sum64String(code) % uint64(r.partitions))
}

// PartitionOfCodeBytes is PartitionOfCode for a byte slice, for the
// request path of the router. It does not allocate or retain code.
func (r *Ring) PartitionOfCodeBytes(code []byte) uint32 {
	if p, ok := r.codec.PartitionOfCodeBytes(code); ok {
		return p
	}
	return uint32(xxhash.Sum64(code) % uint64(r.partitions))
}

// ShardOfCode returns the shard that owns a code or alias.
func (r *Ring) ShardOfCode(code string) uint64 { return r.owner[r.PartitionOfCode(code)] }

// ShardOfCodeBytes is ShardOfCode for a byte slice. It does not allocate.
func (r *Ring) ShardOfCodeBytes(code []byte) uint64 {
	return r.owner[r.PartitionOfCodeBytes(code)]
}

// PartitionOfURL returns the partition in which a new generated code for the
// normalized URL is allocated: xxhash64(url) mod P. It does not allocate.
func (r *Ring) PartitionOfURL(normalizedURL string) uint32 {
	return uint32(xxhash.Sum64String(normalizedURL) % uint64(r.partitions))
}
