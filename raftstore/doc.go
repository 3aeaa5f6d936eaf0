// Package raftstore runs a node's replicas of many Raft groups
// (hashicorp/raft) with all their state in one Pebble DB.
//
// A [Store] owns the node's DB; [Store.OpenGroup] starts one replica
// ([Group]) with its raft log, stable store and state machine in that DB.
// Every group of a node shares Pebble's WAL, so one fsync commits the log
// appends of many groups at once.
//
// # Key layout
//
// All integers are big-endian, so keys sort by group, then kind, then index:
//
//	0x01 | group u64 | 0x01 | index u64            raft log entry
//	0x01 | group u64 | 0x02 | key                  raft stable store
//	0x01 | group u64 | 0x03 | 'a'                  FSM applied index (u64)
//	0x01 | group u64 | 0x03 | 'i' | idemKey        idempotency: first result
//	0x01 | group u64 | 0x03 | 'x' | index u64 | idemKey
//	                                               idempotency: expiry record
//	0x01 | group u64 | 0x04 | key                  application data
//
// Every iterator is bounded to one group's range (Pebble LowerBound and
// UpperBound), so no group ever reads another's keys. A [StateMachine] sees
// only its keys under 0x04, with the prefix stripped.
//
// A log entry's value is
//
//	0x01 | index uvarint | term uvarint | type u8 | appended_at varint (Unix ns, 0 = unset) |
//	len uvarint | data | len uvarint | extensions
//
// [LogStore.StoreLogs] writes a batch of entries as one synced Pebble batch;
// [LogStore.DeleteRange] truncates the head (after a snapshot) or the tail
// (a conflicting suffix) with one synced range deletion. The store then
// compacts a truncated head's range in the background (logcompact.go), so
// the deleted entries leave the disk even while the node is idle.
//
// # Commands and idempotency
//
// [Group.Propose] wraps a command in an envelope before handing it to raft:
//
//	0x01 (version) | len(idemKey) uvarint | idemKey | command
//
// With a non-empty idempotency key the FSM first looks the key up: if a
// command with that key was applied before, its stored result is returned
// and the [StateMachine] is not called; otherwise the command is applied and
// its result stored under the key, with an expiry record naming the index.
// The table is bounded: each apply batch deletes the keys of commands applied
// more than [IdempotencyWindow] indexes before the batch's last index. This
// runs inside apply, so every replica keeps exactly the same table, and the
// table travels in snapshots.
//
// # Applying: the applied index and the skip rule
//
// The FSM implements raft.BatchingFSM. Each ApplyBatch call becomes one
// Pebble indexed batch holding every write of every command of the batch
// (later commands read earlier ones' writes) and the new applied index.
// The batch commits atomically, so the stored applied index always names
// exactly the entries the stored state contains.
//
// Entries at or below the stored applied index are skipped. This is what
// makes the FSM persistent: raft runs with NoSnapshotRestoreOnStart, so on
// restart it does not reload the latest snapshot into the FSM (the state is
// already in Pebble) and replays the log from that snapshot's index; the
// replayed entries the state already contains are skipped rather than applied
// twice. Configuration entries only advance the applied index.
//
// # Durability
//
// Raft log appends commit with Sync. The FSM's batches commit with NoSync:
// the entries they apply are already durable in the raft log, and since the
// log and the state share one WAL, any later synced write (the next log
// append of any group) makes them durable too. After a crash the state may
// lag its log; replay catches it up, and the skip rule keeps it exact.
//
// That argument holds only while the log still holds the entries. Raft
// truncates the log after a snapshot, so before a snapshot is persisted
// (FSMSnapshot.Persist) the WAL is synced: the state that the snapshot
// stands for, and every state before it, is then durable in Pebble before
// raft may drop the entries behind it.
//
// # Storage errors
//
// A failed WAL write or sync leaves the DB's durable state unknown. Pebble
// treats it as fatal and so does the store: [Options.Fatal] runs (by default
// the process exits), and a restart recovers from what was synced. The FSM
// likewise panics if it cannot commit an apply batch, since raft has no way
// to retry an apply and a replica that skipped one would diverge. Some
// failures end the process inside Pebble without printing the error (a
// failed close of the old WAL during a rotation), so the store logs every
// failed disk write itself, with its path and error, before Pebble sees it
// (rate-limited).
//
// # Snapshots
//
// FSM.Snapshot returns at once with a Pebble snapshot of the group's
// [0x03, 0x05) range (a consistent, point-in-time view; the FSM keeps
// applying). It is an eventually-file-only snapshot: unlike a plain Pebble
// snapshot it stays point-in-time across an excise, and a follower may
// Restore (excise) the range while raft still persists an earlier snapshot.
// Persist streams the range, metadata and data, from it:
//
//	"LRSNAP" 0x00 0x01 | group u64 | applied index u64 |
//	{ len(key) uvarint | key | len(value) uvarint | value }* |
//	0x00 | record count u64 | crc32c u32
//
// Keys are relative to the group (they start with the kind byte). The
// CRC-32C covers every byte before it. That is format 1. Format 2 is
// "LRSNAP" 0x00 0x02, then one zstd stream whose content is a format 1
// stream (about a third of its size for links). Persist writes format 3,
// format 2 under the magic "LRSNAP" 0x00 0x03: the state may hold
// linkstore's request table of epochs, which builds reading only formats
// 1 and 2 do not read (they would apply a retried create again), so those
// builds refuse it, and a lagging replica of such a build waits for its
// upgrade instead of diverging. Restore reads all three, so snapshots
// written by earlier builds still install. Only one record is in memory
// at a time. Release closes the Pebble snapshot. Raft keeps the files in
// Dir/snapshots/<group>/snapshots (raft.FileSnapshotStore), by default only
// the newest (Options.SnapshotRetain).
//
// # Memo
//
// A [Memo] is the one piece of memory a StateMachine keeps between Apply
// calls of a replica ([MemoOf] on Apply's Txn): a cache of values it reads
// from the group's state, which the FSM empties on Restore and which starts
// empty after a restart, so it never holds anything the store does not.
//
// Restore (a snapshot sent by the leader to a lagging follower) reads and
// verifies the whole stream while writing it to an sstable on the DB's file
// system, and changes nothing until the checksum matched. It then replaces
// the group's range atomically with Pebble's IngestAndExcise: the old keys
// go and the new ones arrive in one durable version edit, so a crash leaves
// the old state or the new one, never a mix.
//
// Raft persists an installed snapshot before handing it to Restore. If the
// node crashes between the two, the snapshot store holds a snapshot newer
// than the FSM state; [Store.OpenGroup] detects that (stored applied index
// below the newest snapshot's index) and restores that snapshot before
// starting raft, which would otherwise resume from the snapshot's index.
//
// # Reads
//
// [Group.Read] with [ReadLocal] reads the replica's state as it is.
// [ReadLinearizable] runs only on the leader: after each election the leader
// waits once for a raft Barrier (so it has applied every entry committed by
// earlier leaders), and each read confirms leadership with a quorum
// (VerifyLeader) before reading. Both read from one Pebble snapshot.
//
// # Lifecycle
//
// [Open] opens Pebble in Dir/pebble. [Store.OpenGroup] bootstraps a group
// with its peers only if it has no raft state yet, so it is the same call on
// first start and on restart.
//
// # Rejoining
//
// Raft's safety assumes a voter never forgets its log or its vote, but a
// node's disk can be lost. Bootstrapping again would make the emptied
// replica a voter with an empty log, and hashicorp/raft grants votes even
// with an empty configuration, counting an empty log as up to date with
// any. So whether to bootstrap is decided outside, from what the other
// replicas hold: [Store.Probe] reads what this node holds of a group (log,
// current term, applied index, snapshots) without opening it, and
// [GroupProbe.Ran] tells a group that ran from one that never went past
// its bootstrap entry. A replica that must rejoin is opened with
// [GroupConfig.Join]: raft starts with no configuration, never campaigns,
// and waits for the leader, which has already made it a non-voter
// ([Group.DemoteVoter] or [Group.AddNonvoter]), to send it a snapshot and
// the log; the leader makes it a voter again with [Group.AddVoter] once it
// caught up. Package node runs that protocol (its documentation, "Joining
// a group"). Each group's transport is a
// raft.NetworkTransport over the stream layer [Network] gives it (raftmux:
// one TCP listener for every group of the node). [Store.Close] shuts down
// every group (raft waits for its goroutines, then closes its transport)
// before closing Pebble. Calls that await a raft future (Propose, a
// linearizable Read, TransferLeadership) do so through a goroutine the group
// owns, so that they can return when their context ends; shutdown waits for
// those goroutines too.
package raftstore
