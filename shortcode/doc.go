// Package shortcode defines the format of linkraft's short codes: the base62
// alphabet, the keyed permutation that turns sequential IDs into codes that
// look random, the split of the ID space into partitions, and the rules for
// custom aliases.
//
// # Generated codes
//
// A generated code has a fixed length L (the cluster's code_length, 7 by
// default) of base62 characters, digits first, then upper case, then lower
// case:
//
//	0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz
//
// so "0000000" is 0 and "zzzzzzz" is N-1 with N = 62^L (3,521,614,606,208 for
// L = 7). Codes are case-sensitive.
//
// A code is never the ID itself. It is
//
//	code = base62(permute(id))    left-padded with '0' to L characters
//	id   = unpermute(base62⁻¹(code))
//
// where permute is a keyed bijection on [0, N): every ID has exactly one code,
// every L-character base62 string is the code of exactly one ID, and
// consecutive IDs give codes that share nothing visible, so the codes of a
// shard cannot be enumerated by counting.
//
// # The permutation
//
// permute is a balanced Feistel network over the smallest domain of an even
// number of bits 2k with 2^(2k) >= N (k = 21 for L = 7: N < 2^42), with
// cycle walking to stay inside [0, N):
//
//	x = feistel(id); while x >= N { x = feistel(x) }
//
// Cycle walking terminates because the Feistel network is a permutation of
// [0, 2^(2k)): the cycle through id returns to id, which is below N. At least
// a quarter of the 2k-bit domain lies below N, so the expected number of
// Feistel passes is below 4 and is 1.25 for L = 7. unpermute walks the
// inverse network the same way.
//
// The network has 8 rounds. Round i maps the halves (l, r) to
// (r, l XOR F_i(r)), where F_i is a 64-bit multiply-xorshift mixer keyed by
// two 64-bit round keys (the splitmix64 finalizer, applied once after XOR
// with each key) and truncated to k bits. Round i's two keys are the first
// 16 bytes of HMAC-SHA256(secret, "linkraft/shortcode/v1/round/" + i),
// computed once in New, so that each round is allocation-free and costs a
// few nanoseconds (Encode and DecodeBytes take about 60ns). Rounds with independent keys over a mixer with full avalanche
// make the output look random to anyone without the secret; the scheme is
// built to stop enumeration of codes, it is not a vetted block cipher and
// must not be used to protect anything else.
//
// An empty secret selects DevelopmentSecret, a fixed key written in this
// source: codes are then still unordered, but anyone who has the source can
// enumerate them. Production clusters set the code secret (cluster.yaml's
// code_secret_env). The secret, L and the number of partitions must never
// change once a link exists: they define which ID, and so which partition
// and shard, a code belongs to.
//
// # Partitions
//
// The cluster has P partitions (cluster.yaml's partitions). Each owns a
// contiguous range of R = N / P IDs (integer division):
//
//	partition p owns IDs [p*R, (p+1)*R)
//
// IDs at or above P*R are never allocated (fewer than P of them exist). The
// shard that owns partition p hands out the IDs of that range in order, so
// any router recovers the partition of a generated code from the code alone:
//
//	p = unpermute(base62⁻¹(code)) / R
//
// # Aliases
//
// A custom alias is 3 to 64 characters of [A-Za-z0-9_-] and is not one of the
// reserved words (see ValidateAlias), compared case-insensitively. An alias
// with the shape of a generated code (IsGeneratedShape: exactly L base62
// characters) is placed by decoding, like a generated code, so it lands in the
// partition whose allocator would have produced it; the allocator of that
// partition skips every ID whose code an alias already holds, so a generated
// code and an alias never collide. Skipping is the state machine's job
// (linkstore); this package only defines the mapping. An alias of any other
// shape cannot equal a generated code and is placed by hashing (see package
// ring).
//
// # Cost
//
// Encode, AppendEncode, Decode, DecodeBytes and PartitionOfCode do not
// allocate (except Encode's one result string) and take well under a
// microsecond. A Codec is immutable and safe for concurrent use.
package shortcode
