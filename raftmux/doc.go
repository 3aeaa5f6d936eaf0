// Package raftmux carries the Raft traffic of every group hosted by a node
// over one TCP listener.
//
// A storage node hosts replicas of many Raft groups (shards). Instead of one
// port per group, the node listens once ([Listen]) and hands each group its
// own [raft.StreamLayer] ([Mux.StreamLayer]). Each StreamLayer is the
// transport of one raft.NetworkTransport.
//
// # Wire format
//
// Every connection starts with a small header written by the dialer, before
// any Raft bytes:
//
//	+---------+----------------------------+
//	| 0xB1    | group ID, uvarint (1..10 B) |
//	+---------+----------------------------+
//
// The first byte is the magic/version byte ([HeaderVersion]). The group ID is
// a minimal unsigned varint (encoding/binary) and is never 0. After the header
// the connection belongs to that group's raft.NetworkTransport unchanged.
//
// # Lifecycle
//
// The accept loop only accepts: each new connection gets its own goroutine
// that reads the header under a deadline ([WithHeaderTimeout]), so a client
// that connects and stays silent cannot hold the loop. The connection is then
// handed to the group's Accept. A connection for a group that is not
// registered (never was, or not yet: a node still opening its groups) is
// closed and counted in [Stats]; the dialing Raft retries.
//
// A group's StreamLayer.Close (called by raft.NetworkTransport.Close)
// unregisters that group only and closes every connection the layer dialed or
// accepted, so the inbound connection handlers of the transport end with it.
// [Mux.Close] stops the accept loop, closes every pending and established
// connection, and waits for every goroutine the Mux started.
package raftmux
