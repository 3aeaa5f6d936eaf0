package linkstore

import (
	"errors"
	"fmt"

	"github.com/linkraft/linkraft/clicks"
	"github.com/linkraft/linkraft/clickstore"
	"github.com/linkraft/linkraft/raftstore"
)

// TypeClicks merges a router's click batch (ClickBatch).
const TypeClicks CommandType = 0x02

// ClickBatch merges one flush of a router's click counts into the shard's
// click analytics (package clickstore), at most once per (router,
// sequence). Its payload is the clicks.AppendBatch encoding.
type ClickBatch struct {
	Batch clicks.Batch
}

// Type returns TypeClicks.
func (ClickBatch) Type() CommandType { return TypeClicks }

// AppendClickBatch appends the command encoding of b to dst.
func AppendClickBatch(dst []byte, b clicks.Batch) []byte {
	dst = append(dst, commandVersion, byte(TypeClicks))
	return clicks.AppendBatch(dst, b)
}

func decodeClickBatch(b []byte) (ClickBatch, error) {
	batch, err := clicks.DecodeBatch(b)
	if err != nil {
		return ClickBatch{}, fmt.Errorf("%w: click batch: %w", ErrMalformed, err)
	}
	return ClickBatch{Batch: batch}, nil
}

func (m *Machine) applyClicks(tx raftstore.Txn, c ClickBatch) Result {
	out, err := clickstore.Apply(tx, m.place.PartitionOfCode, c.Batch)
	switch {
	case err == nil && out == clickstore.Duplicate:
		return Result{Status: ResultClicksDuplicate}
	case err == nil:
		return Result{Status: ResultClicksApplied}
	case errors.Is(err, clickstore.ErrInvalid):
		return Result{Status: ResultBadRequest, Reason: err.Error()}
	default:
		must("apply clicks", err)
		return Result{} // not reached
	}
}
