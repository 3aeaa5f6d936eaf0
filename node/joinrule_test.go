package node

import (
	"errors"
	"fmt"
	"testing"

	"github.com/linkraft/linkraft/shardrpc"
)

// TestDecideJoin is the deterministic regression test of the bootstrap
// rule (docs/ROBUSTNESS.md, Findings: TestLostDiskRejoinsAsNonVoter): the
// asker never counts itself as fresh, so it bootstraps only when at least
// n-m+1 other replicas answered that they hold no state or only the
// bootstrap entry.
func TestDecideJoin(t *testing.T) {
	down := errors.New("connection refused")
	empty := func(id string) peerAnswer { return peerAnswer{id: id, state: shardrpc.GroupEmpty} }
	boot := func(id string) peerAnswer { return peerAnswer{id: id, state: shardrpc.GroupBootstrapped} }
	ran := func(id string) peerAnswer { return peerAnswer{id: id, state: shardrpc.GroupRunning} }
	silent := func(id string) peerAnswer { return peerAnswer{id: id, err: down} }
	cases := []struct {
		name    string
		n       int
		answers []peerAnswer
		want    joinMode
	}{
		{"n=1: nobody to ask", 1, nil, bootstrapGroup},
		// The counterexample: L and A committed creates, B lags with only
		// the bootstrap entry, L lost its disk and asks while A is down.
		// The old rule counted L itself: 2 of 3 fresh, bootstrap, and L+B
		// elect a leader without the committed entries.
		{"n=3: the counterexample, one bootstrap-only, one silent", 3, []peerAnswer{boot("B"), silent("A")}, undecided},
		{"n=3: one empty, one silent", 3, []peerAnswer{empty("B"), silent("A")}, undecided},
		{"n=3: both silent", 3, []peerAnswer{silent("B"), silent("A")}, undecided},
		{"n=3: every other replica fresh", 3, []peerAnswer{empty("B"), boot("A")}, bootstrapGroup},
		{"n=3: both empty", 3, []peerAnswer{empty("B"), empty("A")}, bootstrapGroup},
		{"n=3: one ran", 3, []peerAnswer{ran("A"), silent("B")}, rejoinGroup},
		{"n=3: one ran, one fresh", 3, []peerAnswer{boot("B"), ran("A")}, rejoinGroup},
		// n=5, m=3: a commit is on 3 voters; if the asker was one, 2 others
		// hold it, so 3 others must be known fresh (at most 1 unknown).
		{"n=5: two fresh, two silent", 5, []peerAnswer{boot("B"), empty("C"), silent("D"), silent("E")}, undecided},
		{"n=5: three fresh, one silent", 5, []peerAnswer{boot("B"), empty("C"), empty("D"), silent("E")}, bootstrapGroup},
		{"n=5: four fresh", 5, []peerAnswer{boot("B"), empty("C"), empty("D"), boot("E")}, bootstrapGroup},
		{"n=5: three fresh, one ran", 5, []peerAnswer{boot("B"), empty("C"), empty("D"), ran("E")}, rejoinGroup},
		{"n=5: all silent", 5, []peerAnswer{silent("B"), silent("C"), silent("D"), silent("E")}, undecided},
	}
	for _, tc := range cases {
		got, why := decideJoin(tc.n, tc.answers)
		if got != tc.want {
			t.Errorf("%s: %v (%s), want %v", tc.name, got, why, tc.want)
		}
		if got == undecided && why == "" {
			t.Errorf("%s: undecided without a why", tc.name)
		}
	}
}

// TestDecideJoinNeverHidesACommit checks the rule against every way a
// committed entry can sit on a majority: for n in 1..7, any set of answers
// that decides bootstrap leaves fewer unknown others than the m-1 others
// that would hold a commit the asker forgot, and no answer of "ran" is
// ever overridden.
func TestDecideJoinNeverHidesACommit(t *testing.T) {
	states := []peerAnswer{{state: shardrpc.GroupEmpty}, {state: shardrpc.GroupBootstrapped}, {state: shardrpc.GroupRunning}, {err: errors.New("down")}}
	for n := 1; n <= 7; n++ {
		m := n/2 + 1
		others := n - 1
		total := 1
		for range others {
			total *= len(states)
		}
		for k := range total {
			answers := make([]peerAnswer, others)
			unknown, ran := 0, false
			for i, x := 0, k; i < others; i, x = i+1, x/len(states) {
				a := states[x%len(states)]
				a.id = fmt.Sprintf("r%d", i)
				answers[i] = a
				switch {
				case a.err != nil:
					unknown++
				case a.state == shardrpc.GroupRunning:
					ran = true
				}
			}
			got, _ := decideJoin(n, answers)
			switch {
			case ran && got != rejoinGroup:
				t.Fatalf("n=%d %+v: %v, want rejoin", n, answers, got)
			case got == bootstrapGroup && n > 1 && unknown >= m-1:
				t.Fatalf("n=%d %+v: bootstrap with %d others unknown, which could hold a commit", n, answers, unknown)
			case !ran && unknown == 0 && got != bootstrapGroup:
				t.Fatalf("n=%d %+v: %v with every other replica fresh, want bootstrap", n, answers, got)
			}
		}
	}
}
