package history

import (
	"errors"
	"sort"
	"sync"
	"time"
)

// Recorder collects the operations of concurrent clients. Create it with
// NewRecorder; it is safe for concurrent use.
type Recorder struct {
	start time.Time // carries the monotonic clock reading

	mu      sync.Mutex
	nextID  int
	done    []Op
	pending map[int]*Call
}

// NewRecorder returns a Recorder whose clock starts now.
func NewRecorder() *Recorder {
	return &Recorder{start: time.Now(), pending: make(map[int]*Call)}
}

// Now returns the recorder's clock: monotonic nanoseconds since it started.
func (r *Recorder) Now() int64 { return time.Since(r.start).Nanoseconds() }

// Call is an operation that was invoked and has not returned yet.
type Call struct {
	r  *Recorder
	op Op
}

// Begin records that client invokes an operation now. The client must call
// End on the returned Call when the operation returns. A client issues one
// operation at a time; client IDs are small non-negative integers.
func (r *Recorder) Begin(client int, in Input) *Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &Call{r: r, op: Op{ID: r.nextID, Client: client, In: in, Invoke: r.Now()}}
	r.nextID++
	r.pending[c.op.ID] = c
	return c
}

// ErrEnded is returned by End on a Call that already ended.
var ErrEnded = errors.New("history: call already ended")

// End records that the operation returned now with out. It returns ErrEnded
// if the call had ended already (the second answer is ignored).
func (c *Call) End(out Output) error {
	r := c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pending[c.op.ID]; !ok {
		return ErrEnded
	}
	delete(r.pending, c.op.ID)
	op := c.op
	op.Out = out
	op.Return = r.Now()
	r.done = append(r.done, op)
	return nil
}

// Ops returns a copy of the history so far, ordered by ID. An operation that
// has not returned yet is included with an unknown result and the current
// time as its return: its effect, if any, may show at any later time.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.Now()
	ops := make([]Op, 0, len(r.done)+len(r.pending))
	ops = append(ops, r.done...)
	for _, c := range r.pending {
		op := c.op
		op.Out = Output{Result: ResultUnknown, Error: "still pending when the history was taken"}
		op.Return = now
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].ID < ops[j].ID })
	return ops
}

// Save writes the history so far to path as JSON lines.
func (r *Recorder) Save(path string) error { return Save(path, r.Ops()) }
