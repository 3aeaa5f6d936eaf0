package shardrpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/linkraft/linkraft/linkstore"
)

// The binary bulk create RPC: the call a router makes for every batch of
// creates it coalesced (router/createbatch.go), so the one create path call
// whose JSON cost showed in the profiles (docs/BENCHMARKS.md). The request
// carries the items' fields length-prefixed; the answer is the create
// batch's result as the shard's state machine returned it
// (linkstore.AppendBatchResultHeader and AppendBatchItemResult: one
// encoded linkstore result, a status and the stored record, per item), so
// the node encodes nothing per item and the client turns each result into
// a BulkItemResult with BulkItemResultOf, the conversion the node's JSON
// answer uses as well.
//
//	POST /rpc/v2/bulk-create, X-Linkraft-Shard and X-Linkraft-Secret as for every call
//	request:  version (0x01 or 0x02) | item count uvarint (1..MaxBulkItems) | items
//	item:     request_id | partition u32 (big-endian) | url | alias | flags u8 (bit 0: reuse) |
//	          expires_at_ms varint | max_clicks uvarint | owner | title |
//	          tag count uvarint | tags | redirect_status uvarint
//	          (every string: length uvarint | bytes)
//	200 to a version 0x02 request:
//	          Content-Type application/vnd.linkraft.bulk-create.v1,
//	          version 0x02 | applied index u64 (big-endian) | the linkstore batch result
//	          with its replay trailer (linkstore.DecodeBatchResultReplays)
//	200 to a version 0x01 request:
//	          version 0x01 | the linkstore batch result without the trailer
//	non-200:  the JSON ErrorBody of every call (not_leader, wrong_shard, bad_request, ...)
//
// The applied index of a version 0x02 answer is the Raft index of the
// entry that applied the bulk: the client sets it as Link.AppliedIndex of
// every item the entry applied (not of a replayed item, answered from the
// request table with the result of an earlier entry, as its record may
// have changed since), so a router caches a new link feed-backed at once
// (router cache PutAt).
//
// As for the binary resolve, the version byte comes first both ways, a
// node answers in the version of the request and refuses a version it
// does not know with 400 bad_request; nodes learn a version before routers
// send it (upgrade the nodes first), and ClientOptions.BulkCreateJSON keeps
// a client on the JSON call (PathBulkCreate) meanwhile.
const (
	// PathBulkCreateBinary is the path of the binary bulk create RPC.
	PathBulkCreateBinary = "/rpc/v2/bulk-create"
	// ContentTypeBulkCreate is the content type of its request and answer.
	ContentTypeBulkCreate = "application/vnd.linkraft.bulk-create.v1"
	// BulkWireVersion is the version byte this build writes: its answers
	// carry the applied index.
	BulkWireVersion = 0x02
	// BulkWireVersion1 is the first version, without the applied index;
	// this build still reads and answers it.
	BulkWireVersion1 = 0x01

	bulkFlagReuse = 0x01
)

// ErrMalformedBulk is wrapped by the errors of the binary bulk create
// decoders for bytes that are not a valid encoding.
var ErrMalformedBulk = errors.New("shardrpc: malformed binary bulk create message")

// AppendBulkCreateRequest appends the binary bulk create request of items
// to dst. The node checks the values as it checks those of the JSON call;
// a RedirectStatus outside [0, 65535] makes the request malformed.
func AppendBulkCreateRequest(dst []byte, items []CreateRequest) []byte {
	return AppendBulkCreateRequestVersion(dst, BulkWireVersion, items)
}

// AppendBulkCreateRequestVersion is AppendBulkCreateRequest in the given
// version (BulkWireVersion or BulkWireVersion1): the items are the same in
// both.
func AppendBulkCreateRequestVersion(dst []byte, version byte, items []CreateRequest) []byte {
	dst = append(dst, version)
	dst = binary.AppendUvarint(dst, uint64(len(items)))
	for i := range items {
		it := &items[i]
		dst = appendWireString(dst, it.RequestID)
		dst = binary.BigEndian.AppendUint32(dst, it.Partition)
		dst = appendWireString(dst, it.URL)
		dst = appendWireString(dst, it.Alias)
		var flags byte
		if it.Reuse {
			flags |= bulkFlagReuse
		}
		dst = append(dst, flags)
		dst = binary.AppendVarint(dst, it.ExpiresAtMs)
		dst = binary.AppendUvarint(dst, it.MaxClicks)
		dst = appendWireString(dst, it.Owner)
		dst = appendWireString(dst, it.Title)
		dst = binary.AppendUvarint(dst, uint64(len(it.Tags)))
		for _, t := range it.Tags {
			dst = appendWireString(dst, t)
		}
		// A negative status (never valid) encodes as one the decoder
		// refuses, not as 0 (the default, valid).
		status := uint64(math.MaxUint64)
		if it.RedirectStatus >= 0 {
			status = uint64(it.RedirectStatus)
		}
		dst = binary.AppendUvarint(dst, status)
	}
	return dst
}

// bulkRequestSize is an upper bound of the encoded size of items.
func bulkRequestSize(items []CreateRequest) int {
	n := 1 + binary.MaxVarintLen64
	for i := range items {
		it := &items[i]
		n += 4 + 1 + 6*binary.MaxVarintLen64 + len(it.RequestID) + len(it.URL) + len(it.Alias) + len(it.Owner) + len(it.Title)
		for _, t := range it.Tags {
			n += binary.MaxVarintLen64 + len(t)
		}
	}
	return n
}

func appendWireString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// DecodeBulkCreateRequest decodes a binary bulk create request of either
// version and returns its items and version. The strings are copies:
// nothing aliases b. It never panics; bad input (including a count outside
// [1, MaxBulkItems] and trailing bytes) gives an error wrapping
// ErrMalformedBulk.
func DecodeBulkCreateRequest(b []byte) ([]CreateRequest, byte, error) {
	if len(b) == 0 {
		return nil, 0, fmt.Errorf("%w: empty request", ErrMalformedBulk)
	}
	version := b[0]
	if version != BulkWireVersion && version != BulkWireVersion1 {
		return nil, 0, fmt.Errorf("%w: request version %#x (this node reads %#x and %#x)", ErrMalformedBulk, b[0], BulkWireVersion1, BulkWireVersion)
	}
	items, err := decodeBulkItems(b[1:])
	if err != nil {
		return nil, 0, err
	}
	return items, version, nil
}

func decodeBulkItems(b []byte) ([]CreateRequest, error) {
	d := wireDecoder{b: b}
	count := d.uvarint("item count")
	if d.err == nil && (count == 0 || count > MaxBulkItems) {
		return nil, fmt.Errorf("%w: %d items, want 1 to %d", ErrMalformedBulk, count, MaxBulkItems)
	}
	// Every item takes at least 11 bytes: do not trust the count with
	// more room than the body can fill.
	if d.err == nil && count > uint64(len(d.b)/11) {
		return nil, fmt.Errorf("%w: %d items in %d bytes", ErrMalformedBulk, count, len(d.b))
	}
	items := make([]CreateRequest, 0, count)
	for i := uint64(0); i < count && d.err == nil; i++ {
		var it CreateRequest
		it.RequestID = d.str("request_id")
		it.Partition = d.u32("partition")
		it.URL = d.str("url")
		it.Alias = d.str("alias")
		flags := d.byte("flags")
		if d.err == nil && flags&^bulkFlagReuse != 0 {
			d.fail(fmt.Sprintf("flags %#x", flags))
		}
		it.Reuse = flags&bulkFlagReuse != 0
		it.ExpiresAtMs = d.varint("expires_at_ms")
		it.MaxClicks = d.uvarint("max_clicks")
		it.Owner = d.str("owner")
		it.Title = d.str("title")
		if tags := d.uvarint("tag count"); d.err == nil && tags > 0 {
			if tags > uint64(len(d.b)) {
				d.fail(fmt.Sprintf("%d tags in %d bytes", tags, len(d.b)))
				break
			}
			it.Tags = make([]string, tags)
			for j := range it.Tags {
				it.Tags[j] = d.str("tag")
			}
		}
		status := d.uvarint("redirect_status")
		if d.err == nil && status > math.MaxUint16 {
			d.fail(fmt.Sprintf("redirect_status %d", status))
		}
		it.RedirectStatus = int(status)
		items = append(items, it)
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: item %d: %w", ErrMalformedBulk, len(items), d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformedBulk, len(d.b))
	}
	return items, nil
}

// wireDecoder reads the fields of a binary message; the first error
// sticks and every later read returns a zero value.
type wireDecoder struct {
	b   []byte
	err error
}

func (d *wireDecoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New(msg)
	}
}

func (d *wireDecoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad " + field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *wireDecoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad " + field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *wireDecoder) u32(field string) uint32 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 4 {
		d.fail("short " + field)
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *wireDecoder) byte(field string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail("short " + field)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *wireDecoder) str(field string) string {
	n := d.uvarint(field + " length")
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail(fmt.Sprintf("%s of %d bytes with %d left", field, n, len(d.b)))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// AppendBulkCreateResponse appends the body of a 200 answer in version
// (that of the request) to dst: the version byte, then for
// BulkWireVersion the applied index of the entry and the linkstore batch
// result as the state machine returned it (with its replay trailer), for
// BulkWireVersion1 the batch result without the trailer.
func AppendBulkCreateResponse(dst []byte, version byte, applied uint64, batchResult []byte) ([]byte, error) {
	switch version {
	case BulkWireVersion:
		dst = binary.BigEndian.AppendUint64(append(dst, version), applied)
		return append(dst, batchResult...), nil
	case BulkWireVersion1:
		_, _, end, err := linkstore.DecodeBatchResultReplays(batchResult)
		if err != nil {
			return nil, fmt.Errorf("shardrpc: bulk create answer: %w", err)
		}
		return append(append(dst, version), batchResult[:end]...), nil
	}
	return nil, fmt.Errorf("shardrpc: bulk create answer version %#x", version)
}

// DecodeBulkCreateResponse decodes the body of a 200 answer of either
// version to the request of items into one result per item, in order. In
// a BulkWireVersion answer, the link of every item the entry applied (not
// replayed) carries the entry's index as AppliedIndex. It never panics;
// bad input (an unknown version, an undecodable batch or item result, a
// result count other than len(items)) gives an error wrapping
// ErrMalformedBulk.
func DecodeBulkCreateResponse(b []byte, items []CreateRequest) ([]BulkItemResult, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty answer", ErrMalformedBulk)
	}
	var applied uint64
	switch b[0] {
	case BulkWireVersion1:
		b = b[1:]
	case BulkWireVersion:
		if len(b) < 9 {
			return nil, fmt.Errorf("%w: version %#x answer of %d bytes", ErrMalformedBulk, b[0], len(b))
		}
		applied = binary.BigEndian.Uint64(b[1:9])
		b = b[9:]
	default:
		return nil, fmt.Errorf("%w: answer version %#x (this client reads %#x and %#x)", ErrMalformedBulk, b[0], BulkWireVersion1, BulkWireVersion)
	}
	raws, replayed, _, err := linkstore.DecodeBatchResultReplays(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedBulk, err)
	}
	if len(raws) != len(items) {
		return nil, fmt.Errorf("%w: %d results for %d items", ErrMalformedBulk, len(raws), len(items))
	}
	out := make([]BulkItemResult, len(raws))
	for i, raw := range raws {
		res, err := linkstore.DecodeResult(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: item %d: %w", ErrMalformedBulk, i, err)
		}
		if out[i], err = BulkItemResultOf(items[i], res); err != nil {
			return nil, fmt.Errorf("%w: item %d: %w", ErrMalformedBulk, i, err)
		}
		if out[i].Link != nil && !replayed[i] {
			out[i].Link.AppliedIndex = applied
		}
	}
	return out, nil
}

// BulkItemResultOf is the RPC result of one bulk create item from its
// linkstore result: the one conversion, used by the node's JSON answer and
// by the client of the binary one alike. A status that is not a create's
// outcome is an error.
func BulkItemResultOf(it CreateRequest, res linkstore.Result) (BulkItemResult, error) {
	fail := func(code Code, msg string) (BulkItemResult, error) {
		return BulkItemResult{Error: &ErrorBody{Code: code, Message: msg}}, nil
	}
	switch res.Status {
	case linkstore.ResultCreated, linkstore.ResultExisting:
		link := LinkFromRecord(res.Record)
		link.Created = res.Status == linkstore.ResultCreated
		return BulkItemResult{Link: &link}, nil
	case linkstore.ResultAliasTaken:
		return fail(ErrCodeAliasTaken, fmt.Sprintf("alias %q is taken", it.Alias))
	case linkstore.ResultExhausted:
		return fail(ErrCodeExhausted, fmt.Sprintf("partition %d has no free code left", it.Partition))
	case linkstore.ResultBadRequest:
		return fail(ErrCodeBadRequest, res.Reason)
	default:
		return BulkItemResult{}, fmt.Errorf("unknown create result %s", res.Status)
	}
}
