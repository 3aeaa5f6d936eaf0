package node

import (
	"fmt"
	"testing"

	"github.com/linkraft/linkraft/shardrpc"
)

func eventsOf(ch shardrpc.Changes) string {
	s := fmt.Sprintf("index %d reset %v:", ch.Index, ch.Reset)
	for _, e := range ch.Events {
		s += fmt.Sprintf(" %d/%s", e.Index, e.Code)
	}
	return s
}

// TestChangeRingFloorAndOverwrite: the ring answers the events in
// (since, applied], resets below its floor, moves the floor when it
// overwrites, and hides events of a batch not yet committed.
func TestChangeRingFloorAndOverwrite(t *testing.T) {
	r := newChangeRing(4)
	r.restart(10, 0)
	for _, tc := range []struct {
		index uint64
		code  string
	}{{11, "a"}, {13, "b"}, {13, "c"}, {15, "d"}} {
		r.add(tc.index, tc.code)
	}
	check := func(since, applied uint64, max int, want string) {
		t.Helper()
		if got := eventsOf(r.read(since, applied, 0, max).ch); got != want {
			t.Errorf("read(%d, %d, max %d) = %s, want %s", since, applied, max, got, want)
		}
	}
	check(10, 15, 100, "index 15 reset false: 11/a 13/b 13/c 15/d")
	check(11, 15, 100, "index 15 reset false: 13/b 13/c 15/d")
	check(15, 15, 100, "index 15 reset false:")
	check(9, 15, 100, "index 15 reset true:")  // below the floor
	check(16, 15, 100, "index 15 reset true:") // after the applied index: another group
	// Event 15 is recorded but its batch not committed (applied 14).
	rd := r.read(10, 14, 0, 100)
	if got := eventsOf(rd.ch); got != "index 14 reset false: 11/a 13/b 13/c" || !rd.pending {
		t.Errorf("uncommitted event: %s pending %v", got, rd.pending)
	}
	// An answer is cut at an entry boundary: both events of 13 or none.
	check(10, 15, 2, "index 12 reset false: 11/a")
	check(10, 15, 3, "index 14 reset false: 11/a 13/b 13/c")
	check(12, 15, 1, "index 15 reset true:") // one entry holds more than an answer
	// A fifth event overwrites 11/a: the floor moves to 11.
	r.add(17, "e")
	check(10, 17, 100, "index 17 reset true:")
	check(11, 17, 100, "index 17 reset false: 13/b 13/c 15/d 17/e")
	// Overwriting 13/b moves the floor to 13; 13/c is still there but the
	// ring is only complete above 13.
	r.add(18, "f")
	check(12, 18, 100, "index 18 reset true:")
	check(13, 18, 100, "index 18 reset false: 15/d 17/e 18/f")
}

// TestChangeRingRestart: a new restore epoch restarts the ring at the
// applied index, keeping only later events, so a caller behind gets a
// reset and one at the applied index goes on.
func TestChangeRingRestart(t *testing.T) {
	r := newChangeRing(8)
	r.restart(0, 0)
	r.add(3, "old")
	r.add(5, "old2")
	// A snapshot restore to 20 (epoch 2); an entry after it already
	// recorded an event.
	r.add(21, "new")
	if got := eventsOf(r.read(5, 21, 2, 100).ch); got != "index 21 reset true:" {
		t.Errorf("behind the restore: %s", got)
	}
	if got := eventsOf(r.read(20, 21, 2, 100).ch); got != "index 21 reset true:" {
		t.Errorf("the ring restarted at 21, not 20: %s", got)
	}
	if got := eventsOf(r.read(21, 21, 2, 100).ch); got != "index 21 reset false:" {
		t.Errorf("at the restart: %s", got)
	}
	r.add(22, "x")
	if got := eventsOf(r.read(21, 22, 2, 100).ch); got != "index 22 reset false: 22/x" {
		t.Errorf("after the restart: %s", got)
	}
	// The wake channel is closed by the next add.
	rd := r.read(22, 22, 2, 100)
	select {
	case <-rd.wake:
		t.Fatal("woken before an add")
	default:
	}
	r.add(23, "y")
	select {
	case <-rd.wake:
	default:
		t.Fatal("not woken by an add")
	}
}
