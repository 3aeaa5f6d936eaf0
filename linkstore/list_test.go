package linkstore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestListMatchesModel pages through List with every filter and compares
// the pages, concatenated, with the live links sorted by hand: newest
// first, ties by code, nothing twice, nothing missing, with cursors from
// full pages and from scan frontiers.
func TestListMatchesModel(t *testing.T) {
	rg := testRing(t, 7, 16)
	rep := newReplica(t, rg)
	rnd := rand.New(rand.NewPCG(7, 8))
	owners := []string{"", "alice", "bob"}
	var live []Record
	for i := range 600 {
		p := uint32(rnd.IntN(16))
		c := Create{
			Partition: p, URL: fmt.Sprintf("https://list.example/%d/Path", i),
			CreatedAtMs: int64(1000 + rnd.IntN(200)), // many equal times: ties by code
			Owner:       owners[rnd.IntN(3)],
		}
		if rnd.IntN(3) == 0 {
			c.Title = fmt.Sprintf("Title %d NEEDLE", i)
		}
		if rnd.IntN(4) == 0 {
			c.Tags = []string{"t" + fmt.Sprint(rnd.IntN(3)), "x"}
		}
		if rnd.IntN(10) == 0 {
			c.Alias = fmt.Sprintf("alias-%d", i)
			c.Partition = rg.PartitionOfCode(c.Alias)
		}
		res := rep.create(c)
		if res.Status != ResultCreated {
			t.Fatalf("create %d: %+v", i, res)
		}
		live = append(live, res.Record)
	}
	// Delete a tenth: they leave the indexes.
	for i := 0; i < len(live); i += 10 {
		rec := live[i]
		if res := rep.del(Delete{Partition: rg.PartitionOfCode(rec.Code), Code: rec.Code}); res.Status != ResultDeleted {
			t.Fatalf("delete: %+v", res)
		}
		live[i] = Record{}
	}
	live = slices.DeleteFunc(live, func(r Record) bool { return r.Code == "" })
	slices.SortFunc(live, func(a, b Record) int {
		return Position{a.CreatedAtMs, a.Code}.Compare(Position{b.CreatedAtMs, b.Code})
	})
	parts := make([]uint32, 16)
	for i := range parts {
		parts[i] = uint32(i)
	}
	for _, tc := range []struct {
		name         string
		all          bool
		owner, q, tg string
	}{
		{"all", true, "", "", ""},
		{"alice", false, "alice", "", ""},
		{"bob needle", false, "bob", "needle", ""},
		{"all path case", true, "", "/PATH", ""},
		{"tag t1", true, "", "", "t1"},
		{"alice tag x", false, "alice", "", "x"},
		{"code search", true, "", "alias-", ""},
		{"nobody", false, "carol", "", ""},
	} {
		var want []string
		for _, r := range live {
			if (tc.all || r.Owner == tc.owner) && r.matches(strings.ToLower(tc.q), tc.tg) {
				want = append(want, r.Code)
			}
		}
		for _, sizes := range [][2]int{{7, 0}, {1000, 0}, {50, 13}, {3, 1}} {
			var got []string
			var after *Position
			for pages := 0; ; pages++ {
				if pages > 2000 {
					t.Fatalf("%s %v: no end", tc.name, sizes)
				}
				page, err := List(rep.reader(), ListQuery{Partitions: parts, All: tc.all, Owner: tc.owner, Query: tc.q, Tag: tc.tg, After: after, Limit: sizes[0], MaxScan: sizes[1]})
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Records) > sizes[0] {
					t.Fatalf("%s: %d records for limit %d", tc.name, len(page.Records), sizes[0])
				}
				for _, r := range page.Records {
					got = append(got, r.Code)
				}
				switch {
				case page.Frontier != nil:
					after = page.Frontier
				case page.More:
					last := page.Records[len(page.Records)-1]
					after = &Position{last.CreatedAtMs, last.Code}
				default:
					after = nil
				}
				if after == nil {
					break
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s, limit %d scan %d: %d links, want %d\n got %v\nwant %v", tc.name, sizes[0], sizes[1], len(got), len(want), got, want)
			}
		}
	}
	if _, err := List(rep.reader(), ListQuery{Partitions: parts, All: true, Limit: 0}); err == nil {
		t.Fatal("limit 0 accepted")
	}
	if _, err := List(rep.reader(), ListQuery{Partitions: parts, Limit: 5}); err == nil {
		t.Fatal("a list without owner or All accepted")
	}
}

func TestOrderOf(t *testing.T) {
	times := []int64{-1 << 62, -5, -1, 0, 1, 7, 1_760_000_000_000, 1 << 62}
	for i, a := range times {
		if createdOf(orderOf(a)) != a {
			t.Fatalf("createdOf(orderOf(%d)) = %d", a, createdOf(orderOf(a)))
		}
		for _, b := range times[i+1:] {
			if orderOf(a) <= orderOf(b) {
				t.Fatalf("%d (older) does not sort after %d", a, b)
			}
		}
	}
}

// BenchmarkList reads the first page of 50 (and a page with a search that
// few links match) from a shard of 341 partitions holding 20,000 links.
func BenchmarkList(b *testing.B) {
	rg := testRing(b, 7, 1024)
	rep := newReplica(b, rg)
	parts := make([]uint32, 341)
	for i := range parts {
		parts[i] = uint32(i * 3)
	}
	var cmds [][]byte
	for i := range 20_000 {
		cmds = append(cmds, EncodeCreate(Create{Partition: parts[i%len(parts)], URL: fmt.Sprintf("https://bench.example/list/%d", i),
			CreatedAtMs: int64(1_760_000_000_000 + i), Owner: "alice", Title: fmt.Sprintf("title %d", i)}))
		if len(cmds) == 500 {
			rep.applyBatch(cmds...)
			cmds = cmds[:0]
		}
	}
	for _, bc := range []struct {
		name string
		q    ListQuery
	}{
		{"first50", ListQuery{Owner: "alice", Limit: 50}},
		{"search", ListQuery{Owner: "alice", Limit: 50, Query: "title 1999"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bc.q.Partitions = parts
			b.ReportAllocs()
			for b.Loop() {
				if _, err := List(rep.reader(), bc.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
