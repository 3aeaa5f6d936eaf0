package history

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Rule names one property Check verifies.
type Rule string

// The rules. The first five are direct checks with precise messages; the
// last is the full linearizability check, which implies all of them for
// the operations it covers but only says which code's history is wrong.
const (
	// RuleLostCreate (invariant 1): every acknowledged create still
	// resolves to its URL at the end. The last resolve of its code with a
	// definite answer must be invoked after the create returned and must
	// find its URL.
	RuleLostCreate Rule = "lost-create"
	// RuleDuplicateCode (invariant 2): no two acknowledged creates got the
	// same code with different URLs (an alias acknowledged twice counts).
	RuleDuplicateCode Rule = "duplicate-code"
	// RuleStale404 (invariant 3): no resolve answers 404 for a code whose
	// create was acknowledged before the resolve was invoked.
	RuleStale404 Rule = "stale-404"
	// RulePhantomURL (invariants 2 and 3): a resolve only returns a URL that
	// a create of that code could have stored: an acknowledged create of
	// the code, an alias create of it that may have run, or a generated
	// create with an unknown outcome, invoked before the resolve returned.
	RulePhantomURL Rule = "phantom-url"
	// RuleDoubleApply: a create with an unknown outcome took effect at most
	// once: its URL is not found under two different codes.
	RuleDoubleApply Rule = "double-apply"
	// RuleLinearizability: the history of every code is linearizable with
	// respect to the link model (see the package doc).
	RuleLinearizability Rule = "linearizability"
)

// Violation is one broken rule.
type Violation struct {
	Rule Rule `json:"rule"`
	// Code is the code concerned.
	Code string `json:"code"`
	// Ops are the IDs of the operations involved.
	Ops []int `json:"ops"`
	// Message explains the violation with the operations and times.
	Message string `json:"message"`
}

// String implements fmt.Stringer.
func (v Violation) String() string { return fmt.Sprintf("%s [%s]: %s", v.Rule, v.Code, v.Message) }

// ErrViolation is matched (errors.Is) by Report.Err when a rule is broken.
var ErrViolation = errors.New("history: invariant violated")

// Options configure Check.
type Options struct {
	// ReportDir, when set, receives on a failure: history.jsonl (the whole
	// history), violations.txt, and linearizability.html (porcupine's
	// visualization of the codes involved). It is created if needed.
	ReportDir string
	// Timeout bounds the linearizability check; an inconclusive check is a
	// violation. Zero means one minute.
	Timeout time.Duration
}

// Report is the result of Check.
type Report struct {
	// Ops is the number of operations checked.
	Ops int
	// Codes is the number of distinct codes in the linearizability check.
	Codes int
	// Linearizable is porcupine's verdict: Ok, Illegal or Unknown (timed
	// out).
	Linearizable porcupine.CheckResult
	// Violations lists every broken rule, direct rules first.
	Violations []Violation
	// Dir is where the failure report was written ("" if none).
	Dir string
}

// OK reports whether every rule held.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// Has reports whether some violation broke rule.
func (r *Report) Has(rule Rule) bool {
	for _, v := range r.Violations {
		if v.Rule == rule {
			return true
		}
	}
	return false
}

// Err returns nil when every rule held, else an error matching ErrViolation
// that lists the violations (the first 20) and names the report folder.
func (r *Report) Err() error {
	if r.OK() {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d violation(s) in %d operations", len(r.Violations), r.Ops)
	if r.Dir != "" {
		fmt.Fprintf(&b, " (report in %s)", r.Dir)
	}
	for i, v := range r.Violations {
		if i == 20 {
			fmt.Fprintf(&b, "\n  ... and %d more", len(r.Violations)-i)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(v.String())
	}
	return fmt.Errorf("%w: %s", ErrViolation, b.String())
}

// Check validates ops and checks them against every Rule. The error is for
// an invalid history or a report that could not be written; broken rules
// are in the Report (see Report.Err).
func Check(ops []Op, opts Options) (*Report, error) {
	if err := Validate(ops); err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	rep := &Report{Ops: len(ops)}
	idx := index(ops)
	rep.Violations = append(rep.Violations, checkDuplicateCodes(idx)...)
	rep.Violations = append(rep.Violations, checkStale404(idx)...)
	rep.Violations = append(rep.Violations, checkPhantoms(ops, idx)...)
	rep.Violations = append(rep.Violations, checkDoubleApply(ops, idx)...)
	rep.Violations = append(rep.Violations, checkLost(idx)...)

	mops := modelHistory(ops)
	rep.Codes = len(partitionOps(mops))
	rep.Linearizable = porcupine.CheckOperationsTimeout(linkModel, mops, opts.Timeout)
	switch rep.Linearizable {
	case porcupine.Illegal:
		rep.Violations = append(rep.Violations, illegalCodes(mops)...)
	case porcupine.Unknown:
		rep.Violations = append(rep.Violations, Violation{
			Rule:    RuleLinearizability,
			Message: fmt.Sprintf("the check did not finish within %v: inconclusive", opts.Timeout),
		})
	}

	if !rep.OK() && opts.ReportDir != "" {
		if err := writeReport(opts.ReportDir, ops, mops, rep, opts.Timeout); err != nil {
			return rep, err
		}
		rep.Dir = opts.ReportDir
	}
	return rep, nil
}

// indexed is the history grouped by code.
type indexed struct {
	acked    map[string][]Op // code -> acknowledged creates, by return time
	resolves map[string][]Op // code -> resolves with a definite answer, by invoke time
	codes    []string        // every code in acked or resolves, sorted
}

func index(ops []Op) *indexed {
	idx := &indexed{acked: make(map[string][]Op), resolves: make(map[string][]Op)}
	seen := make(map[string]bool)
	for _, op := range ops {
		var code string
		switch {
		case op.Acked():
			code = op.CreatedCode()
			idx.acked[code] = append(idx.acked[code], op)
		case op.In.Kind == KindResolve && (op.Out.Result == ResultFound || op.Out.Result == ResultNotFound):
			code = op.In.Code
			idx.resolves[code] = append(idx.resolves[code], op)
		default:
			continue
		}
		if !seen[code] {
			seen[code] = true
			idx.codes = append(idx.codes, code)
		}
	}
	sort.Strings(idx.codes)
	for _, l := range idx.acked {
		sort.SliceStable(l, func(i, j int) bool { return l[i].Return < l[j].Return })
	}
	for _, l := range idx.resolves {
		sort.SliceStable(l, func(i, j int) bool { return l[i].Invoke < l[j].Invoke })
	}
	return idx
}

func checkDuplicateCodes(idx *indexed) []Violation {
	var out []Violation
	for _, code := range idx.codes {
		acks := idx.acked[code]
		urls := make(map[string]bool)
		for _, a := range acks {
			urls[a.In.URL] = true
		}
		if len(urls) < 2 {
			continue
		}
		var ids []int
		var lines []string
		for _, a := range acks {
			ids = append(ids, a.ID)
			lines = append(lines, a.String())
		}
		out = append(out, Violation{
			Rule: RuleDuplicateCode, Code: code, Ops: ids,
			Message: fmt.Sprintf("code %s was acknowledged to %d creates with %d different URLs: %s",
				code, len(acks), len(urls), strings.Join(lines, "; ")),
		})
	}
	return out
}

func checkStale404(idx *indexed) []Violation {
	var out []Violation
	for _, code := range idx.codes {
		acks := idx.acked[code]
		if len(acks) == 0 {
			continue
		}
		first := acks[0] // earliest acknowledgement
		for _, r := range idx.resolves[code] {
			if r.Out.Result == ResultNotFound && r.Invoke > first.Return {
				out = append(out, Violation{
					Rule: RuleStale404, Code: code, Ops: []int{first.ID, r.ID},
					Message: fmt.Sprintf("%s answered 404, but the create was acknowledged %s before the resolve began: %s",
						r, time.Duration(r.Invoke-first.Return), first),
				})
			}
		}
	}
	return out
}

func checkPhantoms(ops []Op, idx *indexed) []Violation {
	// Possible sources of (code, url): creates that may have stored url
	// under code, earliest invocation first.
	sources := make(map[[2]string][]Op)
	unknownByURL := unknownCreatesByURL(ops)
	for _, op := range ops {
		switch {
		case op.Acked():
			k := [2]string{op.CreatedCode(), op.In.URL}
			sources[k] = append(sources[k], op)
		case op.In.Kind == KindCreateAlias && op.Out.Result == ResultUnknown:
			k := [2]string{op.In.Alias, op.In.URL}
			sources[k] = append(sources[k], op)
		}
	}
	var out []Violation
	for _, code := range idx.codes {
		for _, r := range idx.resolves[code] {
			if r.Out.Result != ResultFound {
				continue
			}
			cands := append(append([]Op(nil), sources[[2]string{code, r.Out.URL}]...), unknownByURL[r.Out.URL]...)
			if len(cands) == 0 {
				out = append(out, Violation{
					Rule: RulePhantomURL, Code: code, Ops: []int{r.ID},
					Message: fmt.Sprintf("%s returned a URL that no create of %s could have stored", r, code),
				})
				continue
			}
			earliest := cands[0]
			for _, c := range cands[1:] {
				if c.Invoke < earliest.Invoke {
					earliest = c
				}
			}
			if earliest.Invoke > r.Return {
				out = append(out, Violation{
					Rule: RulePhantomURL, Code: code, Ops: []int{r.ID, earliest.ID},
					Message: fmt.Sprintf("%s returned its URL before any create of it was invoked (first: %s)", r, earliest),
				})
			}
		}
	}
	return out
}

func checkDoubleApply(ops []Op, idx *indexed) []Violation {
	creates := make(map[string]int) // url -> number of create operations asking for it
	for _, op := range ops {
		if op.In.Kind == KindCreate || op.In.Kind == KindCreateAlias {
			creates[op.In.URL]++
		}
	}
	seenAt := make(map[string][]string) // url -> codes where a resolve found it
	for _, code := range idx.codes {
		found := make(map[string]bool)
		for _, r := range idx.resolves[code] {
			if r.Out.Result == ResultFound && !found[r.Out.URL] {
				found[r.Out.URL] = true
				seenAt[r.Out.URL] = append(seenAt[r.Out.URL], code)
			}
		}
	}
	var out []Violation
	for _, op := range ops {
		if op.In.Kind != KindCreate || op.In.Reuse || op.Out.Result != ResultUnknown || creates[op.In.URL] != 1 {
			continue
		}
		if codes := seenAt[op.In.URL]; len(codes) > 1 {
			out = append(out, Violation{
				Rule: RuleDoubleApply, Code: codes[0], Ops: []int{op.ID},
				Message: fmt.Sprintf("%s took effect %d times: its URL is found under codes %s",
					op, len(codes), strings.Join(codes, ", ")),
			})
		}
	}
	return out
}

func checkLost(idx *indexed) []Violation {
	var out []Violation
	for _, code := range idx.codes {
		rs := idx.resolves[code]
		for _, a := range idx.acked[code] {
			if len(rs) == 0 || rs[len(rs)-1].Invoke <= a.Return {
				out = append(out, Violation{
					Rule: RuleLostCreate, Code: code, Ops: []int{a.ID},
					Message: fmt.Sprintf("%s was acknowledged but never resolved afterwards: the history must end with a resolve of every acknowledged code", a),
				})
				continue
			}
			last := rs[len(rs)-1]
			if last.Out.Result == ResultFound && last.Out.URL == a.In.URL {
				continue
			}
			what := "404"
			if last.Out.Result == ResultFound {
				what = "another URL, " + last.Out.URL
			}
			out = append(out, Violation{
				Rule: RuleLostCreate, Code: code, Ops: []int{a.ID, last.ID},
				Message: fmt.Sprintf("%s was acknowledged, but the final resolve of %s answered %s: %s", a, code, what, last),
			})
		}
	}
	return out
}

// illegalCodes checks each code's history alone to name the codes whose
// history is not linearizable.
func illegalCodes(mops []porcupine.Operation) []Violation {
	single := linkModel
	single.Partition, single.PartitionEvent = nil, nil
	var out []Violation
	for _, part := range partitionOps(mops) {
		if porcupine.CheckOperations(single, part) {
			continue
		}
		code := part[0].Input.(modelInput).code
		var ids []int
		for _, op := range part {
			ids = append(ids, op.Metadata.(int))
		}
		sort.Ints(ids)
		out = append(out, Violation{
			Rule: RuleLinearizability, Code: code, Ops: ids,
			Message: fmt.Sprintf("the %d operations on %s have no linearization", len(part), code),
		})
	}
	if len(out) == 0 { // cannot happen: the partitions decide the whole
		out = append(out, Violation{Rule: RuleLinearizability, Message: "the history is not linearizable"})
	}
	return out
}

// writeReport writes the failure report into dir.
func writeReport(dir string, ops []Op, mops []porcupine.Operation, rep *Report, timeout time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("history: report: %w", err)
	}
	if err := Save(filepath.Join(dir, "history.jsonl"), ops); err != nil {
		return fmt.Errorf("history: report: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d operations, %d codes, linearizability: %s\n", rep.Ops, rep.Codes, rep.Linearizable)
	for _, v := range rep.Violations {
		b.WriteString(v.String())
		b.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, "violations.txt"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("history: report: %w", err)
	}

	// Visualize the codes involved in a violation (all codes when none is
	// named), so the page stays small enough to read.
	involved := make(map[string]bool)
	for _, v := range rep.Violations {
		if v.Code != "" {
			involved[v.Code] = true
		}
	}
	vis := mops
	if len(involved) > 0 {
		vis = nil
		for _, op := range mops {
			if involved[op.Input.(modelInput).code] {
				vis = append(vis, op)
			}
		}
	}
	_, info := porcupine.CheckOperationsVerbose(linkModel, vis, timeout)
	if err := porcupine.VisualizePath(linkModel, info, filepath.Join(dir, "linearizability.html")); err != nil {
		return fmt.Errorf("history: report: %w", err)
	}
	return nil
}
