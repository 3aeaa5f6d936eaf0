// Package history records what the clients of a linkraft cluster asked and
// were answered during a robustness test, and checks that record against the
// cluster's invariants.
//
// # Recording
//
// A [Recorder] is shared by every client goroutine of a workload. A client
// calls [Recorder.Begin] just before it sends a request and [Call.End] with
// the answer just after it returns:
//
//	call := rec.Begin(clientID, history.CreateInput(url))
//	code, err := createLink(url)
//	if err != nil {
//		call.End(history.Unknown(err)) // or Rejected(err) for a 4xx
//	} else {
//		call.End(history.Created(code))
//	}
//
// Each [Op] holds the client, the invoke and return times (monotonic
// nanoseconds since the recorder started), the input and the output. An
// output is definite (the create was acknowledged, the alias was taken, the
// resolve found a URL or answered 404, the request was rejected with a 4xx)
// or unknown (a timeout, a 5xx, a dropped connection): the operation may or
// may not have taken effect.
//
// A history is saved and loaded as JSON lines, one Op per line ([Save],
// [Load], [Encode], [Decode]).
//
// # Checking
//
// [Check] runs direct rules with precise messages (see [Rule]) and a
// linearizability check with github.com/anishathalye/porcupine against a
// model of the link store: per code, a generated create puts a fresh code, an
// alias create is put-if-absent, a resolve is a read. The history is
// partitioned by code, so the check scales with the number of operations per
// code, not with the whole history. On a failure [Check] writes the history,
// the violations and porcupine's HTML visualization to the report folder the
// caller names.
//
// The workload must give every create a URL of its own (creates with an
// unknown outcome are matched to the codes where their effect was seen by
// URL) and must end with a resolve of every code it was acknowledged, after
// the faults are healed: those final resolves are how the lost-create rule
// sees the end state.
package history

import (
	"errors"
	"fmt"
)

// Kind is the kind of an operation.
type Kind string

// Operation kinds.
const (
	// KindCreate is a create with a generated code (POST /api/v1/links
	// without an alias).
	KindCreate Kind = "create"
	// KindCreateAlias is a create with a custom alias.
	KindCreateAlias Kind = "create_alias"
	// KindResolve reads the target of a code (GET /{code}).
	KindResolve Kind = "resolve"
)

// Result is the outcome class of an operation.
type Result string

// Results.
const (
	// ResultOK: the create was acknowledged; Output.Code is the code.
	ResultOK Result = "ok"
	// ResultAliasTaken: the alias create was refused because the alias
	// exists (409).
	ResultAliasTaken Result = "alias_taken"
	// ResultFound: the resolve answered a redirect; Output.URL is its target.
	ResultFound Result = "found"
	// ResultNotFound: the resolve answered 404.
	ResultNotFound Result = "not_found"
	// ResultRejected: the request was refused before it could take effect
	// (a 4xx other than 404 and 409): definitely no effect.
	ResultRejected Result = "rejected"
	// ResultUnknown: no definite answer (timeout, connection error, 5xx):
	// the operation may or may not have taken effect.
	ResultUnknown Result = "unknown"
)

// Input is what a client asked.
type Input struct {
	Kind Kind `json:"kind"`
	// URL is the target of a create.
	URL string `json:"url,omitempty"`
	// Alias is the custom code of an alias create.
	Alias string `json:"alias,omitempty"`
	// Reuse marks a generated create that may return an existing link of
	// the same URL instead of a new code.
	Reuse bool `json:"reuse,omitempty"`
	// Code is the code a resolve asks for.
	Code string `json:"code,omitempty"`
}

// CreateInput is the input of a create with a generated code.
func CreateInput(url string) Input { return Input{Kind: KindCreate, URL: url} }

// AliasInput is the input of a create with a custom alias.
func AliasInput(alias, url string) Input {
	return Input{Kind: KindCreateAlias, Alias: alias, URL: url}
}

// ResolveInput is the input of a resolve of code.
func ResolveInput(code string) Input { return Input{Kind: KindResolve, Code: code} }

// Output is what the client was answered.
type Output struct {
	Result Result `json:"result"`
	// Code is the code of an acknowledged create.
	Code string `json:"code,omitempty"`
	// URL is the target a resolve found.
	URL string `json:"url,omitempty"`
	// Error describes a rejected or unknown outcome, for the report.
	Error string `json:"error,omitempty"`
}

// Created is the output of an acknowledged create.
func Created(code string) Output { return Output{Result: ResultOK, Code: code} }

// AliasTaken is the output of an alias create refused with 409.
func AliasTaken() Output { return Output{Result: ResultAliasTaken} }

// Found is the output of a resolve that redirected to url.
func Found(url string) Output { return Output{Result: ResultFound, URL: url} }

// NotFound is the output of a resolve answered with 404.
func NotFound() Output { return Output{Result: ResultNotFound} }

// Rejected is the output of a request refused with a 4xx that proves it had
// no effect (bad input, for example).
func Rejected(reason error) Output { return Output{Result: ResultRejected, Error: errString(reason)} }

// Unknown is the output of a request whose effect is unknown: a timeout, a
// broken connection, a 5xx.
func Unknown(reason error) Output { return Output{Result: ResultUnknown, Error: errString(reason)} }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Op is one recorded operation.
type Op struct {
	// ID is unique in a history; the recorder numbers operations in the
	// order they were invoked.
	ID int `json:"id"`
	// Client is the zero-based ID of the client that issued the operation.
	// A client issues one operation at a time.
	Client int `json:"client"`
	// Invoke and Return are monotonic nanoseconds since the recorder
	// started: just before the request was sent, just after the answer (or
	// the giving up) was seen.
	Invoke int64  `json:"invoke"`
	Return int64  `json:"return"`
	In     Input  `json:"in"`
	Out    Output `json:"out"`
}

// Acked reports whether op is an acknowledged create.
func (op Op) Acked() bool {
	return (op.In.Kind == KindCreate || op.In.Kind == KindCreateAlias) && op.Out.Result == ResultOK
}

// CreatedCode returns the code an acknowledged create got (the alias for an
// alias create).
func (op Op) CreatedCode() string {
	if op.In.Kind == KindCreateAlias && op.Out.Code == "" {
		return op.In.Alias
	}
	return op.Out.Code
}

// String describes op for messages.
func (op Op) String() string {
	var in string
	switch op.In.Kind {
	case KindCreate:
		in = fmt.Sprintf("create(%s", op.In.URL)
		if op.In.Reuse {
			in += ", reuse"
		}
		in += ")"
	case KindCreateAlias:
		in = fmt.Sprintf("create_alias(%s, %s)", op.In.Alias, op.In.URL)
	case KindResolve:
		in = fmt.Sprintf("resolve(%s)", op.In.Code)
	default:
		in = string(op.In.Kind)
	}
	var out string
	switch op.Out.Result {
	case ResultOK:
		out = "ok " + op.CreatedCode()
	case ResultFound:
		out = "found " + op.Out.URL
	case ResultRejected, ResultUnknown:
		out = string(op.Out.Result)
		if op.Out.Error != "" {
			out += " (" + op.Out.Error + ")"
		}
	default:
		out = string(op.Out.Result)
	}
	return fmt.Sprintf("op %d [client %d, %s .. %s] %s -> %s",
		op.ID, op.Client, fmtNanos(op.Invoke), fmtNanos(op.Return), in, out)
}

func fmtNanos(ns int64) string {
	return fmt.Sprintf("%.3fms", float64(ns)/1e6)
}

// ErrInvalid is matched (errors.Is) by every error Validate returns.
var ErrInvalid = errors.New("history: invalid operation")

// Validate checks that every operation is well formed: known kind and
// result, the fields its kind needs, a result its kind can have, a return
// not before its invoke, IDs unique.
func Validate(ops []Op) error {
	seen := make(map[int]bool, len(ops))
	for i, op := range ops {
		if err := validateOp(op); err != nil {
			return fmt.Errorf("%w: line %d (id %d): %s", ErrInvalid, i+1, op.ID, err)
		}
		if seen[op.ID] {
			return fmt.Errorf("%w: line %d: duplicate id %d", ErrInvalid, i+1, op.ID)
		}
		seen[op.ID] = true
	}
	return nil
}

func validateOp(op Op) error {
	if op.Client < 0 {
		return fmt.Errorf("negative client %d", op.Client)
	}
	if op.Invoke < 0 || op.Return < op.Invoke {
		return fmt.Errorf("times invoke %d, return %d", op.Invoke, op.Return)
	}
	in, out := op.In, op.Out
	switch in.Kind {
	case KindCreate:
		if in.URL == "" {
			return errors.New("create without a url")
		}
		switch out.Result {
		case ResultOK:
			if out.Code == "" {
				return errors.New("acknowledged create without a code")
			}
		case ResultRejected, ResultUnknown:
		default:
			return fmt.Errorf("result %q for a create", out.Result)
		}
	case KindCreateAlias:
		if in.URL == "" || in.Alias == "" {
			return errors.New("alias create without a url or an alias")
		}
		switch out.Result {
		case ResultOK:
			if out.Code != "" && out.Code != in.Alias {
				return fmt.Errorf("alias create of %q acknowledged with code %q", in.Alias, out.Code)
			}
		case ResultAliasTaken, ResultRejected, ResultUnknown:
		default:
			return fmt.Errorf("result %q for an alias create", out.Result)
		}
	case KindResolve:
		if in.Code == "" {
			return errors.New("resolve without a code")
		}
		switch out.Result {
		case ResultFound:
			if out.URL == "" {
				return errors.New("resolve found an empty url")
			}
		case ResultNotFound, ResultRejected, ResultUnknown:
		default:
			return fmt.Errorf("result %q for a resolve", out.Result)
		}
	default:
		return fmt.Errorf("unknown kind %q", in.Kind)
	}
	return nil
}
