package linkstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shortcode"
)

// Placement is what the machine needs to know about the cluster's code
// placement. *ring.Ring implements it. Both answers depend only on the
// cluster's partitions, code length and code secret, which never change, so
// every replica answers alike.
type Placement interface {
	// Codec is the cluster's code codec.
	Codec() *shortcode.Codec
	// PartitionOfCode is the partition a code or alias belongs to.
	PartitionOfCode(code string) uint32
}

// Machine is the state machine of one shard. It is stateless apart from its
// immutable placement, so one Machine may serve any number of groups, and it
// is safe for concurrent use.
type Machine struct {
	place Placement
	codec *shortcode.Codec
}

var _ raftstore.StateMachine = (*Machine)(nil)

// New returns the state machine for a cluster with placement place (the
// cluster's *ring.Ring).
func New(place Placement) *Machine {
	return &Machine{place: place, codec: place.Codec()}
}

// StorageError is the panic value of Apply when the store fails under it.
// An apply cannot be skipped or half-done without the replicas diverging,
// so a read or write error inside Apply stops the replica instead.
type StorageError struct {
	Op  string
	Err error
}

func (e *StorageError) Error() string { return "linkstore: apply: " + e.Op + ": " + e.Err.Error() }

// Unwrap returns the store's error.
func (e *StorageError) Unwrap() error { return e.Err }

func must(op string, err error) {
	if err != nil {
		panic(&StorageError{Op: op, Err: err})
	}
}

// Apply applies one command. It is deterministic: it reads and writes only
// through tx and decides only from the command and the stored state. An
// invalid command yields ResultBadRequest and changes nothing. A storage
// error panics with a *StorageError (see there).
func (m *Machine) Apply(tx raftstore.Txn, _ uint64, cmd []byte) []byte {
	c, err := DecodeCommand(cmd)
	if err != nil {
		return badRequest(err.Error())
	}
	// Every command reads and writes allocators through one allocCache,
	// which also keeps them in the replica's memo between commands.
	allocs := newAllocCache(tx)
	out := m.apply(allocs, c)
	allocs.flush()
	return out
}

// apply applies a decoded command.
func (m *Machine) apply(tx raftstore.Txn, c Command) []byte {
	switch c := c.(type) {
	case Create:
		return AppendResult(nil, m.applyCreate(tx, c))
	case ClickBatch:
		return AppendResult(nil, m.applyClicks(tx, c))
	case Delete:
		return AppendResult(nil, m.applyDelete(tx, c))
	case CreateBatch:
		return m.applyBatch(tx, c)
	case Edit:
		return AppendResult(nil, m.applyEdit(tx, c))
	case Purge:
		return m.applyPurge(tx, c)
	default:
		return badRequest(fmt.Sprintf("command type %#x is not applied by this version", byte(c.Type())))
	}
}

func badRequest(reason string) []byte {
	return AppendResult(nil, Result{Status: ResultBadRequest, Reason: reason})
}

func (m *Machine) applyCreate(tx raftstore.Txn, c Create) Result {
	if reason := m.checkCreate(c); reason != "" {
		return Result{Status: ResultBadRequest, Reason: reason}
	}
	if c.Alias != "" {
		return m.createAlias(tx, c)
	}
	return m.createGenerated(tx, c)
}

// checkCreate returns why c cannot be applied, or "".
func (m *Machine) checkCreate(c Create) string {
	if int(c.Partition) >= m.codec.Partitions() {
		return fmt.Sprintf("partition %d is outside [0, %d)", c.Partition, m.codec.Partitions())
	}
	if c.URL == "" {
		return "empty URL"
	}
	if c.ExpiresAtMs < 0 {
		return fmt.Sprintf("expiry %d is before 1970", c.ExpiresAtMs)
	}
	if len(c.URL) > MaxURLLength {
		return fmt.Sprintf("URL of %d bytes is longer than %d", len(c.URL), MaxURLLength)
	}
	if reason := checkMeta(c.Owner, c.Title, c.Tags, c.RedirectStatus); reason != "" {
		return reason
	}
	if c.Alias != "" {
		if err := shortcode.ValidateAlias(c.Alias); err != nil {
			return err.Error()
		}
		if p := m.place.PartitionOfCode(c.Alias); p != c.Partition {
			return fmt.Sprintf("alias %q belongs to partition %d, not %d", c.Alias, p, c.Partition)
		}
	}
	return ""
}

func (m *Machine) createAlias(tx raftstore.Txn, c Create) Result {
	key := LinkKey(c.Partition, c.Alias)
	if exists(tx, key) {
		return Result{Status: ResultAliasTaken}
	}
	rec := c.record(c.Alias)
	rec.Alias = true
	must("store alias", tx.Set(key, AppendRecord(nil, rec)))
	indexLink(tx, c.Partition, rec, nil)
	if _, ok := m.codec.PartitionOfCode(c.Alias); ok {
		// The partition's allocator could produce this code: from now on
		// it must look before it hands out a code.
		nextKey := NextKey(c.Partition)
		st, err := readAlloc(tx, nextKey)
		must("read allocator", err)
		if !st.aliases {
			st.aliases = true
			must("store allocator", tx.Set(nextKey, appendAlloc(nil, st)))
		}
	}
	return Result{Status: ResultCreated, Record: rec}
}

func (m *Machine) createGenerated(tx raftstore.Txn, c Create) Result {
	// One buffer holds the reuse key and the allocator key for the whole
	// create and, after them, each key and value it writes in turn
	// (Txn.Set copies them): one allocation instead of one per key.
	buf := make([]byte, 0, reuseKeyLen+5+createScratch+len(c.URL)+len(c.Owner)+len(c.Title)+tagsLen(c.Tags))
	buf = appendReuseKey(buf, c.Partition, c.Owner, c.URL)
	rk := len(buf)
	buf = appendNextKey(buf, c.Partition)
	nk := len(buf)
	reuseKey, nextKey, scratch := buf[:rk:rk], buf[rk:nk:nk], buf[nk:nk]
	indexed := false
	if c.hasLimits() {
		// A link that expires or runs out is never handed to a reuse
		// create, nor indexed for one.
		indexed, c.Reuse = true, false
	} else if code, err := tx.Get(reuseKey); err == nil {
		indexed = true
		if c.Reuse {
			v, err := tx.Get(appendLinkKey(nil, c.Partition, code))
			switch {
			case err == nil:
				rec, derr := DecodeRecord(v)
				must("decode reused record", derr)
				return Result{Status: ResultExisting, Record: rec}
			case errors.Is(err, raftstore.ErrNotFound):
				// The indexed link is gone: create a new one and
				// index it instead.
				indexed = false
			default:
				must("read reused record", err)
			}
		}
	} else if !errors.Is(err, raftstore.ErrNotFound) {
		must("read reuse index", err)
	}

	st, err := readAlloc(tx, nextKey)
	must("read allocator", err)

	lo, hi := m.codec.Range(c.Partition)
	start := st.offset
	var codeBuf [shortcode.MaxLength]byte
	for {
		if st.offset >= hi-lo {
			if st.offset != start {
				// Remember the alias-held IDs skipped on the way.
				must("store allocator", tx.Set(nextKey, appendAlloc(scratch[:0], st)))
			}
			return Result{Status: ResultExhausted}
		}
		code := m.codec.AppendEncode(codeBuf[:0], lo+st.offset)
		st.offset++
		key := appendLinkKey(scratch[:0], c.Partition, code)
		if st.aliases && exists(tx, key) {
			continue // a custom alias of generated shape holds this code
		}
		rec := c.record(string(code))
		// The record after its key, in the same buffer.
		must("store link", tx.Set(key, AppendRecord(key[len(key):], rec)))
		scratch = indexLink(tx, c.Partition, rec, scratch)
		must("store allocator", tx.Set(nextKey, appendAlloc(scratch[:0], st)))
		if !indexed {
			must("store reuse index", tx.Set(reuseKey, code))
		}
		return Result{Status: ResultCreated, Record: rec}
	}
}

// createScratch is the room createGenerated's buffer leaves, beyond the
// variable fields of the record, for a link key and the record's fixed
// fields (at most 7 bytes and 6 varints) after it. The index entries
// reuse the same room afterwards: an entry (at most 24 bytes and the
// owner) is shorter than a key and its record.
const createScratch = 5 + shortcode.MaxLength + 64

// tagsLen is the encoded size of tags in a record.
func tagsLen(tags []string) int {
	n := 0
	for _, t := range tags {
		n += 1 + len(t)
	}
	return n
}

// record returns the record c stores under code.
func (c Create) record(code string) Record {
	rec := Record{
		Code: code, URL: c.URL, CreatedAtMs: c.CreatedAtMs, ExpiresAtMs: c.ExpiresAtMs, MaxClicks: c.MaxClicks,
		Owner: c.Owner, Title: c.Title, RedirectStatus: c.RedirectStatus,
	}
	if len(c.Tags) > 0 {
		rec.Tags = slices.Clone(c.Tags)
	}
	return rec
}

// allocState is a partition's allocator, stored at NextKey:
//
//	offset u64 | flags u8 (bit 0: aliases)
//
// offset is the number of IDs of the partition's range handed out or
// skipped. aliases is set once an alias of generated shape (one this
// allocator could produce) was stored in the partition: only then must a
// generated create check that its code is free, which spares a Pebble
// lookup per create in the common case. An 8-byte value (the offset alone)
// is read with aliases set, the safe assumption.
type allocState struct {
	offset  uint64
	aliases bool
}

const allocFlagAliases = 0x01

// readAlloc reads the allocator at key; a missing key is a fresh
// partition.
func readAlloc(r raftstore.Reader, key []byte) (allocState, error) {
	v, err := r.Get(key)
	if errors.Is(err, raftstore.ErrNotFound) {
		return allocState{}, nil
	}
	if err != nil {
		return allocState{}, err
	}
	return decodeAlloc(v)
}

func decodeAlloc(v []byte) (allocState, error) {
	switch {
	case len(v) == 8:
		return allocState{offset: binary.BigEndian.Uint64(v), aliases: true}, nil
	case len(v) == 9 && v[8]&^allocFlagAliases == 0:
		return allocState{offset: binary.BigEndian.Uint64(v), aliases: v[8]&allocFlagAliases != 0}, nil
	default:
		return allocState{}, fmt.Errorf("%w: allocator value %x", ErrMalformed, v)
	}
}

func appendAlloc(dst []byte, st allocState) []byte {
	dst = binary.BigEndian.AppendUint64(dst, st.offset)
	var flags byte
	if st.aliases {
		flags |= allocFlagAliases
	}
	return append(dst, flags)
}

// exists reports whether key is stored.
func exists(tx raftstore.Reader, key []byte) bool {
	_, err := tx.Get(key)
	if err == nil {
		return true
	}
	if !errors.Is(err, raftstore.ErrNotFound) {
		must("read", err)
	}
	return false
}
