package clickstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/linkraft/linkraft/clicks"
	"github.com/linkraft/linkraft/raftstore"
)

// testGroup is the group whose data range the tests' transactions use.
const testGroup = 1

// partitionOf places codes by their first byte, so codes sharing a prefix
// share a partition.
func partitionOf(code string) uint32 { return uint32(code[0]) % 4 }

type quietLogger struct{ t testing.TB }

func (l quietLogger) Infof(string, ...any)      {}
func (l quietLogger) Errorf(f string, a ...any) { l.t.Logf(f, a...) }
func (l quietLogger) Fatalf(f string, a ...any) { l.t.Fatalf(f, a...) }

func openDB(t testing.TB) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: quietLogger{t}})
	if err != nil {
		t.Fatalf("open pebble: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close pebble: %v", err)
		}
	})
	return db
}

// apply applies batches in one Pebble batch and commits it.
func apply(t testing.TB, db *pebble.DB, batches ...clicks.Batch) []Outcome {
	t.Helper()
	b := db.NewIndexedBatch()
	var out []Outcome
	for _, x := range batches {
		o, err := Apply(raftstore.NewTxn(b, testGroup), partitionOf, x)
		if err != nil {
			t.Fatalf("apply %s/%d: %v", x.Router, x.Seq, err)
		}
		out = append(out, o)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	return out
}

func query(t testing.TB, db *pebble.DB, code string, from, to clicks.Day) Stats {
	t.Helper()
	st, err := Query(raftstore.NewReader(db, testGroup), partitionOf(code), code, from, to)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	return st
}

const day0 = clicks.Day(20000) // 2024-10-04

var (
	hasher     = clicks.NewVisitorHasher(clicks.VisitorKey("test"))
	classifier = clicks.NewClassifier(0)
)

const (
	uaChrome  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	uaIPhone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
	uaBingBot = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
)

// clickBatch counts clicks with a real Counter and returns shard 1's batch.
func clickBatch(router string, seq uint64, fill func(rec func(code string, day clicks.Day, ip int, ua, ref string))) clicks.Batch {
	c := clicks.NewCounter(func([]byte) uint64 { return 1 })
	fill(func(code string, day clicks.Day, ip int, ua, ref string) {
		c.Record([]byte(code), clicks.ClickInfo{
			Day:      day,
			Referrer: clicks.AppendReferrerHost(nil, []byte(ref)),
			Agent:    classifier.Classify([]byte(ua)),
			Visitor:  hasher.Sum(fmt.Appendf(nil, "10.%d.%d.%d", ip>>16&255, ip>>8&255, ip&255), []byte(ua)),
		})
	})
	return clicks.Batch{Router: router, Seq: seq, Deltas: c.Drain()[1]}
}

func TestApplyMergesAndQueries(t *testing.T) {
	db := openDB(t)
	b1 := clickBatch("r1", 10, func(rec func(string, clicks.Day, int, string, string)) {
		for i := range 30 {
			rec("abcDEF1", day0, i%7, uaChrome, "https://news.example.com/x")
		}
		for i := range 10 {
			rec("abcDEF1", day0+2, i, uaIPhone, "")
		}
		for range 5 {
			rec("abcDEF1", day0, 1, uaBingBot, "")
		}
		rec("other-code", day0, 1, uaChrome, "")
	})
	b2 := clickBatch("r2", 3, func(rec func(string, clicks.Day, int, string, string)) {
		for i := range 20 {
			rec("abcDEF1", day0, 100+i, uaIPhone, "https://t.co/abc")
		}
	})
	if got := apply(t, db, b1, b2); !reflect.DeepEqual(got, []Outcome{Applied, Applied}) {
		t.Fatalf("outcomes %v", got)
	}
	st := query(t, db, "abcDEF1", day0, day0+2)
	if st.TotalClicks != 60 || st.TotalBots != 5 || st.Clicks != 60 || st.Bots != 5 {
		t.Fatalf("totals: %+v", st)
	}
	// Chrome from 7 IPs, iPhone from 10 IPs on day0+2, r2's 20 iPhone IPs.
	if st.Uniques != 37 {
		t.Fatalf("uniques %d, want 37", st.Uniques)
	}
	wantDays := []DayStats{
		{Date: "2024-10-04", Clicks: 50, Bots: 5, Uniques: 27},
		{Date: "2024-10-05"},
		{Date: "2024-10-06", Clicks: 10, Uniques: 10},
	}
	if !reflect.DeepEqual(st.Days, wantDays) {
		t.Fatalf("days:\n got %+v\nwant %+v", st.Days, wantDays)
	}
	wantRefs := []clicks.Count{{Key: "news.example.com", N: 30}, {Key: "t.co", N: 20}, {Key: clicks.DirectKey, N: 10}}
	if !reflect.DeepEqual(st.Referrers, wantRefs) {
		t.Fatalf("referrers %+v", st.Referrers)
	}
	if !reflect.DeepEqual(st.Browsers, []clicks.Count{{Key: "Safari", N: 30}, {Key: "Chrome", N: 30}}) &&
		!reflect.DeepEqual(st.Browsers, []clicks.Count{{Key: "Chrome", N: 30}, {Key: "Safari", N: 30}}) {
		t.Fatalf("browsers %+v", st.Browsers)
	}
	if !reflect.DeepEqual(st.Devices, []clicks.Count{{Key: "Desktop", N: 30}, {Key: "Mobile", N: 30}}) {
		t.Fatalf("devices %+v", st.Devices)
	}
	// Ranges: one day, and a code without clicks.
	if one := query(t, db, "abcDEF1", day0+1, day0+2); one.Clicks != 10 || len(one.Days) != 2 || one.TotalClicks != 60 {
		t.Fatalf("one day: %+v", one)
	}
	if none := query(t, db, "nothing", day0, day0); none.Clicks != 0 || none.TotalClicks != 0 || len(none.Days) != 1 || none.Referrers == nil {
		t.Fatalf("no clicks: %+v", none)
	}
	if o := query(t, db, "other-code", day0, day0); o.Clicks != 1 || o.Uniques != 1 {
		t.Fatalf("other code: %+v", o)
	}
}

func TestDuplicateFlushNotCounted(t *testing.T) {
	db := openDB(t)
	b := clickBatch("r1", 5, func(rec func(string, clicks.Day, int, string, string)) {
		for i := range 10 {
			rec("abcDEF1", day0, i, uaChrome, "")
		}
	})
	older := clickBatch("r1", 4, func(rec func(string, clicks.Day, int, string, string)) {
		rec("abcDEF1", day0, 99, uaChrome, "")
	})
	other := clickBatch("r2", 5, func(rec func(string, clicks.Day, int, string, string)) {
		rec("abcDEF1", day0, 50, uaChrome, "")
	})
	if got := apply(t, db, b); got[0] != Applied {
		t.Fatal(got)
	}
	// The same batch again (in a later Raft batch and in the same one),
	// an older one, and the same sequence from another router.
	if got := apply(t, db, b, older, other, b); !reflect.DeepEqual(got, []Outcome{Duplicate, Duplicate, Applied, Duplicate}) {
		t.Fatalf("outcomes %v", got)
	}
	if st := query(t, db, "abcDEF1", day0, day0); st.Clicks != 11 || st.TotalClicks != 11 {
		t.Fatalf("clicks %d total %d, want 11", st.Clicks, st.TotalClicks)
	}
}

func TestBotsExcluded(t *testing.T) {
	db := openDB(t)
	apply(t, db, clickBatch("r1", 1, func(rec func(string, clicks.Day, int, string, string)) {
		for i := range 8 {
			rec("abcDEF1", day0, i, uaBingBot, "https://x.com/")
			rec("abcDEF1", day0, i, "curl/8.0", "")
		}
		rec("abcDEF1", day0, 1, uaChrome, "")
	}))
	st := query(t, db, "abcDEF1", day0, day0)
	if st.Clicks != 1 || st.Bots != 16 || st.Uniques != 1 || st.TotalClicks != 1 || st.TotalBots != 16 {
		t.Fatalf("%+v", st)
	}
	if !reflect.DeepEqual(st.Referrers, []clicks.Count{{Key: clicks.DirectKey, N: 1}}) {
		t.Fatalf("bot referrers counted: %+v", st.Referrers)
	}
}

func TestUniquesApproximate(t *testing.T) {
	db := openDB(t)
	const visitors = 20000
	// Three routers, overlapping visitor sets, over two days.
	for r := range 3 {
		apply(t, db, clickBatch(fmt.Sprint("r", r), 1, func(rec func(string, clicks.Day, int, string, string)) {
			for i := r * visitors / 4; i < r*visitors/4+visitors/2; i++ {
				rec("abcDEF1", day0+clicks.Day(i%2), i, uaChrome, "")
			}
		}))
	}
	st := query(t, db, "abcDEF1", day0, day0+1)
	want := float64(visitors)
	// 1.04/sqrt(4096) = 1.6 % standard error; allow 4 sigma.
	if e := math.Abs(float64(st.Uniques)-want) / want; e > 0.065 {
		t.Fatalf("uniques %d, want %v within 6.5%% (error %.3f)", st.Uniques, want, e)
	}
	if st.Clicks != 3*visitors/2 {
		t.Fatalf("clicks %d", st.Clicks)
	}
	t.Logf("uniques %d of %d (error %.2f%%)", st.Uniques, visitors, 100*(float64(st.Uniques)-want)/want)
}

func TestQueryRange(t *testing.T) {
	db := openDB(t)
	for _, c := range []struct{ from, to clicks.Day }{{day0 + 1, day0}, {day0, day0 + MaxRangeDays}} {
		if _, err := Query(raftstore.NewReader(db, testGroup), 0, "abc", c.from, c.to); !errors.Is(err, ErrRange) {
			t.Errorf("range %v..%v: %v", c.from, c.to, err)
		}
	}
	if _, err := Query(raftstore.NewReader(db, testGroup), 0, "a\x00b", day0, day0); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad code: %v", err)
	}
	// A code's days are not confused with another code that extends it.
	apply(t, db, clickBatch("r1", 1, func(rec func(string, clicks.Day, int, string, string)) {
		rec("abcd", day0, 1, uaChrome, "")
		rec("abc", day0, 1, uaChrome, "")
		rec("abc0", day0, 1, uaChrome, "")
		rec("abc", day0+MaxRangeDays-1, 1, uaChrome, "")
	}))
	if st := query(t, db, "abc", day0, day0+MaxRangeDays-1); st.Clicks != 2 || len(st.Days) != MaxRangeDays {
		t.Fatalf("%d clicks, %d days", st.Clicks, len(st.Days))
	}
}

func TestInvalidBatchWritesNothing(t *testing.T) {
	db := openDB(t)
	good := clicks.Delta{Code: "abc", Day: day0, Clicks: 1}
	bad := []clicks.Batch{
		{Router: "", Seq: 1, Deltas: []clicks.Delta{good}},
		{Router: "r1", Seq: 0, Deltas: []clicks.Delta{good}},
		{Router: "r1", Seq: 1, Deltas: []clicks.Delta{good, {Code: "a/b", Day: day0, Clicks: 1}}},
		{Router: "r1", Seq: 1, Deltas: []clicks.Delta{good, {Code: "abd", Day: day0, Clicks: 1, Visitors: []byte{1, 2, 3}}}},
		{Router: "r1", Seq: 1, Deltas: []clicks.Delta{good, {Code: "abd", Day: day0, Clicks: 1, Visitors: sketchOfPrecision(t, 14)}}},
	}
	for i, x := range bad {
		b := db.NewIndexedBatch()
		if _, err := Apply(raftstore.NewTxn(b, testGroup), partitionOf, x); !errors.Is(err, ErrInvalid) {
			t.Errorf("batch %d: %v", i, err)
		}
		if b.Count() != 0 {
			t.Errorf("batch %d: %d writes", i, b.Count())
		}
		_ = b.Close()
	}
}

func sketchOfPrecision(t *testing.T, p uint8) []byte {
	t.Helper()
	c := clicks.NewCounter(func([]byte) uint64 { return 1 })
	c.Record([]byte("x"), clicks.ClickInfo{Day: 1, Visitor: 1, Agent: clicks.Agent{Browser: "b", OS: "o", Device: "d"}})
	sk := c.Drain()[1][0].Visitors
	out := bytes.Clone(sk)
	out[1] = p // a valid sparse sketch of another precision
	return out
}

func TestDeterministicAcrossReplicas(t *testing.T) {
	var batches []clicks.Batch
	for r := range 2 {
		for s := range 5 {
			batches = append(batches, clickBatch(fmt.Sprint("r", r), uint64(s+1), func(rec func(string, clicks.Day, int, string, string)) {
				for i := range 3000 {
					ua := []string{uaChrome, uaIPhone, uaBingBot}[i%3]
					rec(fmt.Sprintf("code%d", i%13), day0+clicks.Day(i%3), i*(s+1)+r, ua, fmt.Sprintf("https://h%d.example/", i%50))
				}
			}))
		}
	}
	// Replica a applies one batch per Raft batch, replica b all at once
	// and every one of them twice.
	a, b := openDB(t), openDB(t)
	for _, x := range batches {
		apply(t, a, x)
	}
	apply(t, b, append(batches, batches...)...)
	dump := func(db *pebble.DB) [][2][]byte {
		var kv [][2][]byte
		if err := raftstore.NewReader(db, testGroup).Scan(nil, nil, func(k, v []byte) bool {
			kv = append(kv, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			return true
		}); err != nil {
			t.Fatal(err)
		}
		return kv
	}
	da, dbb := dump(a), dump(b)
	if len(da) == 0 || !reflect.DeepEqual(da, dbb) {
		t.Fatalf("replicas differ: %d vs %d keys", len(da), len(dbb))
	}
}

func FuzzDecodeDayRecord(f *testing.F) {
	rec := &dayRecord{clicks: 3, bots: 1, tallies: [4][]clicks.Count{{{Key: "x.com", N: 3}}, nil, {{Key: "iOS", N: 3}}, nil}}
	v, err := appendDayRecord(nil, rec)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v)
	f.Add(appendTotals(nil, totals{clicks: 5}))
	f.Add([]byte{1, 0, 0, 8, 2, 12, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(slices.Concat([]byte{1, 5, 0, 20}, []byte{2, 12, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 1, 9}, []byte{1, 1, 'x', 2, 0, 0, 0}))
	var a applier
	f.Fuzz(func(t *testing.T, b []byte) {
		// The apply path's decoder accepts what decodeDayRecord accepts,
		// and the record it writes back is the one the library-based
		// path wrote (with nothing merged in).
		r, err := decodeDayRecord(b)
		a.visitors.reset()
		own, ownErr := a.decodeDay(bytes.Clone(b))
		if (err == nil) != (ownErr == nil) {
			t.Fatalf("decodeDayRecord error %v, applier.decodeDay error %v", err, ownErr)
		}
		if err == nil {
			want, err := appendDayRecord(nil, r)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			got := binary.AppendUvarint(binary.AppendUvarint([]byte{recordVersion}, own.clicks), own.bots)
			got = a.visitors.appendSketch(got)
			for _, tl := range a.tallies {
				got = clicks.AppendTally(got, tl)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("re-encoded:\n got %x\nwant %x", got, want)
			}
		}
		_, _ = decodeTotals(b)
	})
}
