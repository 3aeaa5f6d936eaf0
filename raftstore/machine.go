package raftstore

import (
	"errors"
	"fmt"
)

// StateMachine is the application logic of one Raft group. The group's FSM
// calls Apply for every committed command, in log order, on every replica.
//
// Apply must be deterministic: it may read and write only through tx, and must
// not look at clocks, random numbers or anything else that differs between
// replicas. The returned bytes are handed to the proposer (on the leader that
// proposed the command) as the result of Group.Propose; they are not stored.
// Apply must not retain tx after it returns.
type StateMachine interface {
	Apply(tx Txn, index uint64, cmd []byte) []byte
}

// StateMachineFunc adapts a function to the StateMachine interface.
type StateMachineFunc func(tx Txn, index uint64, cmd []byte) []byte

// Apply calls f.
func (f StateMachineFunc) Apply(tx Txn, index uint64, cmd []byte) []byte { return f(tx, index, cmd) }

// Reader reads a group's application keys. Keys are relative to the group:
// the store adds and strips the group's prefix, so a state machine never sees
// another group's data.
type Reader interface {
	// Get returns a copy of the value stored at key, or ErrNotFound.
	Get(key []byte) ([]byte, error)
	// Scan calls fn for every key in [lower, upper) in ascending order
	// (upper nil means to the end of the group's range). Key and value are
	// only valid during the call. Scan stops early, returning nil, when fn
	// returns false.
	Scan(lower, upper []byte, fn func(key, value []byte) bool) error
}

// Txn is a Reader that can also write. Within Apply it reads its own writes
// and every write of earlier commands in the same batch; the whole batch
// commits atomically together with the applied index.
type Txn interface {
	Reader
	// Set writes key = value, and Delete deletes key. Neither keeps key
	// or value after it returns: the caller may reuse them.
	Set(key, value []byte) error
	Delete(key []byte) error
	// DeleteRange deletes every key in [lower, upper) (upper nil means to
	// the end of the group's range).
	DeleteRange(lower, upper []byte) error
}

// ReadMode says how fresh a read must be.
type ReadMode int

const (
	// ReadLinearizable reads only on the leader, after the leader has
	// confirmed (raft VerifyLeader) that it still leads and has applied every
	// entry committed before the read began (a Barrier after each election).
	// A linearizable read sees every write acknowledged before it started.
	ReadLinearizable ReadMode = iota
	// ReadLocal reads the replica's applied state as it is, on any replica.
	// It may be stale by the replication lag.
	ReadLocal
)

// Sentinel errors of the package. Check them with errors.Is.
var (
	// ErrNotFound is returned by Reader.Get for a missing key.
	ErrNotFound = errors.New("raftstore: key not found")
	// ErrNotLeader is matched (errors.Is) by every *NotLeaderError.
	ErrNotLeader = errors.New("raftstore: not the leader")
	// ErrClosed is returned by operations on a closed store or group.
	ErrClosed = errors.New("raftstore: closed")
	// ErrUnknownGroup is returned for a group ID the store does not host.
	ErrUnknownGroup = errors.New("raftstore: unknown group")
)

// NotLeaderError says that this replica cannot serve the request because it
// is not the group's leader. LeaderID and LeaderAddr name the leader this
// replica knows of; both are empty when it knows none (an election is under
// way or the replica is cut off).
type NotLeaderError struct {
	Group      uint64
	LeaderID   string
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return fmt.Sprintf("raftstore: group %d: not the leader (leader unknown)", e.Group)
	}
	return fmt.Sprintf("raftstore: group %d: not the leader (leader is %s at %s)", e.Group, e.LeaderID, e.LeaderAddr)
}

// Is makes errors.Is(err, ErrNotLeader) true for a *NotLeaderError.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }
