package linkstore

import (
	"fmt"
	"unicode/utf8"
)

const resultVersion = 0x01

// maxReason bounds the reason of a ResultBadRequest, so results stay small.
const maxReason = 200

// Status is the outcome of a command.
type Status byte

// Statuses.
const (
	// ResultCreated: a new link was stored; Result.Record is it.
	ResultCreated Status = 0x01
	// ResultExisting: a reuse create found the partition's first link of
	// the URL; Result.Record is it and nothing was stored.
	ResultExisting Status = 0x02
	// ResultAliasTaken: a link already holds the alias; nothing was stored.
	ResultAliasTaken Status = 0x03
	// ResultExhausted: the partition has no free generated code left.
	ResultExhausted Status = 0x04
	// ResultBadRequest: the command is invalid (undecodable, unknown type,
	// a partition outside the codec, a bad URL or alias, an alias in the
	// wrong partition); Result.Reason says why. Nothing was stored.
	ResultBadRequest Status = 0x05
	// ResultClicksApplied: a click batch was merged.
	ResultClicksApplied Status = 0x06
	// ResultClicksDuplicate: the click batch's (router, sequence) was
	// applied before (it is at or below the router's flush mark); nothing
	// changed.
	ResultClicksDuplicate Status = 0x07
)

// String returns the status name.
func (s Status) String() string {
	switch s {
	case ResultCreated:
		return "created"
	case ResultExisting:
		return "existing"
	case ResultAliasTaken:
		return "alias_taken"
	case ResultExhausted:
		return "exhausted"
	case ResultBadRequest:
		return "bad_request"
	case ResultClicksApplied:
		return "clicks_applied"
	case ResultClicksDuplicate:
		return "clicks_duplicate"
	case ResultDeleted:
		return "deleted"
	case ResultNotFound:
		return "not_found"
	case ResultGone:
		return "gone"
	case ResultPurged:
		return "purged"
	case ResultEdited:
		return "edited"
	}
	return fmt.Sprintf("status(%#x)", byte(s))
}

// Result is the decoded outcome of a command, as returned by Apply.
type Result struct {
	Status Status
	// Record is set for ResultCreated and ResultExisting.
	Record Record
	// Reason is set for ResultBadRequest.
	Reason string
}

// Equal reports whether r and o are the same result.
func (r Result) Equal(o Result) bool {
	return r.Status == o.Status && r.Reason == o.Reason && r.Record.Equal(o.Record)
}

// AppendResult appends the encoding of r to dst and returns the extended
// slice. A Reason longer than 200 bytes is cut (on a UTF-8 boundary).
func AppendResult(dst []byte, r Result) []byte {
	dst = append(dst, resultVersion, byte(r.Status))
	switch r.Status {
	case ResultCreated, ResultExisting, ResultEdited:
		dst = AppendRecord(dst, r.Record)
	case ResultBadRequest:
		reason := r.Reason
		if len(reason) > maxReason {
			reason = reason[:maxReason]
			for len(reason) > 0 && !utf8.ValidString(reason) {
				reason = reason[:len(reason)-1]
			}
		}
		dst = append(dst, reason...)
	}
	return dst
}

// DecodeResult decodes a result returned by Apply. It never panics; bad
// input gives an error wrapping ErrMalformed or ErrUnknownVersion.
func DecodeResult(b []byte) (Result, error) {
	if len(b) < 2 {
		return Result{}, fmt.Errorf("%w: result of %d bytes", ErrMalformed, len(b))
	}
	if b[0] != resultVersion {
		return Result{}, fmt.Errorf("%w: result version %#x", ErrUnknownVersion, b[0])
	}
	r := Result{Status: Status(b[1])}
	payload := b[2:]
	switch r.Status {
	case ResultCreated, ResultExisting, ResultEdited:
		rec, err := DecodeRecord(payload)
		if err != nil {
			return Result{}, fmt.Errorf("result record: %w", err)
		}
		r.Record = rec
	case ResultBadRequest:
		if len(payload) > maxReason {
			return Result{}, fmt.Errorf("%w: result reason of %d bytes", ErrMalformed, len(payload))
		}
		r.Reason = string(payload)
	case ResultAliasTaken, ResultExhausted, ResultClicksApplied, ResultClicksDuplicate,
		ResultDeleted, ResultNotFound, ResultGone:
		if len(payload) != 0 {
			return Result{}, fmt.Errorf("%w: %d payload bytes after status %s", ErrMalformed, len(payload), r.Status)
		}
	default:
		return Result{}, fmt.Errorf("%w: result status %#x", ErrMalformed, b[1])
	}
	return r, nil
}
