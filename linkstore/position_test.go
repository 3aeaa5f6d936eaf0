package linkstore

import "testing"

// TestPositionCompare: Compare agrees with Before (newest first, ties by
// code ascending) and is 0 only for the same place.
func TestPositionCompare(t *testing.T) {
	ps := []Position{{200, "a"}, {200, "b"}, {100, "a"}, {100, "z"}, {50, ""}}
	for i, p := range ps {
		for j, q := range ps {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := p.Compare(q); got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", p, q, got, want)
			}
			if p.Before(q) != (want < 0) {
				t.Errorf("%v.Before(%v) = %v, disagrees with the order", p, q, p.Before(q))
			}
		}
	}
}
