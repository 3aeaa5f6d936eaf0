package node

import (
	"fmt"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/linkstore"
	"github.com/linkraft/linkraft/raftstore"
	"github.com/linkraft/linkraft/shardrpc"
)

// The change feed (shardrpc.PathChanges).
//
// Every replica remembers, per group, the last changeRingSize change events
// (Raft index, code) of the entries it applied that may change a redirect's
// answer (linkstore.ChangedCodes: deletes, edits, purges). Recording reads
// only the command, so it is deterministic and stores nothing: replicas stay
// byte-identical. The ring is complete above its floor: every event with an
// index > floor that this replica applied is in it. The floor is the
// applied index when the ring was (re)started (when the group opened, and
// at the first feed request after it restored a snapshot: a restore
// replaces the state without applying the entries in between) and moves up
// when the ring overwrites its oldest event. Followers keep a ring too, so
// a new leader continues the feed where the old one stopped.
//
// An event is recorded inside Apply, before its batch is committed; it is
// answered only once the replica's applied index (stored after the commit)
// covers it, so a router never hears of a change its resolves cannot see.
//
// The leader answers a request (since, wait) after a linearizable read
// barrier, so its applied index covers every write acknowledged before the
// request arrived: the events in (since, applied], or a reset when since is
// below the floor (or above the applied index: another incarnation of the
// group). Without an event it waits, up to wait, for one.

// changeRingSize bounds the events a replica remembers per group: a router
// whose position fell further behind gets a reset (it drops its cached
// links of the shard).
const changeRingSize = 65536

// pendingPoll is how often a long poll looks again while an event is
// recorded but its batch not yet committed (a matter of microseconds).
const pendingPoll = time.Millisecond

// changeEvent is one recorded change.
type changeEvent struct {
	index uint64
	code  string
}

// changeRing is the change events of one group's replica. The FSM
// goroutine adds; feed requests read.
type changeRing struct {
	mu     sync.Mutex
	size   int
	events []changeEvent // circular once len == size
	start  int           // index in events of the oldest event
	floor  uint64
	// started: floor and epoch are set (by the first read).
	started bool
	epoch   uint64
	// wake is closed by the next add; nil when nobody waits.
	wake chan struct{}
}

func newChangeRing(size int) *changeRing { return &changeRing{size: size} }

// add records that the entry at index changed code.
func (r *changeRing) add(index uint64, code string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := changeEvent{index: index, code: code}
	if len(r.events) < r.size {
		r.events = append(r.events, e)
	} else {
		// Overwrite the oldest: the ring no longer knows every event at
		// or below its index.
		r.floor = max(r.floor, r.events[r.start].index)
		r.events[r.start] = e
		r.start = (r.start + 1) % r.size
	}
	if r.wake != nil {
		close(r.wake)
		r.wake = nil
	}
}

// at returns the i-th oldest event.
func (r *changeRing) at(i int) *changeEvent { return &r.events[(r.start+i)%len(r.events)] }

// restart makes the ring complete from applied on: it forgets the events
// at or below applied and sets the floor there.
func (r *changeRing) restart(applied, epoch uint64) {
	n := len(r.events)
	drop := 0
	for drop < n && r.at(drop).index <= applied {
		drop++
	}
	kept := make([]changeEvent, 0, n-drop)
	for i := drop; i < n; i++ {
		kept = append(kept, *r.at(i))
	}
	r.events, r.start = kept, 0
	r.floor, r.epoch, r.started = applied, epoch, true
}

// changesRead is what read found.
type changesRead struct {
	ch shardrpc.Changes
	// pending: an event after the applied index is recorded (its batch
	// is being committed).
	pending bool
	// wake is closed by the next add.
	wake <-chan struct{}
}

// read returns the events in (since, applied] (at most max, cut at an
// index boundary), or a reset, for a replica whose applied index and
// restore epoch are applied and epoch (raftstore.Group.AppliedEpoch).
func (r *changeRing) read(since, applied, epoch uint64, max int) changesRead {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started || r.epoch != epoch {
		r.restart(applied, epoch)
	}
	var out changesRead
	if r.wake == nil {
		r.wake = make(chan struct{})
	}
	out.wake = r.wake
	if since < r.floor || since > applied {
		out.ch = shardrpc.Changes{Index: applied, Reset: true}
		return out
	}
	n := len(r.events)
	// The events are in index order: find the first after since.
	first := n
	for first > 0 && r.at(first-1).index > since {
		first--
	}
	out.ch.Index = applied
	for i := first; i < n; i++ {
		e := r.at(i)
		if e.index > applied {
			out.pending = true
			break
		}
		if len(out.ch.Events) == max {
			// Cut before e's entry: the caller continues from the
			// index before it.
			last := e.index - 1
			for len(out.ch.Events) > 0 && out.ch.Events[len(out.ch.Events)-1].Index > last {
				out.ch.Events = out.ch.Events[:len(out.ch.Events)-1]
			}
			if len(out.ch.Events) == 0 {
				// One entry with more events than an answer holds
				// (cannot happen: a Purge has at most
				// linkstore.MaxPurgeItems codes).
				out.ch = shardrpc.Changes{Index: applied, Reset: true}
				return out
			}
			out.ch.Index = last
			break
		}
		out.ch.Events = append(out.ch.Events, shardrpc.ChangeEvent{Index: e.index, Code: e.code})
	}
	return out
}

// feedMachine is the state machine of one group's replica: the node's
// linkstore machine, plus the recording of its change events.
type feedMachine struct {
	m    raftstore.StateMachine
	ring *changeRing
}

// Apply applies cmd, then records the codes it may have changed.
func (f *feedMachine) Apply(tx raftstore.Txn, index uint64, cmd []byte) []byte {
	out := f.m.Apply(tx, index, cmd)
	linkstore.ChangedCodes(cmd, func(code string) { f.ring.add(index, code) })
	return out
}

// feedHub holds the change ring of each open group, by shard.
type feedHub struct {
	mu    sync.Mutex
	rings map[uint64]feedRing
	// stop is closed when the node closes: long polls answer at once.
	stop chan struct{}
}

type feedRing struct {
	g    *raftstore.Group
	ring *changeRing
}

func newFeedHub() *feedHub {
	return &feedHub{rings: make(map[uint64]feedRing), stop: make(chan struct{})}
}

// machine returns the state machine for a group of shard about to open,
// with a new ring; set registers the ring once the group is open.
func (h *feedHub) machine(m raftstore.StateMachine) (*feedMachine, *changeRing) {
	ring := newChangeRing(changeRingSize)
	return &feedMachine{m: m, ring: ring}, ring
}

// set registers the ring of shard's group g, just opened, and starts it at
// the group's applied index: from then on every replica of the group,
// followers too, knows the changes, so a new leader can go on where the
// old one stopped without a reset.
func (h *feedHub) set(shard uint64, g *raftstore.Group, ring *changeRing) {
	if applied, epoch, ok := g.AppliedEpoch(); ok {
		ring.mu.Lock()
		ring.restart(applied, epoch)
		ring.mu.Unlock()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rings[shard] = feedRing{g: g, ring: ring}
}

// ring returns the ring of shard's group g, nil if g is not the open one.
func (h *feedHub) ring(shard uint64, g *raftstore.Group) *changeRing {
	h.mu.Lock()
	defer h.mu.Unlock()
	if fr, ok := h.rings[shard]; ok && fr.g == g {
		return fr.ring
	}
	return nil
}

// close ends every long poll.
func (h *feedHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
}

// changes serves the change feed RPC (shardrpc.PathChanges) at the
// shard's leader.
func (n *Node) changes(ctx *fasthttp.RequestCtx, shard uint64, g *raftstore.Group) {
	since, waitMs, err := shardrpc.DecodeChangesRequest(ctx.PostBody())
	if err != nil {
		badRequest(ctx, err.Error())
		return
	}
	ring := n.feeds.ring(shard, g)
	if ring == nil {
		writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: fmt.Sprintf("node %s's replica of shard %d is reopening", n.self.ID, shard)})
		return
	}
	// The barrier: from here the applied index covers every write
	// acknowledged before the request.
	rctx, cancel := n.requestContext()
	err = g.Read(rctx, raftstore.ReadLinearizable, func(raftstore.Reader) error { return nil })
	cancel()
	if err != nil {
		n.raftError(ctx, shard, "changes", err)
		return
	}
	deadline := time.Now().Add(time.Duration(waitMs) * time.Millisecond)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		applied, epoch, ok := g.AppliedEpoch()
		var rd changesRead
		if ok {
			rd = ring.read(since, applied, epoch, shardrpc.MaxChangeEvents)
			if rd.ch.Reset || len(rd.ch.Events) > 0 || !time.Now().Before(deadline) {
				ctx.SetStatusCode(fasthttp.StatusOK)
				ctx.SetContentType(shardrpc.ContentTypeChanges)
				ctx.SetBody(shardrpc.AppendChanges(nil, since, rd.ch))
				return
			}
		} else if !time.Now().Before(deadline) {
			writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: fmt.Sprintf("node %s's replica of shard %d is restoring a snapshot", n.self.ID, shard)})
			return
		}
		d := time.Until(deadline)
		if !ok || rd.pending {
			d = min(d, pendingPoll)
		}
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-rd.wake: // nil while restoring: the timer decides
		case <-timer.C:
		case <-n.feeds.stop:
			writeError(ctx, shardrpc.ErrorBody{Code: shardrpc.ErrCodeUnavailable, Message: fmt.Sprintf("node %s is shutting down", n.self.ID)})
			return
		}
	}
}
