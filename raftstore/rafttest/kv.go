package rafttest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/linkraft/linkraft/raftstore"
)

// Op is the operation of a KV command.
type Op byte

// The KV operations.
const (
	// OpPut sets a key to a value.
	OpPut Op = 1
	// OpAdd adds a signed delta to a counter (an 8-byte big-endian int64
	// value; a missing key counts as 0) and returns the new value.
	OpAdd Op = 2
	// OpDelete deletes a key.
	OpDelete Op = 3
)

// Reserved key prefixes of the KV machine. Application keys must not start
// with 0xFF.
var (
	// OpPrefix holds one marker per applied operation ID: OpPrefix | id ->
	// the log index that applied it.
	OpPrefix = []byte("\xffop/")
	// DupPrefix holds one record per operation ID that reached Apply a
	// second time: DupPrefix | id -> the log index of the second
	// application. A correct system with idempotent retries never writes it.
	DupPrefix = []byte("\xffdup/")
)

// ErrBadCommand is the error of DecodeCommand for malformed bytes.
var ErrBadCommand = errors.New("rafttest: bad KV command")

// Command is a decoded KV command.
//
// Encoding:
//
//	op u8 | len(id) uvarint | id | len(key) uvarint | key | value (the rest)
//
// For OpAdd the value is the delta as 8 bytes big-endian; for OpDelete it
// is empty.
type Command struct {
	Op    Op
	ID    []byte // operation ID; empty: not tracked for double application
	Key   []byte
	Value []byte
}

// Encode returns the command's bytes.
func (c Command) Encode() []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(c.ID)+len(c.Key)+len(c.Value))
	b = append(b, byte(c.Op))
	b = binary.AppendUvarint(b, uint64(len(c.ID)))
	b = append(b, c.ID...)
	b = binary.AppendUvarint(b, uint64(len(c.Key)))
	b = append(b, c.Key...)
	return append(b, c.Value...)
}

// Put returns the encoded command setting key to value, tracked as id.
func Put(id, key, value []byte) []byte {
	return Command{Op: OpPut, ID: id, Key: key, Value: value}.Encode()
}

// Add returns the encoded command adding delta to the counter at key,
// tracked as id.
func Add(id, key []byte, delta int64) []byte {
	return Command{Op: OpAdd, ID: id, Key: key, Value: binary.BigEndian.AppendUint64(nil, uint64(delta))}.Encode()
}

// Delete returns the encoded command deleting key, tracked as id.
func Delete(id, key []byte) []byte {
	return Command{Op: OpDelete, ID: id, Key: key}.Encode()
}

// DecodeCommand parses a KV command. The returned slices alias b.
func DecodeCommand(b []byte) (Command, error) {
	if len(b) == 0 {
		return Command{}, fmt.Errorf("%w: empty", ErrBadCommand)
	}
	c := Command{Op: Op(b[0])}
	switch c.Op {
	case OpPut, OpAdd, OpDelete:
	default:
		return Command{}, fmt.Errorf("%w: unknown op %d", ErrBadCommand, b[0])
	}
	rest := b[1:]
	field := func(name string) ([]byte, error) {
		n, k := binary.Uvarint(rest)
		if k <= 0 {
			return nil, fmt.Errorf("%w: bad %s length", ErrBadCommand, name)
		}
		rest = rest[k:]
		if n > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: %s length %d exceeds the command", ErrBadCommand, name, n)
		}
		f := rest[:n:n]
		rest = rest[n:]
		return f, nil
	}
	var err error
	if c.ID, err = field("id"); err != nil {
		return Command{}, err
	}
	if c.Key, err = field("key"); err != nil {
		return Command{}, err
	}
	if len(c.Key) == 0 {
		return Command{}, fmt.Errorf("%w: empty key", ErrBadCommand)
	}
	if c.Key[0] == 0xFF {
		return Command{}, fmt.Errorf("%w: key %q is in the reserved 0xFF range", ErrBadCommand, c.Key)
	}
	c.Value = rest
	switch {
	case c.Op == OpAdd && len(c.Value) != 8:
		return Command{}, fmt.Errorf("%w: add delta of %d bytes, want 8", ErrBadCommand, len(c.Value))
	case c.Op == OpDelete && len(c.Value) != 0:
		return Command{}, fmt.Errorf("%w: delete with a value", ErrBadCommand)
	}
	return c, nil
}

// Result is the decoded result of a KV command.
//
// Encoding: status u8 | index u64 | counter i64 (OpAdd only) | message
// (StatusError only).
type Result struct {
	Status Status
	// Index is the log index that applied the command.
	Index uint64
	// Counter is the counter's new value (OpAdd).
	Counter int64
	// Message explains StatusError.
	Message string
}

// Status says how a KV command was applied.
type Status byte

// The statuses of a Result.
const (
	// StatusOK: the command was applied.
	StatusOK Status = 1
	// StatusDuplicate: a command with the same operation ID had already
	// been applied; this one was not, and was recorded under DupPrefix.
	StatusDuplicate Status = 2
	// StatusError: the command was malformed or the store failed.
	StatusError Status = 3
)

// DecodeResult parses the result a KV command returned from Propose.
func DecodeResult(b []byte) (Result, error) {
	if len(b) < 9 {
		return Result{}, fmt.Errorf("rafttest: KV result of %d bytes, want at least 9", len(b))
	}
	r := Result{Status: Status(b[0]), Index: binary.BigEndian.Uint64(b[1:9])}
	rest := b[9:]
	switch r.Status {
	case StatusOK:
		if len(rest) == 8 {
			r.Counter = int64(binary.BigEndian.Uint64(rest))
		} else if len(rest) != 0 {
			return Result{}, fmt.Errorf("rafttest: KV result with %d trailing bytes", len(rest))
		}
	case StatusDuplicate:
		if len(rest) != 0 {
			return Result{}, fmt.Errorf("rafttest: duplicate KV result with %d trailing bytes", len(rest))
		}
	case StatusError:
		r.Message = string(rest)
	default:
		return Result{}, fmt.Errorf("rafttest: unknown KV result status %d", b[0])
	}
	return r, nil
}

func encodeResult(s Status, index uint64, extra []byte) []byte {
	b := make([]byte, 0, 9+len(extra))
	b = append(b, byte(s))
	b = binary.BigEndian.AppendUint64(b, index)
	return append(b, extra...)
}

// KV is a deterministic key/value and counter state machine for tests. It
// keeps no state outside the transaction, so one KV may serve any number of
// replicas.
//
// Every command with an operation ID leaves a marker (OpPrefix | id); a
// second command with the same ID is not applied but recorded under
// DupPrefix, so a test can prove that no operation was applied twice, even
// if the store's idempotency keys failed.
type KV struct{}

var _ raftstore.StateMachine = KV{}

// Apply applies one encoded Command.
func (KV) Apply(tx raftstore.Txn, index uint64, cmd []byte) []byte {
	c, err := DecodeCommand(cmd)
	if err != nil {
		return encodeResult(StatusError, index, []byte(err.Error()))
	}
	idx := binary.BigEndian.AppendUint64(nil, index)
	if len(c.ID) > 0 {
		marker := append(bytes.Clone(OpPrefix), c.ID...)
		_, err := tx.Get(marker)
		switch {
		case err == nil:
			if err := tx.Set(append(bytes.Clone(DupPrefix), c.ID...), idx); err != nil {
				return encodeResult(StatusError, index, []byte(err.Error()))
			}
			return encodeResult(StatusDuplicate, index, nil)
		case !errors.Is(err, raftstore.ErrNotFound):
			return encodeResult(StatusError, index, []byte(err.Error()))
		}
		if err := tx.Set(marker, idx); err != nil {
			return encodeResult(StatusError, index, []byte(err.Error()))
		}
	}
	switch c.Op {
	case OpPut:
		if err := tx.Set(c.Key, c.Value); err != nil {
			return encodeResult(StatusError, index, []byte(err.Error()))
		}
		return encodeResult(StatusOK, index, nil)
	case OpAdd:
		var cur int64
		v, err := tx.Get(c.Key)
		switch {
		case err == nil && len(v) == 8:
			cur = int64(binary.BigEndian.Uint64(v))
		case err == nil:
			return encodeResult(StatusError, index, fmt.Appendf(nil, "counter %q holds %d bytes", c.Key, len(v)))
		case !errors.Is(err, raftstore.ErrNotFound):
			return encodeResult(StatusError, index, []byte(err.Error()))
		}
		cur += int64(binary.BigEndian.Uint64(c.Value))
		nv := binary.BigEndian.AppendUint64(nil, uint64(cur))
		if err := tx.Set(c.Key, nv); err != nil {
			return encodeResult(StatusError, index, []byte(err.Error()))
		}
		return encodeResult(StatusOK, index, nv)
	default: // OpDelete; DecodeCommand admits nothing else
		if err := tx.Delete(c.Key); err != nil {
			return encodeResult(StatusError, index, []byte(err.Error()))
		}
		return encodeResult(StatusOK, index, nil)
	}
}

// Duplicates returns the operation IDs that reached a KV's Apply more than
// once, as recorded in r.
func Duplicates(r raftstore.Reader) ([]string, error) {
	var ids []string
	upper := append(bytes.Clone(DupPrefix[:len(DupPrefix)-1]), DupPrefix[len(DupPrefix)-1]+1)
	err := r.Scan(DupPrefix, upper, func(k, _ []byte) bool {
		ids = append(ids, string(k[len(DupPrefix):]))
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("rafttest: scan duplicates: %w", err)
	}
	return ids, nil
}
