package clicks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/axiomhq/hyperloglog"
	"github.com/cespare/xxhash/v2"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	uaChrome  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
	uaIPhone  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
	uaGoogle  = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	uaCurl    = "curl/8.4.0"
	uaRequest = "python-requests/2.31.0"
)

var classifier = NewClassifier(0)

func TestClassify(t *testing.T) {
	cases := []struct {
		ua                  string
		bot                 bool
		browser, os, device string
	}{
		{uaChrome, false, "Chrome", "Windows", "Desktop"},
		{uaIPhone, false, "Safari", "iOS", "Mobile"},
		{uaGoogle, true, "", "", "Bot"},
		{"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", true, "", "", "Bot"},
		{uaCurl, true, "", "", "Bot"},
		{"Wget/1.21.4", true, "", "", "Bot"},
		{uaRequest, true, "", "", "Bot"},
		{"Go-http-client/1.1", true, "", "", "Bot"},
		{"facebookexternalhit/1.1", true, "", "", "Bot"},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36", true, "", "", "Bot"},
		{"", true, "", "", "Bot"},
		{"   ", true, "", "", "Bot"},
	}
	for _, c := range cases {
		for range 2 { // parsed, then cached
			a := classifier.Classify([]byte(c.ua))
			if a.Bot != c.bot || a.Device != c.device ||
				(c.browser != "" && a.Browser != c.browser) || (c.os != "" && a.OS != c.os) {
				t.Errorf("Classify(%q) = %+v, want bot=%v browser=%q os=%q device=%q", c.ua, a, c.bot, c.browser, c.os, c.device)
			}
		}
	}
}

func TestClassifierBounded(t *testing.T) {
	c := NewClassifier(64)
	if len(c.slots) != 64 {
		t.Fatalf("%d slots", len(c.slots))
	}
	for i := range 1000 {
		ua := fmt.Appendf(nil, "%s %d", uaChrome, i)
		if a := c.Classify(ua); a.Browser != "Chrome" || a.UAHash != xxhash.Sum64(ua) {
			t.Fatalf("classify %d: %+v", i, a)
		}
	}
	n := 0
	for i := range c.slots {
		if c.slots[i].Load() != nil {
			n++
		}
	}
	if n == 0 || n > 64 {
		t.Fatalf("cache holds %d user agents, want 1..64", n)
	}
	// A long user agent is classified but not cached.
	long := []byte(uaChrome + strings.Repeat(" x", maxCachedAgentLen))
	if a := c.Classify(long); a.Browser != "Chrome" {
		t.Fatalf("long: %+v", a)
	}
}

func TestClassifierConcurrent(t *testing.T) {
	c := NewClassifier(16)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				ua := []string{uaChrome, uaIPhone, uaCurl, uaGoogle}[(i+w)%4]
				a := c.Classify([]byte(ua))
				if a.Bot != (ua == uaCurl || ua == uaGoogle) {
					t.Errorf("%q: %+v", ua, a)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestReferrerHost(t *testing.T) {
	cases := map[string]string{
		"https://www.Example.com/path?q=1": "www.example.com",
		"http://user:pw@host.org:8080/x":   "host.org",
		"https://news.ycombinator.com":     "news.ycombinator.com",
		"android-app://com.google.gm/":     "com.google.gm",
		"https://a.b#frag":                 "a.b",
		"":                                 "",
		"example.com/path":                 "",
		"://host":                          "",
		"https:///path":                    "",
		"https://bad_host.com/":            "",
		"https://[::1]:80/":                "",
		"javascript:alert(1)":              "",
	}
	for in, want := range cases {
		if got := string(AppendReferrerHost(nil, []byte(in))); got != want {
			t.Errorf("AppendReferrerHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVisitorHash(t *testing.T) {
	h := NewVisitorHasher(VisitorKey("secret"))
	a := h.Sum([]byte("10.0.0.1"), []byte(uaChrome))
	if a != h.Sum([]byte("10.0.0.1"), []byte(uaChrome)) || a != h.SumHash([]byte("10.0.0.1"), classifier.Classify([]byte(uaChrome)).UAHash) {
		t.Fatal("not deterministic")
	}
	for _, other := range []uint64{
		h.Sum([]byte("10.0.0.2"), []byte(uaChrome)),
		h.Sum([]byte("10.0.0.1"), []byte(uaIPhone)),
		h.Sum([]byte("10.0.0.1C"), []byte("hrome")), // framing
		h.SumHash([]byte("10.0.0.1"), 0),
		NewVisitorHasher(VisitorKey("other")).Sum([]byte("10.0.0.1"), []byte(uaChrome)),
	} {
		if other == a {
			t.Fatal("distinct inputs or keys hash alike")
		}
	}
}

func TestHotPathAllocs(t *testing.T) {
	c := NewCounter(func([]byte) uint64 { return 1 })
	h := NewVisitorHasher(VisitorKey("k"))
	code := []byte("abcDEF1")
	ua := []byte(uaChrome)
	ip := []byte("192.0.2.7")
	ref := []byte("https://news.example.org/item?id=1")
	day := DayOf(time.Now())
	var buf [MaxHostLen]byte
	click := func() {
		info := ClickInfo{
			Day:      day,
			Referrer: AppendReferrerHost(buf[:0], ref),
			Agent:    classifier.Classify(ua),
			Visitor:  h.Sum(ip, ua),
		}
		c.Record(code, info)
	}
	bot := func() { c.Record(code, ClickInfo{Day: day, Agent: classifier.Classify([]byte(uaCurl))}) }
	// Warm both of a stripe's maps.
	for range 2 {
		click()
		bot()
		c.Drain()
	}
	click()
	if n := testing.AllocsPerRun(1000, click); n != 0 {
		t.Errorf("human click: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, bot); n != 0 {
		t.Errorf("bot click: %v allocations, want 0", n)
	}
}

func TestDrain(t *testing.T) {
	shards := map[string]uint64{"aaa": 1, "bbb": 2}
	c := NewCounter(func(code []byte) uint64 { return shards[string(code)] })
	h := NewVisitorHasher(VisitorKey("k"))
	day := Day(20000)
	human := func(code, ip, ref string, d Day) {
		c.Record([]byte(code), ClickInfo{Day: d, Referrer: AppendReferrerHost(nil, []byte(ref)),
			Agent: classifier.Classify([]byte(uaChrome)), Visitor: h.Sum([]byte(ip), []byte(uaChrome))})
	}
	for i := range 100 {
		human("aaa", fmt.Sprint("10.0.0.", i%10), "https://x.com/", day)
	}
	human("aaa", "10.0.0.1", "", day+1)
	for range 5 {
		c.Record([]byte("aaa"), ClickInfo{Day: day, Agent: classifier.Classify([]byte(uaGoogle))})
	}
	human("bbb", "10.0.0.1", "https://y.org", day)

	got := c.Drain()
	if len(got) != 2 || len(got[1]) != 2 || len(got[2]) != 1 {
		t.Fatalf("drain: %+v", got)
	}
	a := got[1][0]
	if a.Code != "aaa" || a.Day != day || a.Clicks != 100 || a.Bots != 5 {
		t.Fatalf("aaa: %+v", a)
	}
	if !reflect.DeepEqual(a.Referrers, []Count{{"x.com", 100}}) || !reflect.DeepEqual(a.Browsers, []Count{{"Chrome", 100}}) ||
		!reflect.DeepEqual(a.OSes, []Count{{"Windows", 100}}) || !reflect.DeepEqual(a.Devices, []Count{{"Desktop", 100}}) {
		t.Fatalf("aaa tallies: %+v", a)
	}
	var sk hyperloglog.Sketch
	if err := sk.UnmarshalBinary(a.Visitors); err != nil {
		t.Fatal(err)
	}
	if e := sk.Estimate(); e != 10 {
		t.Fatalf("uniques %d, want 10", e)
	}
	if b := got[1][1]; b.Day != day+1 || b.Clicks != 1 || !reflect.DeepEqual(b.Referrers, []Count{{DirectKey, 1}}) {
		t.Fatalf("aaa day+1: %+v", b)
	}
	if again := c.Drain(); len(again) != 0 {
		t.Fatalf("second drain: %+v", again)
	}
	// Idle codes are forgotten.
	for range 2*maxIdleFlushes + 2 { // each map is drained every other time
		c.Drain()
	}
	for i := range c.stripes {
		if len(c.stripes[i].cur)+len(c.stripes[i].spare) != 0 {
			t.Fatal("idle codes kept")
		}
	}
}

func TestManyClassesAndReferrers(t *testing.T) {
	c := NewCounter(func([]byte) uint64 { return 1 })
	const n = 3000
	for i := range n {
		c.Record([]byte("abc"), ClickInfo{Day: 1, Referrer: fmt.Appendf(nil, "h%d.example", i%400),
			Agent: Agent{Browser: fmt.Sprint("b", i%50), OS: fmt.Sprint("o", i%7), Device: "d"}, Visitor: uint64(i)})
	}
	d := c.Drain()[1][0]
	sum := func(cs []Count) (s uint64) {
		for _, c := range cs {
			s += c.N
		}
		return s
	}
	for name, cs := range map[string][]Count{"referrers": d.Referrers, "browsers": d.Browsers, "oses": d.OSes, "devices": d.Devices} {
		if sum(cs) != n || len(cs) > MaxTallyKeys {
			t.Errorf("%s: %d keys summing to %d, want <= %d keys summing to %d", name, len(cs), sum(cs), MaxTallyKeys, n)
		}
	}
	if len(d.OSes) != 7 || d.Devices[0] != (Count{"d", n}) {
		t.Errorf("oses %v devices %v", d.OSes, d.Devices)
	}
}

func TestTopCounts(t *testing.T) {
	var in []Count
	for i := range 40 {
		in = append(in, Count{Key: fmt.Sprintf("k%02d", i), N: uint64(i + 1)})
	}
	in = append(in, Count{Key: "k39", N: 1}, Count{Key: OtherKey, N: 7})
	out := TopCounts(in, MaxTallyKeys)
	if len(out) != MaxTallyKeys || out[0] != (Count{OtherKey, 52}) || out[1] != (Count{"k39", 41}) {
		t.Fatalf("top: %+v", out)
	}
	var sum, want uint64
	for _, c := range out {
		sum += c.N
	}
	for i := range 40 {
		want += uint64(i + 1)
	}
	if want += 8; sum != want {
		t.Fatalf("sum %d, want %d", sum, want)
	}
	found := false
	for _, c := range out {
		found = found || c.Key == OtherKey
	}
	if !found {
		t.Fatal("no other key")
	}
}

func TestConcurrentRecord(t *testing.T) {
	c := NewCounter(func(code []byte) uint64 { return uint64(code[0] % 3) })
	var wg sync.WaitGroup
	const workers, per = 8, 2000
	stop := make(chan struct{})
	var drained []map[uint64][]Delta
	var dwg sync.WaitGroup
	dwg.Add(1)
	go func() {
		defer dwg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				drained = append(drained, c.Drain())
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				c.Record(fmt.Appendf(nil, "c%d", (i+w)%50), ClickInfo{Day: 1, Agent: Agent{Browser: "b", OS: "o", Device: "d"}, Visitor: uint64(i)})
			}
		}()
	}
	wg.Wait()
	close(stop)
	dwg.Wait()
	drained = append(drained, c.Drain())
	var total uint64
	for _, m := range drained {
		for _, ds := range m {
			for _, d := range ds {
				total += d.Clicks
			}
		}
	}
	if total != workers*per {
		t.Fatalf("counted %d, want %d", total, workers*per)
	}
}

func sampleBatch() Batch {
	return Batch{Router: "r1", Seq: 1 << 50, Deltas: []Delta{
		{Code: "abc1234", Day: 20000, Clicks: 3, Bots: 1, Visitors: []byte{2, 12, 0, 1, 0, 0, 0, 0},
			Referrers: []Count{{"x.com", 2}, {DirectKey, 1}}, Browsers: []Count{{"Chrome", 3}},
			OSes: []Count{{"Windows", 3}}, Devices: []Count{{"Desktop", 3}}},
		{Code: "my-alias", Day: 20001, Bots: 9},
	}}
}

func TestBatchRoundTrip(t *testing.T) {
	b := sampleBatch()
	enc := AppendBatch(nil, b)
	got, err := DecodeBatch(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, b)
	}
	if _, err := DecodeBatch(append([]byte{9}, enc[1:]...)); !errors.Is(err, ErrUnknownVersion) {
		t.Fatalf("version: %v", err)
	}
	for i := range enc {
		if _, err := DecodeBatch(enc[:i]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
	if _, err := DecodeBatch(append(enc, 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing: %v", err)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(AppendBatch(nil, sampleBatch()))
	f.Add(AppendBatch(nil, Batch{Router: "r", Seq: 1}))
	f.Add([]byte{1, 1, 'r', 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := DecodeBatch(b)
		if err != nil {
			return
		}
		enc := AppendBatch(nil, x)
		y, err := DecodeBatch(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !bytes.Equal(AppendBatch(nil, y), enc) {
			t.Fatal("encoding not stable")
		}
	})
}

// recordingSink keeps what it acknowledged and fails on demand.
type recordingSink struct {
	mu    sync.Mutex
	fail  int // fail this many calls
	calls []Batch
	acked map[uint64][]Batch
}

func (s *recordingSink) FlushClicks(ctx context.Context, shard uint64, b Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, b)
	if s.fail > 0 {
		s.fail--
		return errors.New("shard unavailable")
	}
	if s.acked == nil {
		s.acked = make(map[uint64][]Batch)
	}
	// Like a shard: a (router, seq) applies once. A batch acknowledged
	// under a canceled context (unknown outcome for the flusher) comes
	// again, and must come unchanged.
	for _, prev := range s.acked[shard] {
		if prev.Router == b.Router && prev.Seq == b.Seq {
			if !reflect.DeepEqual(prev, b) {
				panic(fmt.Sprintf("batch %d re-sent with other content", b.Seq))
			}
			return ctx.Err()
		}
	}
	s.acked[shard] = append(s.acked[shard], b)
	return ctx.Err()
}

func (s *recordingSink) total() (n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, bs := range s.acked {
		for _, b := range bs {
			for _, d := range b.Deltas {
				n += d.Clicks
			}
		}
	}
	return n
}

func TestFlusherRetriesSameBatch(t *testing.T) {
	c := NewCounter(func(code []byte) uint64 { return 7 })
	sink := &recordingSink{fail: 2}
	f, err := NewFlusher(FlusherConfig{Router: "r1", Counter: c, Sink: sink, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close(context.Background()) })
	c.Record([]byte("aaa"), ClickInfo{Day: 1, Agent: Agent{Browser: "b", OS: "o", Device: "d"}})
	ctx := context.Background()
	if err := f.Flush(ctx); err == nil {
		t.Fatal("first flush should fail")
	}
	c.Record([]byte("aaa"), ClickInfo{Day: 1, Agent: Agent{Browser: "b", OS: "o", Device: "d"}})
	if err := f.Flush(ctx); err == nil {
		t.Fatal("second flush should fail")
	}
	if st := f.Stats(); st.Pending != 2 || st.Failed != 2 {
		t.Fatalf("stats %+v", st)
	}
	if err := f.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Calls: first batch, first batch again, then first and second.
	if len(sink.calls) != 4 || !reflect.DeepEqual(sink.calls[0], sink.calls[1]) || !reflect.DeepEqual(sink.calls[0], sink.calls[2]) {
		t.Fatalf("calls: %+v", sink.calls)
	}
	acked := sink.acked[7]
	if len(acked) != 2 || acked[0].Seq >= acked[1].Seq || acked[0].Router != "r1" {
		t.Fatalf("acked: %+v", acked)
	}
	if sink.total() != 2 {
		t.Fatalf("total %d", sink.total())
	}
}

func TestFlusherLoopAndClose(t *testing.T) {
	c := NewCounter(func(code []byte) uint64 { return uint64(code[0]) })
	sink := &recordingSink{}
	f, err := NewFlusher(FlusherConfig{Router: "r1", Counter: c, Sink: sink, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.Start()
	const n = 5000
	for i := range n {
		c.Record([]byte{byte('a' + i%5), 'x'}, ClickInfo{Day: 1, Agent: Agent{Browser: "b", OS: "o", Device: "d"}})
	}
	deadline := time.Now().Add(5 * time.Second)
	for sink.total() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("loop never flushed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range n {
		c.Record([]byte{byte('a' + i%5), 'x'}, ClickInfo{Day: 1, Agent: Agent{Browser: "b", OS: "o", Device: "d"}})
	}
	sink.mu.Lock()
	sink.fail = 3 // Close retries through failures
	sink.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sink.total(); got != 2*n {
		t.Fatalf("acknowledged %d clicks, want %d", got, 2*n)
	}
	for shard, bs := range sink.acked {
		for i := 1; i < len(bs); i++ {
			if bs[i].Seq <= bs[i-1].Seq {
				t.Fatalf("shard %d: seq %d after %d", shard, bs[i].Seq, bs[i-1].Seq)
			}
		}
	}
}

func TestFlusherCloseGivesUp(t *testing.T) {
	c := NewCounter(func([]byte) uint64 { return 1 })
	sink := &recordingSink{fail: math.MaxInt}
	f, err := NewFlusher(FlusherConfig{Router: "r1", Counter: c, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	f.Start()
	c.Record([]byte("a"), ClickInfo{Day: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := f.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("close: %v", err)
	}
}

func TestFlusherSplitsAndCaps(t *testing.T) {
	c := NewCounter(func([]byte) uint64 { return 1 })
	sink := &recordingSink{fail: math.MaxInt}
	f, err := NewFlusher(FlusherConfig{Router: "r1", Counter: c, Sink: sink, MaxBatchDeltas: 2, MaxPendingBatches: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		_ = f.Close(ctx)
	})
	for i := range 10 {
		c.Record([]byte{'a' + byte(i)}, ClickInfo{Day: 1, Agent: Agent{Bot: true}})
	}
	_ = f.Flush(context.Background())
	if st := f.Stats(); st.Pending != 3 || st.DroppedClicks != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSplitBatchesBySize(t *testing.T) {
	var deltas []Delta
	for i := range 100 {
		deltas = append(deltas, Delta{Code: fmt.Sprintf("code%03d", i), Day: 1, Clicks: 1, Visitors: make([]byte, 1000)})
	}
	deltas = append(deltas, Delta{Code: "big", Day: 1, Clicks: 1, Visitors: make([]byte, 20000)})
	parts := split(deltas, 50, 10000)
	n := 0
	for _, p := range parts {
		n += len(p)
		enc := AppendBatch(nil, Batch{Router: "r1", Seq: ^uint64(0), Deltas: p})
		if len(p) > 1 && len(enc) > 10000+batchOverhead+2 {
			t.Fatalf("batch of %d deltas encodes to %d bytes", len(p), len(enc))
		}
	}
	if n != len(deltas) || len(parts) < 11 {
		t.Fatalf("%d parts holding %d deltas", len(parts), n)
	}
}

func TestParseDay(t *testing.T) {
	d, err := ParseDay("2026-11-27")
	if err != nil || d.String() != "2026-11-27" || d != DayOf(time.Date(2026, 11, 27, 23, 59, 0, 0, time.UTC)) {
		t.Fatalf("%v %v", d, err)
	}
	for _, bad := range []string{"", "2026-13-01", "1969-12-31", "27.11.2026", "2026-11-27T00:00:00Z"} {
		if _, err := ParseDay(bad); !errors.Is(err, ErrBadDay) {
			t.Errorf("ParseDay(%q): %v", bad, err)
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	c := NewCounter(func([]byte) uint64 { return 1 })
	h := NewVisitorHasher(VisitorKey("k"))
	a := classifier.Classify([]byte(uaChrome))
	info := ClickInfo{Day: 1, Referrer: []byte("news.example.org"), Agent: a, Visitor: h.SumHash([]byte("192.0.2.1"), a.UAHash)}
	codes := make([][]byte, 200)
	for i := range codes {
		codes[i] = fmt.Appendf(nil, "code%03d", i)
		c.Record(codes[i], info)
	}
	c.Drain()
	for _, code := range codes {
		c.Record(code, info)
	}
	c.Drain()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			c.Record(codes[i%len(codes)], info)
		}
	})
}
