// Package shardrpc is the internal RPC between routers and storage nodes:
// the messages, the error model and the client that routers use to reach the
// leader of a shard.
//
// Wire format: HTTP/1.1 (fasthttp on both ends) with keep-alive connections.
// Every call but the binary resolve (PathResolveBinary, see resolvewire.go),
// the multi-resolve (PathResolveMany, see resolvemanywire.go) and the change
// feed (PathChanges, see feedwire.go) is `POST /rpc/v1/<op>`
// with a JSON body and the header
// `X-Linkraft-Shard: <shard id>`; when the cluster has an RPC secret the
// header `X-Linkraft-Secret` carries it. A success is 200 with the JSON
// result; a failure is a non-200 status with an ErrorBody (see Code).
package shardrpc

// Operation paths.
const (
	PathCreate  = "/rpc/v1/create"
	PathResolve = "/rpc/v1/resolve"
	PathStatus  = "/rpc/v1/status"
)

// Headers.
const (
	HeaderShard  = "X-Linkraft-Shard"
	HeaderSecret = "X-Linkraft-Secret"
)

// CreateRequest asks the shard to store a new link.
type CreateRequest struct {
	// Partition is the partition the router placed the link in: from the
	// alias when there is one, else from a hash of the normalized URL.
	Partition uint32 `json:"partition"`
	// URL is the validated, normalized target.
	URL string `json:"url"`
	// Alias is the custom code, already validated; empty for a generated code.
	Alias string `json:"alias,omitempty"`
	// Reuse returns an existing link of the same URL in this partition
	// instead of creating a new one.
	Reuse bool `json:"reuse,omitempty"`
	// ExpiresAtMs is the link's expiry in Unix milliseconds (0: never);
	// MaxClicks its click limit (0: none). A create with either never
	// reuses a link.
	ExpiresAtMs int64  `json:"expires_at_ms,omitempty"`
	MaxClicks   uint64 `json:"max_clicks,omitempty"`
	// Owner is the ID of the caller's API key ("" when the cluster has no
	// keys); a reuse create finds only the same owner's links.
	Owner string `json:"owner,omitempty"`
	// Title, Tags and RedirectStatus are the link's fields (limits in
	// package linkstore: MaxTitleLength, MaxTags, ValidTag,
	// ValidRedirectStatus); RedirectStatus 0 is the cluster's default.
	Title          string   `json:"title,omitempty"`
	Tags           []string `json:"tags,omitempty"`
	RedirectStatus int      `json:"redirect_status,omitempty"`
	// RequestID makes a retried create idempotent: the same RequestID is
	// applied at most once per shard. Routers set a fresh random ID per
	// client request and keep it across retries.
	RequestID string `json:"request_id,omitempty"`
}

// ResolveRequest asks for the link of a code.
type ResolveRequest struct {
	Code string `json:"code"`
	// Linearizable asks the leader to confirm before answering: the answer
	// then reflects every create acknowledged before the request. A
	// non-linearizable resolve may be served by any replica, and a replica
	// that does not find the code answers ErrCodeNotFound only for a
	// linearizable read; otherwise ErrCodeMaybeStale.
	Linearizable bool `json:"linearizable,omitempty"`
}

// Link is the stored record of one short link.
type Link struct {
	Code string `json:"code"`
	URL  string `json:"url"`
	// CreatedAtMs is the creation time in Unix milliseconds, chosen by the
	// leader that proposed the create.
	CreatedAtMs int64 `json:"created_at_ms"`
	// Alias is true when the code was chosen by the client.
	Alias bool `json:"alias,omitempty"`
	// ExpiresAtMs is the link's expiry in Unix milliseconds, 0 for never.
	ExpiresAtMs int64 `json:"expires_at_ms,omitempty"`
	// MaxClicks is the link's click limit, 0 for none.
	MaxClicks uint64 `json:"max_clicks,omitempty"`
	// Owner is the ID of the API key that created the link, "" for none.
	Owner string `json:"owner,omitempty"`
	// Title and Tags describe the link; RedirectStatus is its redirect's
	// HTTP status, 0 for the cluster's default.
	Title          string   `json:"title,omitempty"`
	Tags           []string `json:"tags,omitempty"`
	RedirectStatus int      `json:"redirect_status,omitempty"`
	// UpdatedAtMs is when the link was last edited (Unix ms), 0 if never.
	UpdatedAtMs int64 `json:"updated_at_ms,omitempty"`
	// Created is false when a reuse request returned an existing link.
	Created bool `json:"created,omitempty"`
	// AppliedIndex is the answering replica's applied Raft index read
	// before the link: the link reflects at least every entry up to it
	// (binary resolve answers; in a create or binary bulk create answer,
	// the index of the entry that applied the create); 0 when unknown
	// (older nodes, other calls, a retried create answered from the
	// request table). A router checks it against the shard's change feed.
	AppliedIndex uint64 `json:"applied_index,omitempty"`
}

// StatusRequest asks a node about one shard's replica on it.
type StatusRequest struct{}

// Status describes one shard replica.
type Status struct {
	Shard        uint64 `json:"shard"`
	NodeID       string `json:"node_id"`
	State        string `json:"state"` // Leader, Follower, Candidate, Shutdown, or StateDiskStalled
	LeaderID     string `json:"leader_id"`
	LeaderRPC    string `json:"leader_rpc"`
	AppliedIndex uint64 `json:"applied_index"`
	LastIndex    uint64 `json:"last_index"`
	Term         uint64 `json:"term"`
}

// StateDiskStalled is the Status.State of a replica whose node's disk is
// stalled: whatever Raft's state, it serves no leader operation and names
// no leader of its own until the disk answers again.
const StateDiskStalled = "DiskStalled"

// Code is a machine-readable error code carried in ErrorBody.
type Code string

// Error codes. The HTTP status of each is given beside it.
const (
	ErrCodeBadRequest   Code = "bad_request"    // 400
	ErrCodeUnauthorized Code = "unauthorized"   // 401: wrong or missing RPC secret
	ErrCodeNotFound     Code = "not_found"      // 404: confirmed by the leader
	ErrCodeMaybeStale   Code = "maybe_stale"    // 404 from a follower's local read: ask the leader
	ErrCodeAliasTaken   Code = "alias_taken"    // 409
	ErrCodeNotLeader    Code = "not_leader"     // 421, with LeaderID/LeaderRPC when known
	ErrCodeWrongShard   Code = "wrong_shard"    // 421: the partition is not this shard's
	ErrCodeUnknownShard Code = "unknown_shard"  // 404: this node hosts no replica of the shard
	ErrCodeExhausted    Code = "partition_full" // 507: the partition's ID range is used up
	ErrCodeUnavailable  Code = "unavailable"    // 503: no quorum, shutting down, timed out
)

// ErrorBody is the JSON body of every non-200 answer.
type ErrorBody struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// LeaderID and LeaderRPC are set with ErrCodeNotLeader when the
	// answering replica knows the leader.
	LeaderID  string `json:"leader_id,omitempty"`
	LeaderRPC string `json:"leader_rpc,omitempty"`
}
