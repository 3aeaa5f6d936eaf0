package linkstore

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/linkraft/linkraft/raftstore"
)

// Limits of a list query.
const (
	// MaxListLimit bounds the links one List returns.
	MaxListLimit = 1000
	// MaxListQuery bounds the search text of a list, in bytes.
	MaxListQuery = 256
	// DefaultListScan is the number of index entries a List examines
	// before it stops with a Frontier (ListQuery.MaxScan): each costs a
	// record read, so it bounds a search that few links match.
	DefaultListScan = 5_000
)

// ListQuery asks for links of a shard's partitions, newest first.
type ListQuery struct {
	// Partitions are the partitions to list (the shard's).
	Partitions []uint32
	// All lists every link; otherwise only Owner's (Owner must not be
	// empty: links without an owner are listed with All).
	All   bool
	Owner string
	// After, if set, lists only links after this position (a cursor).
	After *Position
	// Query, if not empty, keeps the links whose code, URL or title
	// contains it, case-insensitively.
	Query string
	// Tag, if not empty, keeps the links with this exact tag.
	Tag string
	// Limit is the number of links wanted, 1 to MaxListLimit.
	Limit int
	// MaxScan bounds the index entries examined (0: DefaultListScan).
	MaxScan int
}

// ListPage is the answer of List.
type ListPage struct {
	// Records are the matching links in list order, at most Limit.
	Records []Record
	// More is true when List stopped because it had Limit links: there
	// may be more after the last one.
	More bool
	// Frontier is set when List stopped because it examined MaxScan
	// entries: every link up to and including Frontier was examined, none
	// after it.
	Frontier *Position
}

// List reads a page of links from the list indexes of q.Partitions: a
// k-way merge of the partitions' indexes (each newest first), filtered by
// q.Query and q.Tag. It reads through r only.
func List(r raftstore.Reader, q ListQuery) (ListPage, error) {
	if q.Limit < 1 || q.Limit > MaxListLimit {
		return ListPage{}, fmt.Errorf("linkstore: list limit %d is outside [1, %d]", q.Limit, MaxListLimit)
	}
	if !q.All && (q.Owner == "" || len(q.Owner) > MaxOwnerLength) {
		return ListPage{}, fmt.Errorf("linkstore: list of owner %q: an owner of 1 to %d bytes, or All", q.Owner, MaxOwnerLength)
	}
	if q.MaxScan <= 0 {
		q.MaxScan = DefaultListScan
	}
	query := strings.ToLower(q.Query)
	h := make(cursorHeap, 0, len(q.Partitions))
	// The first read of each partition is small: a page usually takes a
	// few links from each of many partitions. A partition that gives more
	// reads bigger chunks (fill doubles it).
	first := min(maxListChunk, 2+q.Limit/max(len(q.Partitions), 1))
	for _, p := range q.Partitions {
		c := &partCursor{r: r, p: p, prefix: indexPrefix(nil, p, q.Owner, q.All), chunk: first}
		if q.After != nil {
			c.from = appendIndexEntry(slices.Clip(c.prefix), q.After.CreatedAtMs, q.After.Code)
			c.from = append(c.from, 0) // just after the position
		} else {
			c.from = slices.Clone(c.prefix)
		}
		if err := c.fill(); err != nil {
			return ListPage{}, err
		}
		if len(c.buf) > 0 {
			h = append(h, c)
		}
	}
	heap.Init(&h)
	var page ListPage
	var last Position
	scanned := 0
	for h.Len() > 0 {
		if len(page.Records) == q.Limit {
			page.More = true
			break
		}
		if scanned == q.MaxScan {
			page.Frontier = &last
			break
		}
		c := h[0]
		pos := c.buf[0]
		c.buf = c.buf[1:]
		scanned++
		last = pos
		rec, err := Get(r, c.p, pos.Code)
		switch {
		case err == nil:
			if rec.matches(query, q.Tag) {
				page.Records = append(page.Records, rec)
			}
		case errors.Is(err, ErrNotFound), errors.Is(err, ErrDeleted):
			// Not indexed by this version's Apply; skip.
		default:
			return ListPage{}, err
		}
		if len(c.buf) == 0 && !c.done {
			if err := c.fill(); err != nil {
				return ListPage{}, err
			}
		}
		if len(c.buf) == 0 {
			heap.Pop(&h)
		} else {
			heap.Fix(&h, 0)
		}
	}
	return page, nil
}

// matches reports whether rec passes a list's filters: lowerQuery (already
// lower case) in its code, URL or title, and tag among its tags.
func (rec Record) matches(lowerQuery, tag string) bool {
	if tag != "" && !slices.Contains(rec.Tags, tag) {
		return false
	}
	if lowerQuery == "" {
		return true
	}
	return strings.Contains(strings.ToLower(rec.Code), lowerQuery) ||
		strings.Contains(strings.ToLower(rec.URL), lowerQuery) ||
		strings.Contains(strings.ToLower(rec.Title), lowerQuery)
}

// maxListChunk bounds how many index entries a partition cursor reads per
// scan.
const maxListChunk = 256

// partCursor reads one partition's index in chunks.
type partCursor struct {
	r      raftstore.Reader
	p      uint32
	prefix []byte
	from   []byte // the next scan starts here
	buf    []Position
	chunk  int // entries the next fill reads
	done   bool
}

// fill reads the next chunk of the index into buf.
func (c *partCursor) fill() error {
	upper := prefixEnd(c.prefix)
	c.buf = c.buf[:0]
	chunk := c.chunk
	c.chunk = min(2*c.chunk, maxListChunk)
	var bad error
	err := c.r.Scan(c.from, upper, func(k, _ []byte) bool {
		rest := k[len(c.prefix):]
		if len(rest) < 9 {
			bad = fmt.Errorf("%w: list index key %x", ErrMalformed, k)
			return false
		}
		c.buf = append(c.buf, Position{CreatedAtMs: createdOf(binary.BigEndian.Uint64(rest)), Code: string(rest[8:])})
		if len(c.buf) == chunk {
			c.from = append(append(c.from[:0], k...), 0)
			return false
		}
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return fmt.Errorf("linkstore: list partition %d: %w", c.p, err)
	}
	if len(c.buf) < chunk {
		c.done = true
	}
	return nil
}

// prefixEnd returns the smallest key after every key with prefix p (p is
// never all 0xff: it starts with a partition and a kind byte below 0xff).
func prefixEnd(p []byte) []byte {
	end := slices.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// cursorHeap orders partition cursors by their next position.
type cursorHeap []*partCursor

var _ heap.Interface = (*cursorHeap)(nil)

func (h cursorHeap) Len() int           { return len(h) }
func (h cursorHeap) Less(i, j int) bool { return h[i].buf[0].Before(h[j].buf[0]) }
func (h cursorHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *cursorHeap) Push(x any)        { *h = append(*h, x.(*partCursor)) }
func (h *cursorHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}
