package clickstore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/axiomhq/hyperloglog"
	"github.com/linkraft/linkraft/clicks"
	"github.com/linkraft/linkraft/raftstore"
)

// MaxRangeDays is the longest day range Query answers.
const MaxRangeDays = 366

// ErrRange is wrapped by Query's errors about a bad day range.
var ErrRange = errors.New("clickstore: bad day range")

// Stats is clicks.Stats, the answer of Query.
type Stats = clicks.Stats

// DayStats is clicks.DayStats.
type DayStats = clicks.DayStats

// Query returns code's stats over the days [from, to] (inclusive, at most
// MaxRangeDays) in partition p. A code without clicks has zero stats.
func Query(r raftstore.Reader, p uint32, code string, from, to clicks.Day) (Stats, error) {
	if from > to || uint64(to)-uint64(from) >= MaxRangeDays {
		return Stats{}, fmt.Errorf("%w: %s to %s (at most %d days, from not after to)", ErrRange, from, to, MaxRangeDays)
	}
	st := Stats{Code: code, From: from.String(), To: to.String(),
		Days: make([]DayStats, 0, to-from+1),
		// Empty, not null, in JSON.
		Referrers: []clicks.Count{}, Browsers: []clicks.Count{}, OSes: []clicks.Count{}, Devices: []clicks.Count{},
	}
	if !ValidCode(code) {
		return Stats{}, fmt.Errorf("%w: code %q", ErrInvalid, code)
	}
	switch v, err := r.Get(TotalKey(p, code)); {
	case err == nil:
		t, err := decodeTotals(v)
		if err != nil {
			return Stats{}, fmt.Errorf("clickstore: query %q: %w", code, err)
		}
		st.TotalClicks, st.TotalBots = t.clicks, t.bots
	case !errors.Is(err, raftstore.ErrNotFound):
		return Stats{}, fmt.Errorf("clickstore: query %q: read totals: %w", code, err)
	}

	var (
		union   *hyperloglog.Sketch
		tallies [4][]clicks.Count
		decErr  error
		next    = from
	)
	lower := appendDayKey(nil, p, code, uint32(from))
	upper := appendDayKey(nil, p, code, uint32(to)+1)
	if to == clicks.Day(^uint32(0)) {
		upper = append(appendDayPrefix(nil, p, code)[:5+len(code)], 0x01)
	}
	prefixLen := len(lower) - 4
	err := r.Scan(lower, upper, func(k, v []byte) bool {
		if len(k) != prefixLen+4 {
			decErr = fmt.Errorf("%w: day key of %d bytes", ErrMalformed, len(k))
			return false
		}
		day := clicks.Day(binary.BigEndian.Uint32(k[prefixLen:]))
		rec, err := decodeDayRecord(v)
		if err != nil {
			decErr = err
			return false
		}
		for ; next < day; next++ {
			st.Days = append(st.Days, DayStats{Date: next.String()})
		}
		ds := DayStats{Date: day.String(), Clicks: rec.clicks, Bots: rec.bots}
		if rec.visitors != nil {
			ds.Uniques = rec.visitors.Estimate()
			if union == nil {
				union = rec.visitors
			} else if err := union.Merge(rec.visitors); err != nil {
				decErr = err
				return false
			}
		}
		st.Days = append(st.Days, ds)
		next = day + 1
		st.Clicks += rec.clicks
		st.Bots += rec.bots
		for i := range tallies {
			tallies[i] = append(tallies[i], rec.tallies[i]...)
		}
		return true
	})
	if err == nil {
		err = decErr
	}
	if err != nil {
		return Stats{}, fmt.Errorf("clickstore: query %q: %w", code, err)
	}
	for ; next <= to && next >= from; next++ {
		st.Days = append(st.Days, DayStats{Date: next.String()})
		if next == clicks.Day(^uint32(0)) {
			break
		}
	}
	if union != nil {
		st.Uniques = union.Estimate()
	}
	for i, dst := range [...]*[]clicks.Count{&st.Referrers, &st.Browsers, &st.OSes, &st.Devices} {
		if len(tallies[i]) > 0 {
			*dst = clicks.TopCounts(tallies[i], clicks.MaxTallyKeys)
		}
	}
	return st, nil
}
