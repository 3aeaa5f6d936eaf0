package node

import (
	"fmt"
	"strings"

	"github.com/linkraft/linkraft/shardrpc"
)

// peerAnswer is what one other replica of a shard answered a joiner's
// group state question: its state, or the error that kept it from
// answering.
type peerAnswer struct {
	id    string
	state string // shardrpc.GroupEmpty, GroupBootstrapped or GroupRunning
	err   error
}

// decideJoin is the bootstrap rule (package documentation, "Joining a
// group") as a pure function of the answers of the other replicas and the
// shard's replica count n (the asker included):
//
//   - any other replica holds a group that ran: rejoin;
//   - n == 1: bootstrap (there is nobody to ask);
//   - at least n-m+1 other replicas (m = n/2+1, a majority) answered that
//     they hold no state or only the bootstrap entry: bootstrap. The asker
//     does not count itself: it cannot tell whether it is new or forgot
//     its log. A committed entry is held by m voters; if the asker was one
//     of them, the other m-1 still hold it past the bootstrap entry, and
//     with n-m+1 others known fresh at most m-2 are unknown, too few;
//   - else undecided, with why.
func decideJoin(n int, answers []peerAnswer) (joinMode, string) {
	fresh, running := 0, 0
	why := make([]string, 0, len(answers))
	for _, a := range answers {
		switch {
		case a.err != nil:
			why = append(why, fmt.Sprintf("%s: %v", a.id, a.err))
		case a.state == shardrpc.GroupRunning:
			running++
			why = append(why, a.id+" holds the group's log")
		default:
			fresh++
			why = append(why, a.id+" holds no state")
		}
	}
	need := n - (n/2 + 1) + 1
	switch {
	case running > 0:
		return rejoinGroup, strings.Join(why, "; ")
	case n <= 1:
		return bootstrapGroup, "the shard has no other replica"
	case fresh >= need:
		return bootstrapGroup, strings.Join(why, "; ")
	}
	return undecided, fmt.Sprintf("%d of the %d other replicas known to hold no state, %d needed: this node cannot tell whether it is new or lost its data, "+
		"so the first start of a shard needs every replica but at most %d to answer (with 3 replicas: all of them), lest a replica that forgot committed entries bootstrap over them: %s",
		fresh, n-1, need, n-1-need, strings.Join(why, "; "))
}
