package raftstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// pointKeys holds the buffers ReadValue builds full keys in.
var pointKeys = sync.Pool{New: func() any { b := make([]byte, 0, 64); return &b }}

// ReadValue calls fn with the value stored at key in the group's
// application state, read as mode requires (see Read), or returns
// ErrNotFound. It is the point read of the hot paths: one Pebble Get on the
// DB itself, without a snapshot (a single key is consistent by itself) and
// without copying the value or allocating. value is valid only during the
// call; fn must not retain it. fn runs with the store's read lock held, so
// it must not block.
func (g *Group) ReadValue(ctx context.Context, mode ReadMode, key []byte, fn func(value []byte)) error {
	return g.ReadValueAt(ctx, mode, key, nil, fn)
}

// ReadValueAt is ReadValue that also stores in *applied (unless applied is
// nil) the group's applied index read before the value, after the read
// gate: the value reflects at least every entry up to it.
func (g *Group) ReadValueAt(ctx context.Context, mode ReadMode, key []byte, applied *uint64, fn func(value []byte)) error {
	if err := g.readGate(ctx, mode); err != nil {
		return err
	}
	if applied != nil {
		*applied = g.fsm.applied.Load()
	}
	// Pebble keeps the key it is given beyond the stack frame, so the full
	// key is built in a pooled buffer.
	kb := pointKeys.Get().(*[]byte)
	defer pointKeys.Put(kb)
	full := append((*kb)[:0], keyspaceGroups)
	full = binary.BigEndian.AppendUint64(full, g.id)
	full = append(full, kindData)
	full = append(full, key...)
	*kb = full

	s := g.store
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	if s.dbClosed || g.closed.Load() {
		return ErrClosed
	}
	v, closer, err := s.db.Get(full)
	if errors.Is(err, pebble.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("raftstore: group %d: get %q: %w", g.id, string(key), err)
	}
	fn(v)
	if err := closer.Close(); err != nil {
		return fmt.Errorf("raftstore: group %d: get %q: %w", g.id, string(key), err)
	}
	return nil
}
