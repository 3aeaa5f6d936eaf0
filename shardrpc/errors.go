package shardrpc

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors of the client, one per failure category. Every error the
// Client returns wraps exactly one of them; check with errors.Is. An error
// that a node answered is also a *RemoteError (errors.As) carrying the
// node's ErrorBody.
var (
	// ErrBadRequest: the node refused the request as malformed
	// (ErrCodeBadRequest). Not retried.
	ErrBadRequest = errors.New("shardrpc: bad request")
	// ErrUnauthorized: the node refused the RPC secret (ErrCodeUnauthorized).
	// Not retried: the cluster's processes disagree on the secret.
	ErrUnauthorized = errors.New("shardrpc: unauthorized")
	// ErrNotFound: the shard's leader confirmed with a linearizable read
	// that the code does not exist (ErrCodeNotFound).
	ErrNotFound = errors.New("shardrpc: not found")
	// ErrMaybeStale: a replica's local read did not find the code; only the
	// leader can tell (ErrCodeMaybeStale). Resolve handles it by asking the
	// leader; callers of Resolve never see it.
	ErrMaybeStale = errors.New("shardrpc: not found locally, ask the leader")
	// ErrAliasTaken: the alias is held by another link (ErrCodeAliasTaken).
	ErrAliasTaken = errors.New("shardrpc: alias taken")
	// ErrNotLeader: the replica that answered is not the leader
	// (ErrCodeNotLeader). The client follows the hint and retries; callers
	// see it only wrapped in ErrUnavailable when the deadline ran out.
	ErrNotLeader = errors.New("shardrpc: not the leader")
	// ErrWrongShard: the partition is not the shard's (ErrCodeWrongShard):
	// the router and the node disagree on the ring. Not retried.
	ErrWrongShard = errors.New("shardrpc: partition belongs to another shard")
	// ErrUnknownShard: the shard is not in the cluster configuration, or a
	// node hosts no replica of it (ErrCodeUnknownShard).
	ErrUnknownShard = errors.New("shardrpc: unknown shard")
	// ErrPartitionFull: the partition's ID range is used up
	// (ErrCodeExhausted).
	ErrPartitionFull = errors.New("shardrpc: partition full")
	// ErrUnavailable: no replica could serve the call before the deadline:
	// no quorum, no leader, nodes down or timing out (ErrCodeUnavailable, or
	// transport errors). The error also wraps the last underlying failure.
	ErrUnavailable = errors.New("shardrpc: shard unavailable")
	// ErrProtocol: a node answered something that does not follow the wire
	// contract (an undecodable body, an unknown status).
	ErrProtocol = errors.New("shardrpc: protocol error")
)

// codeErrors maps each wire code to its sentinel.
var codeErrors = map[Code]error{
	ErrCodeBadRequest:   ErrBadRequest,
	ErrCodeUnauthorized: ErrUnauthorized,
	ErrCodeNotFound:     ErrNotFound,
	ErrCodeMaybeStale:   ErrMaybeStale,
	ErrCodeAliasTaken:   ErrAliasTaken,
	ErrCodeNotLeader:    ErrNotLeader,
	ErrCodeWrongShard:   ErrWrongShard,
	ErrCodeUnknownShard: ErrUnknownShard,
	ErrCodeExhausted:    ErrPartitionFull,
	ErrCodeUnavailable:  ErrUnavailable,
	ErrCodeGone:         ErrGone,
}

// codeStatus maps each wire code to its HTTP status.
var codeStatus = map[Code]int{
	ErrCodeBadRequest:   http.StatusBadRequest,
	ErrCodeUnauthorized: http.StatusUnauthorized,
	ErrCodeNotFound:     http.StatusNotFound,
	ErrCodeMaybeStale:   http.StatusNotFound,
	ErrCodeAliasTaken:   http.StatusConflict,
	ErrCodeNotLeader:    http.StatusMisdirectedRequest,
	ErrCodeWrongShard:   http.StatusMisdirectedRequest,
	ErrCodeUnknownShard: http.StatusNotFound,
	ErrCodeExhausted:    http.StatusInsufficientStorage,
	ErrCodeUnavailable:  http.StatusServiceUnavailable,
	ErrCodeGone:         http.StatusGone,
}

// Err returns the sentinel error of the code, or ErrProtocol for a code
// that is not part of the contract.
func (c Code) Err() error {
	if err, ok := codeErrors[c]; ok {
		return err
	}
	return ErrProtocol
}

// HTTPStatus returns the HTTP status a node answers with the code (500 for
// a code that is not part of the contract).
func (c Code) HTTPStatus() int {
	if s, ok := codeStatus[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// codeOfStatus guesses the code of an answer whose body is not an
// ErrorBody, from its HTTP status alone.
func codeOfStatus(status int) Code {
	switch status {
	case http.StatusBadRequest:
		return ErrCodeBadRequest
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrCodeUnauthorized
	case http.StatusMisdirectedRequest:
		return ErrCodeNotLeader
	case http.StatusConflict:
		return ErrCodeAliasTaken
	case http.StatusGone:
		return ErrCodeGone
	case http.StatusInsufficientStorage:
		return ErrCodeExhausted
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout,
		http.StatusTooManyRequests:
		return ErrCodeUnavailable
	}
	return ""
}

// RemoteError is a failure answered by a node: the node's ErrorBody and the
// HTTP status it came with. It unwraps to the sentinel of its code.
type RemoteError struct {
	// Node is the ID of the node that answered.
	Node string
	// Status is the HTTP status of the answer.
	Status int
	// Body is the decoded error body.
	Body ErrorBody
}

// Error implements error.
func (e *RemoteError) Error() string {
	msg := e.Body.Message
	if msg == "" {
		msg = string(e.Body.Code)
	}
	return fmt.Sprintf("node %s: %d %s: %s", e.Node, e.Status, e.Body.Code, msg)
}

// Unwrap returns the sentinel of the error's code.
func (e *RemoteError) Unwrap() error { return e.Body.Code.Err() }
