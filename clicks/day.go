package clicks

import (
	"errors"
	"fmt"
	"time"
)

// Day is a UTC calendar day, counted in days since 1970-01-01.
type Day uint32

// DayOf returns the UTC day of t. Times before 1970 are day 0.
func DayOf(t time.Time) Day {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	return Day(s / 86400)
}

// Time returns midnight UTC of d.
func (d Day) Time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// String returns d as YYYY-MM-DD.
func (d Day) String() string { return d.Time().Format(time.DateOnly) }

// ErrBadDay is wrapped by ParseDay's errors.
var ErrBadDay = errors.New("clicks: bad day")

// ParseDay parses a YYYY-MM-DD date (UTC) from 1970-01-01 on.
func ParseDay(s string) (Day, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is not a YYYY-MM-DD date", ErrBadDay, s)
	}
	if t.Unix() < 0 || t.Year() > 9999 {
		return 0, fmt.Errorf("%w: %q is before 1970-01-01", ErrBadDay, s)
	}
	return DayOf(t), nil
}
