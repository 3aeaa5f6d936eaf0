package history

import (
	"fmt"
	"sort"

	"github.com/anishathalye/porcupine"
)

// The porcupine model of one code. Its state is the URL stored under the
// code, "" while the code is absent. Links never change, so the state goes
// from "" to a URL at most once.

// modelInput is a porcupine input: an operation bound to the code whose
// partition it is in.
type modelInput struct {
	kind  Kind
	code  string // the code the operation acts on
	url   string // the URL a create stores
	reuse bool
	id    int // Op.ID, for the visualization
}

// modelOutput is a porcupine output.
type modelOutput struct {
	result Result
	url    string // a found resolve's target
}

// linkModel is the sequential specification of the link store, per code.
var linkModel = porcupine.Model{
	Partition:      partitionOps,
	PartitionEvent: partitionEvents,
	Init:           func() interface{} { return "" },
	Step:           step,
	Equal:          func(a, b interface{}) bool { return a.(string) == b.(string) },
	DescribeOperation: func(in, out interface{}) string {
		i, o := in.(modelInput), out.(modelOutput)
		var s string
		switch i.kind {
		case KindCreate:
			s = fmt.Sprintf("create(%s) -> ", i.url)
			if i.reuse {
				s = fmt.Sprintf("create(%s, reuse) -> ", i.url)
			}
		case KindCreateAlias:
			s = fmt.Sprintf("create_alias(%s, %s) -> ", i.code, i.url)
		case KindResolve:
			s = fmt.Sprintf("resolve(%s) -> ", i.code)
		}
		switch o.result {
		case ResultOK:
			return s + "ok " + i.code
		case ResultUnknown:
			if i.kind == KindCreate {
				return s + "unknown, seen as " + i.code
			}
			return s + "unknown"
		case ResultFound:
			return s + o.url
		default:
			return s + string(o.result)
		}
	},
	DescribeState: func(state interface{}) string {
		if s := state.(string); s != "" {
			return s
		}
		return "(absent)"
	},
	DescribeOperationMetadata: func(info interface{}) string {
		if info == nil {
			return ""
		}
		return fmt.Sprintf("op %d", info.(int))
	},
}

// step is the model's transition. It must not mutate its arguments.
func step(state, input, output interface{}) (bool, interface{}) {
	cur, in, out := state.(string), input.(modelInput), output.(modelOutput)
	switch in.kind {
	case KindResolve:
		switch out.result {
		case ResultFound:
			return cur == out.url, cur
		case ResultNotFound:
			return cur == "", cur
		}
		return true, cur // not produced: unknown resolves are left out

	case KindCreate:
		// An acknowledged create, or one with an unknown outcome that is in
		// this partition because its URL was seen under this code: either
		// way it stored its URL under a fresh code, or (reuse) found it there.
		if cur == "" {
			return true, in.url
		}
		return in.reuse && cur == in.url, cur

	case KindCreateAlias:
		switch out.result {
		case ResultOK: // put-if-absent that succeeded
			return cur == "", in.url
		case ResultAliasTaken: // put-if-absent that found the alias present
			return cur != "", cur
		case ResultUnknown:
			// Either it ran (and stored if absent) or it never ran: the
			// latter is the linearization after every other operation,
			// which its infinite return time allows.
			if cur == "" {
				return true, in.url
			}
			return true, cur
		}
	}
	return false, cur
}

func partitionOps(history []porcupine.Operation) [][]porcupine.Operation {
	byCode := make(map[string][]porcupine.Operation)
	for _, op := range history {
		c := op.Input.(modelInput).code
		byCode[c] = append(byCode[c], op)
	}
	codes := make([]string, 0, len(byCode))
	for c := range byCode {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	out := make([][]porcupine.Operation, 0, len(codes))
	for _, c := range codes {
		out = append(out, byCode[c])
	}
	return out
}

func partitionEvents(history []porcupine.Event) [][]porcupine.Event {
	codeOf := make(map[int]string) // event id -> code, from the call events
	byCode := make(map[string][]porcupine.Event)
	var codes []string
	for _, ev := range history {
		var c string
		if ev.Kind == porcupine.CallEvent {
			c = ev.Value.(modelInput).code
			codeOf[ev.Id] = c
		} else {
			c = codeOf[ev.Id]
		}
		if _, ok := byCode[c]; !ok {
			codes = append(codes, c)
		}
		byCode[c] = append(byCode[c], ev)
	}
	sort.Strings(codes)
	out := make([][]porcupine.Event, 0, len(codes))
	for _, c := range codes {
		out = append(out, byCode[c])
	}
	return out
}

// modelHistory turns ops into porcupine operations, each bound to a code:
//
//   - An acknowledged create acts on its code.
//   - An alias create acts on its alias, whatever its outcome.
//   - A resolve with a definite answer acts on its code.
//   - A generated create with an unknown outcome acts on every code where a
//     resolve found its URL and no acknowledged create of that URL explains
//     it; when no resolve saw its URL its effect is unobservable and it is
//     left out (equivalent to linearizing it after everything).
//   - Rejected operations and resolves with an unknown outcome have no
//     effect and are left out.
//
// Operations with an unknown outcome get a return time after the end of the
// history: they may have taken effect at any time after their invocation,
// or never.
func modelHistory(ops []Op) []porcupine.Operation {
	var end int64
	for _, op := range ops {
		end = max(end, op.Return)
	}
	end++

	// (code, url) pairs that an acknowledged create, or an alias create that
	// may have run, explains.
	explained := make(map[[2]string]bool)
	for _, op := range ops {
		switch {
		case op.Acked():
			explained[[2]string{op.CreatedCode(), op.In.URL}] = true
		case op.In.Kind == KindCreateAlias && op.Out.Result == ResultUnknown:
			explained[[2]string{op.In.Alias, op.In.URL}] = true
		}
	}
	unknownByURL := unknownCreatesByURL(ops)
	attached := make(map[[2]string]bool) // (code, url) given an unknown create

	var out []porcupine.Operation
	add := func(op Op, code string, res Result, url string) {
		ret := op.Return
		if op.Out.Result == ResultUnknown {
			ret = end
		}
		out = append(out, porcupine.Operation{
			ClientId: op.Client,
			Input:    modelInput{kind: op.In.Kind, code: code, url: op.In.URL, reuse: op.In.Reuse, id: op.ID},
			Call:     op.Invoke,
			Output:   modelOutput{result: res, url: url},
			Return:   ret,
			Metadata: op.ID,
		})
	}
	for _, op := range ops {
		switch {
		case op.Out.Result == ResultRejected:
		case op.In.Kind == KindCreate && op.Out.Result == ResultOK:
			add(op, op.Out.Code, ResultOK, "")
		case op.In.Kind == KindCreateAlias:
			add(op, op.In.Alias, op.Out.Result, "")
		case op.In.Kind == KindResolve && op.Out.Result != ResultUnknown:
			add(op, op.In.Code, op.Out.Result, op.Out.URL)
			if op.Out.Result != ResultFound {
				continue
			}
			key := [2]string{op.In.Code, op.Out.URL}
			if explained[key] || attached[key] {
				continue
			}
			// A URL nobody acknowledged under this code: the effect of a
			// create with an unknown outcome, if there is one.
			if cands := unknownByURL[op.Out.URL]; len(cands) > 0 {
				attached[key] = true
				add(cands[0], op.In.Code, ResultUnknown, "")
			}
		}
	}
	return out
}

// unknownCreatesByURL maps a URL to the generated creates with an unknown
// outcome that asked for it, earliest invocation first.
func unknownCreatesByURL(ops []Op) map[string][]Op {
	m := make(map[string][]Op)
	for _, op := range ops {
		if op.In.Kind == KindCreate && op.Out.Result == ResultUnknown {
			m[op.In.URL] = append(m[op.In.URL], op)
		}
	}
	for _, l := range m {
		sort.SliceStable(l, func(i, j int) bool { return l[i].Invoke < l[j].Invoke })
	}
	return m
}
