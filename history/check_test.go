package history

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// hist builds a history by hand; times are in milliseconds for readability.
type hist struct{ ops []Op }

func (h *hist) add(client int, invokeMs, returnMs int64, in Input, out Output) *hist {
	h.ops = append(h.ops, Op{
		ID: len(h.ops), Client: client,
		Invoke: invokeMs * int64(time.Millisecond), Return: returnMs * int64(time.Millisecond),
		In: in, Out: out,
	})
	return h
}

func check(t *testing.T, h *hist) *Report {
	t.Helper()
	rep, err := Check(h.ops, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func expectOK(t *testing.T, h *hist) {
	t.Helper()
	rep := check(t, h)
	if err := rep.Err(); err != nil {
		t.Fatalf("a legal history failed: %v", err)
	}
	if rep.Linearizable != porcupine.Ok {
		t.Fatalf("linearizability %s", rep.Linearizable)
	}
}

// expectRules checks that exactly the given rules are broken.
func expectRules(t *testing.T, h *hist, rules ...Rule) *Report {
	t.Helper()
	rep := check(t, h)
	got := make(map[Rule]bool)
	for _, v := range rep.Violations {
		got[v.Rule] = true
	}
	want := make(map[Rule]bool)
	for _, r := range rules {
		want[r] = true
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("broken rules %v, want %v; report: %v", keys(got), rules, rep.Err())
	}
	if err := rep.Err(); !errors.Is(err, ErrViolation) {
		t.Fatalf("Err() = %v, want ErrViolation", err)
	}
	t.Logf("as expected: %v", rep.Err())
	return rep
}

func keys(m map[Rule]bool) []Rule {
	var out []Rule
	for r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

const (
	u1 = "https://example.com/1"
	u2 = "https://example.com/2"
	u3 = "https://example.com/3"
)

// ---- legal histories ----

func TestSequentialCreatesAndResolves(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 10, CreateInput(u1), Created("aaaaaaa")).
		add(0, 11, 12, ResolveInput("aaaaaaa"), Found(u1)).
		add(1, 13, 20, AliasInput("launch", u2), Created("launch")).
		add(1, 21, 22, ResolveInput("launch"), Found(u2)).
		add(0, 23, 24, ResolveInput("nothere"), NotFound())
	expectOK(t, h)
}

func TestConcurrentResolveDuringCreateMaySeeEither(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 100, CreateInput(u1), Created("ccccccc")).
		add(1, 10, 20, ResolveInput("ccccccc"), NotFound()). // before the create took effect
		add(2, 30, 40, ResolveInput("ccccccc"), Found(u1)).  // after: still before the ack
		add(3, 50, 60, ResolveInput("ccccccc"), Found(u1)).
		add(1, 200, 210, ResolveInput("ccccccc"), Found(u1)) // final
	expectOK(t, h)
}

func TestConcurrentAliasRaceOneWins(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 50, AliasInput("promo", u1), AliasTaken()).
		add(1, 5, 40, AliasInput("promo", u2), Created("promo")).
		add(2, 10, 60, ResolveInput("promo"), Found(u2)).
		add(0, 70, 80, ResolveInput("promo"), Found(u2))
	expectOK(t, h)
}

func TestAliasTakenAfterAliasAcked(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 10, AliasInput("dup", u1), Created("dup")).
		add(1, 20, 30, AliasInput("dup", u2), AliasTaken()).
		add(0, 40, 50, ResolveInput("dup"), Found(u1))
	expectOK(t, h)
}

func TestUnknownAliasCreateLaterVisible(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 1000, AliasInput("maybe", u1), Unknown(errors.New("timeout"))).
		add(1, 10, 20, ResolveInput("maybe"), NotFound()).
		add(1, 1500, 1510, ResolveInput("maybe"), Found(u1)). // took effect after all
		add(2, 1600, 1700, AliasInput("maybe", u2), AliasTaken()).
		add(1, 1800, 1810, ResolveInput("maybe"), Found(u1))
	expectOK(t, h)
}

func TestUnknownAliasCreateNeverVisible(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 1000, AliasInput("never", u1), Unknown(errors.New("503 unavailable"))).
		add(1, 1500, 1510, ResolveInput("never"), NotFound()).
		add(1, 1600, 1610, ResolveInput("never"), NotFound())
	expectOK(t, h)
}

func TestUnknownAliasThenSomeoneElseWins(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 1000, AliasInput("contested", u1), Unknown(errors.New("connection reset"))).
		add(1, 1100, 1200, AliasInput("contested", u2), Created("contested")).
		add(1, 1300, 1310, ResolveInput("contested"), Found(u2))
	expectOK(t, h)
}

func TestUnknownGeneratedCreateVisibleAndInvisible(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 1000, CreateInput(u1), Unknown(errors.New("timeout"))).
		add(1, 0, 1000, CreateInput(u2), Unknown(errors.New("timeout"))). // never seen
		// A later create of the same URL with reuse finds the link the lost
		// answer had made: the unknown create took effect.
		add(0, 1100, 1200, Input{Kind: KindCreate, URL: u1, Reuse: true}, Created("ggggggg")).
		add(0, 1300, 1310, ResolveInput("ggggggg"), Found(u1))
	expectOK(t, h)

	// A resolve can see the effect of the unknown create before anyone
	// knew its code.
	h2 := &hist{}
	h2.add(0, 0, 1000, CreateInput(u1), Unknown(errors.New("timeout"))).
		add(1, 500, 510, ResolveInput("hhhhhhh"), Found(u1)).
		add(1, 1100, 1110, ResolveInput("hhhhhhh"), Found(u1))
	expectOK(t, h2)
}

func TestRejectedAndUnknownResolvesAreIgnored(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 10, CreateInput("not a url"), Rejected(errors.New("400 invalid_url"))).
		add(0, 20, 30, CreateInput(u1), Created("kkkkkkk")).
		add(1, 40, 5000, ResolveInput("kkkkkkk"), Unknown(errors.New("timeout"))).
		add(1, 5001, 5002, ResolveInput("kkkkkkk"), Found(u1))
	expectOK(t, h)
}

func TestReuseReturnsTheSameCode(t *testing.T) {
	reuse := Input{Kind: KindCreate, URL: u1, Reuse: true}
	h := &hist{}
	h.add(0, 0, 10, reuse, Created("rrrrrrr")).
		add(1, 5, 15, reuse, Created("rrrrrrr")).
		add(0, 20, 30, ResolveInput("rrrrrrr"), Found(u1))
	expectOK(t, h)
}

func TestEmptyHistory(t *testing.T) {
	rep, err := Check(nil, Options{})
	if err != nil || !rep.OK() || rep.Err() != nil {
		t.Fatalf("empty history: %v %v", err, rep.Err())
	}
}

// ---- illegal histories: one per rule ----

func TestLostCreate(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 10, CreateInput(u1), Created("lllllll")).
		add(0, 20, 30, ResolveInput("lllllll"), Found(u1)).
		add(1, 1000, 1010, ResolveInput("lllllll"), NotFound()) // after a crash: gone
	rep := expectRules(t, h, RuleLostCreate, RuleStale404, RuleLinearizability)
	for _, v := range rep.Violations {
		if v.Rule == RuleLostCreate && !strings.Contains(v.Message, "final resolve") {
			t.Fatalf("message %q", v.Message)
		}
	}
}

func TestAckedCreateNeverResolved(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 10, CreateInput(u1), Created("nnnnnnn"))
	rep := expectRules(t, h, RuleLostCreate)
	if !strings.Contains(rep.Violations[0].Message, "never resolved") {
		t.Fatalf("message %q", rep.Violations[0].Message)
	}
}

func TestResolvedOnlyBeforeTheAckIsNotVerified(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 100, CreateInput(u1), Created("bbbbbbb")).
		add(1, 10, 20, ResolveInput("bbbbbbb"), Found(u1)) // concurrent, not final
	expectRules(t, h, RuleLostCreate)
}

func TestDuplicateCode(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 10, CreateInput(u1), Created("ddddddd")).
		add(1, 20, 30, CreateInput(u2), Created("ddddddd")). // the same code again
		add(0, 40, 50, ResolveInput("ddddddd"), Found(u2))
	expectRules(t, h, RuleDuplicateCode, RuleLostCreate, RuleLinearizability)
}

func TestStale404AfterAckedCreate(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 10, CreateInput(u1), Created("sssssss")).
		add(1, 11, 15, ResolveInput("sssssss"), NotFound()). // a follower's stale read
		add(1, 20, 25, ResolveInput("sssssss"), Found(u1))
	rep := expectRules(t, h, RuleStale404, RuleLinearizability)
	if v := rep.Violations[0]; !reflect.DeepEqual(v.Ops, []int{0, 1}) || v.Code != "sssssss" {
		t.Fatalf("violation %+v", v)
	}
}

func TestPhantomURL(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 10, CreateInput(u1), Created("ppppppp")).
		add(1, 20, 30, ResolveInput("ppppppp"), Found(u3)). // nobody created u3
		add(1, 40, 50, ResolveInput("ppppppp"), Found(u1))
	expectRules(t, h, RulePhantomURL, RuleLinearizability)
}

func TestPhantomURLFromAnotherCode(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 10, CreateInput(u1), Created("qqqqqq1")).
		add(0, 20, 30, CreateInput(u2), Created("qqqqqq2")).
		add(1, 40, 50, ResolveInput("qqqqqq1"), Found(u2)). // routed to the wrong link
		add(1, 60, 70, ResolveInput("qqqqqq2"), Found(u2))
	expectRules(t, h, RulePhantomURL, RuleLostCreate, RuleLinearizability)
}

func TestPhantomURLBeforeItsCreate(t *testing.T) {
	h := &hist{}
	h.add(1, 0, 5, ResolveInput("eeeeeee"), Found(u1)). // sees the future
								add(0, 10, 20, CreateInput(u1), Created("eeeeeee")).
								add(1, 30, 40, ResolveInput("eeeeeee"), Found(u1))
	expectRules(t, h, RulePhantomURL, RuleLinearizability)
}

func TestAliasAcknowledgedTwice(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 10, AliasInput("twice", u1), Created("twice")).
		add(1, 20, 30, AliasInput("twice", u2), Created("twice")).
		add(0, 40, 50, ResolveInput("twice"), Found(u1))
	expectRules(t, h, RuleDuplicateCode, RuleLostCreate, RuleLinearizability)

	// The same URL twice is not a duplicate link, but the second put-if-
	// absent must have said alias_taken.
	h2 := &hist{}
	h2.add(0, 0, 10, AliasInput("twice", u1), Created("twice")).
		add(1, 20, 30, AliasInput("twice", u1), Created("twice")).
		add(0, 40, 50, ResolveInput("twice"), Found(u1))
	expectRules(t, h2, RuleLinearizability)
}

func TestAliasTakenWhileAbsent(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 10, AliasInput("free", u1), AliasTaken()).
		add(0, 20, 30, ResolveInput("free"), NotFound())
	expectRules(t, h, RuleLinearizability)
}

func TestUnknownCreateAppliedTwice(t *testing.T) {
	h := &hist{}
	h.add(0, 0, 1000, CreateInput(u1), Unknown(errors.New("timeout"))).
		add(1, 1100, 1110, ResolveInput("xxxxxx1"), Found(u1)).
		add(1, 1120, 1130, ResolveInput("xxxxxx2"), Found(u1))
	expectRules(t, h, RuleDoubleApply)
}

func TestUnknownCreateFlickers(t *testing.T) {
	// No direct rule covers this; only the linearizability check does: the
	// alias became visible and then vanished.
	h := &hist{}
	h.add(0, 0, 1000, AliasInput("flicker", u1), Unknown(errors.New("timeout"))).
		add(1, 100, 110, ResolveInput("flicker"), Found(u1)).
		add(1, 200, 210, ResolveInput("flicker"), NotFound())
	rep := expectRules(t, h, RuleLinearizability)
	if v := rep.Violations[0]; v.Code != "flicker" || len(v.Ops) != 3 {
		t.Fatalf("violation %+v", v)
	}
}

// ---- report, validation ----

func TestReportFolderOnFailure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "report")
	h := &hist{}
	h.add(0, 0, 10, CreateInput(u1), Created("fffffff")).
		add(1, 20, 30, ResolveInput("fffffff"), NotFound()).
		add(1, 40, 50, CreateInput(u2), Created("ok00000")).
		add(1, 60, 70, ResolveInput("ok00000"), Found(u2))
	rep, err := Check(h.ops, Options{ReportDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Dir != dir || !strings.Contains(rep.Err().Error(), dir) {
		t.Fatalf("report %+v, err %v", rep, rep.Err())
	}
	back, err := Load(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, h.ops) {
		t.Fatal("the saved history differs from the checked one")
	}
	html, err := os.ReadFile(filepath.Join(dir, "linearizability.html"))
	if err != nil || !strings.Contains(string(html), "fffffff") {
		t.Fatalf("visualization: %v (%d bytes)", err, len(html))
	}
	if strings.Contains(string(html), "ok00000") {
		t.Fatal("the visualization shows codes that are not involved")
	}
	txt, err := os.ReadFile(filepath.Join(dir, "violations.txt"))
	if err != nil || !strings.Contains(string(txt), string(RuleStale404)) {
		t.Fatalf("violations.txt: %v %q", err, txt)
	}
}

func TestNoReportOnSuccess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "report")
	h := &hist{}
	h.add(0, 0, 10, CreateInput(u1), Created("fffffff")).add(0, 20, 30, ResolveInput("fffffff"), Found(u1))
	rep, err := Check(h.ops, Options{ReportDir: dir})
	if err != nil || !rep.OK() || rep.Dir != "" {
		t.Fatalf("%v %+v", err, rep)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a report was written for a passing history: %v", err)
	}
}

func TestValidateRejectsMalformedOps(t *testing.T) {
	good := Op{ID: 1, In: CreateInput(u1), Out: Created("abcdefg"), Invoke: 1, Return: 2}
	cases := map[string]func(*Op){
		"negative client":       func(o *Op) { o.Client = -1 },
		"return before invoke":  func(o *Op) { o.Return = 0 },
		"unknown kind":          func(o *Op) { o.In.Kind = "delete" },
		"create without url":    func(o *Op) { o.In.URL = "" },
		"ack without code":      func(o *Op) { o.Out.Code = "" },
		"create found":          func(o *Op) { o.Out = Found(u1) },
		"alias without alias":   func(o *Op) { o.In = AliasInput("", u1) },
		"alias other code":      func(o *Op) { o.In = AliasInput("mine", u1); o.Out = Created("other") },
		"alias not found":       func(o *Op) { o.In = AliasInput("mine", u1); o.Out = NotFound() },
		"resolve without code":  func(o *Op) { o.In = ResolveInput(""); o.Out = NotFound() },
		"resolve found nothing": func(o *Op) { o.In = ResolveInput("c"); o.Out = Found("") },
		"resolve alias taken":   func(o *Op) { o.In = ResolveInput("c"); o.Out = AliasTaken() },
		"unknown result":        func(o *Op) { o.Out.Result = "maybe" },
	}
	for name, mutate := range cases {
		op := good
		mutate(&op)
		if err := Validate([]Op{op}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v", name, err)
		}
		if _, err := Check([]Op{op}, Options{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Check = %v", name, err)
		}
	}
	if err := Validate([]Op{good, good}); !errors.Is(err, ErrInvalid) {
		t.Errorf("duplicate ids: %v", err)
	}
	if err := Validate([]Op{good}); err != nil {
		t.Errorf("good op: %v", err)
	}
}

// ---- generated histories ----

// simulate runs a random workload against a linearizable in-memory store:
// every operation takes effect at a random point between its invoke and its
// return, and its output is computed there. Some outcomes are then hidden
// (unknown), as a client that timed out would see them.
func simulate(seed uint64, clients, opsPerClient, codes int) []Op {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	type pending struct {
		op    Op
		point int64
	}
	var all []pending
	id := 0
	nextURL := 0
	for c := range clients {
		var t int64
		for range opsPerClient {
			t += rng.Int64N(1000)
			dur := 1 + rng.Int64N(3000)
			op := Op{ID: id, Client: c, Invoke: t, Return: t + dur}
			id++
			code := fmt.Sprintf("code%03d", rng.IntN(codes))
			switch rng.IntN(3) {
			case 0:
				nextURL++
				op.In = AliasInput(code, fmt.Sprintf("https://e.com/%d", nextURL))
			case 1:
				nextURL++
				op.In = CreateInput(fmt.Sprintf("https://e.com/%d", nextURL))
			default:
				op.In = ResolveInput(code)
			}
			all = append(all, pending{op: op, point: t + rng.Int64N(dur+1)})
			t += dur
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].point < all[j].point })
	store := make(map[string]string)
	fresh := 0
	var ops []Op
	for _, p := range all {
		op := p.op
		switch op.In.Kind {
		case KindCreateAlias:
			if _, ok := store[op.In.Alias]; ok {
				op.Out = AliasTaken()
			} else {
				store[op.In.Alias] = op.In.URL
				op.Out = Created(op.In.Alias)
			}
		case KindCreate:
			fresh++
			code := fmt.Sprintf("gen%04d", fresh)
			store[code] = op.In.URL
			op.Out = Created(code)
		case KindResolve:
			if u, ok := store[op.In.Code]; ok {
				op.Out = Found(u)
			} else {
				op.Out = NotFound()
			}
		}
		if op.In.Kind != KindResolve && rng.IntN(10) == 0 {
			op.Out = Unknown(errors.New("timeout"))
		}
		ops = append(ops, op)
	}
	// Final resolves of every code, after everything.
	var end int64
	for _, op := range ops {
		end = max(end, op.Return)
	}
	codesSeen := make([]string, 0, len(store))
	for c := range store {
		codesSeen = append(codesSeen, c)
	}
	sort.Strings(codesSeen)
	for _, c := range codesSeen {
		end++
		ops = append(ops, Op{ID: id, Client: clients, Invoke: end, Return: end + 1, In: ResolveInput(c), Out: Found(store[c])})
		id++
		end++
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].ID < ops[j].ID })
	return ops
}

func TestSimulatedLinearizableHistoriesPass(t *testing.T) {
	for seed := range uint64(20) {
		ops := simulate(seed, 8, 60, 15)
		rep, err := Check(ops, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := rep.Err(); err != nil {
			t.Fatalf("seed %d: a linearizable history failed: %v", seed, err)
		}
	}
}

func TestSimulatedHistoriesWithABugFail(t *testing.T) {
	for seed := range uint64(20) {
		ops := simulate(seed, 8, 60, 15)
		// Lose one acknowledged create: its final resolve answers 404.
		var code string
		for _, op := range ops {
			if op.Acked() {
				code = op.CreatedCode()
				break
			}
		}
		for i := len(ops) - 1; i >= 0; i-- {
			if ops[i].In.Kind == KindResolve && ops[i].In.Code == code {
				ops[i].Out = NotFound()
				break
			}
		}
		rep, err := Check(ops, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Has(RuleLostCreate) || !rep.Has(RuleLinearizability) {
			t.Fatalf("seed %d: a lost create of %s was not found: %v", seed, code, rep.Err())
		}
	}
}

func TestLargeHistoryIsFast(t *testing.T) {
	ops := simulate(42, 32, 600, 2000) // about 20k operations
	start := time.Now()
	rep, err := Check(ops, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	t.Logf("%d operations, %d codes checked in %v", rep.Ops, rep.Codes, el)
	if el > 20*time.Second {
		t.Fatalf("check took %v", el)
	}
}

func TestVisualizationDescribesOperations(t *testing.T) {
	dir := t.TempDir()
	h := &hist{}
	h.add(0, 0, 1000, CreateInput(u1), Unknown(errors.New("timeout"))).
		add(1, 100, 110, ResolveInput("vvvvvvv"), Found(u1)).
		add(2, 120, 130, AliasInput("vvvvvvv", u2), Created("vvvvvvv")) // the code was taken
	rep, err := Check(h.ops, Options{ReportDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Has(RuleLinearizability) {
		t.Fatalf("report: %v", rep.Err())
	}
	html, err := os.ReadFile(filepath.Join(dir, "linearizability.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"unknown, seen as vvvvvvv", "resolve(vvvvvvv)", "create_alias(vvvvvvv"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("the visualization lacks %q", want)
		}
	}
}
