package clicks

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/axiomhq/hyperloglog"
)

// BenchmarkCountClick is the whole cost of counting one click the way a
// busy router does: Record of a Zipf-distributed code (s=1.1, as the
// bench harness draws) out of many, with direct and referred clicks from
// several visitors, and a Drain every flushEvery clicks, so the flush's
// share is in the per-click cost. With 20,000 codes the counter's working
// set is far larger than the CPU caches, unlike BenchmarkRecord's 200.
func BenchmarkCountClick(b *testing.B) {
	for _, bc := range []struct {
		codes, flushEvery int
	}{{200, 40_000}, {20_000, 40_000}, {100_000, 40_000}} {
		b.Run(fmt.Sprintf("codes=%d", bc.codes), func(b *testing.B) {
			c := NewCounter(func(code []byte) uint64 { return uint64(code[0]) % 3 })
			h := NewVisitorHasher(VisitorKey("k"))
			agents := []Agent{classifier.Classify([]byte(uaChrome)), classifier.Classify([]byte(uaIPhone))}
			refs := [][]byte{nil, nil, nil, []byte("news.example.org"), []byte("t.co")}
			codes := make([][]byte, bc.codes)
			for i := range codes {
				codes[i] = fmt.Appendf(nil, "c%06d", i)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			zipf := rand.NewZipf(rng, 1.1, 1, uint64(bc.codes-1))
			const draws = 1 << 16
			picks := make([]int32, draws)
			infos := make([]ClickInfo, 64)
			for i := range picks {
				picks[i] = int32(zipf.Uint64())
			}
			for i := range infos {
				a := agents[i%len(agents)]
				infos[i] = ClickInfo{Day: 20000, Referrer: refs[i%len(refs)], Agent: a,
					Visitor: h.SumHash(fmt.Appendf(nil, "10.0.%d.%d", i/7, i), a.UAHash)}
			}
			// Warm: every code in both of its stripe's maps.
			for range 2 {
				for _, code := range codes {
					c.Record(code, infos[0])
				}
				c.Drain()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				c.Record(codes[picks[i%draws]], infos[i%len(infos)])
				if i%bc.flushEvery == bc.flushEvery-1 {
					c.Drain()
				}
			}
		})
	}
}

// TestCounterMatchesModel records random clicks (codes, two days, direct and
// referred, several agent classes, bots, repeat visitors) over several
// drains and checks every delta against a plain model of what was
// recorded: clicks, bots, each tally (more referrer hosts than a tally
// scans before it switches to its map), and the unique visitors of the
// sketch. It also checks that the deltas of one drain do not share
// memory: changing one delta's tallies or sketch leaves every other delta
// as it was.
func TestCounterMatchesModel(t *testing.T) {
	type key struct {
		code string
		day  Day
	}
	type model struct {
		clicks, bots                       uint64
		referrers, browsers, oses, devices map[string]uint64
		visitors                           map[uint64]bool
	}
	c := NewCounter(func(code []byte) uint64 { return uint64(code[1]) % 3 })
	agents := []Agent{
		{Browser: "Chrome", OS: "Windows", Device: "Desktop"},
		{Browser: "Safari", OS: "iOS", Device: "Mobile"},
		{Browser: "Firefox", OS: "Linux", Device: "Desktop"},
		{Browser: UnknownKey, OS: UnknownKey, Device: UnknownKey},
	}
	rng := rand.New(rand.NewPCG(7, 9))
	for round := range 4 {
		want := map[key]*model{}
		for range 20_000 {
			ci := rng.IntN(300)
			code := fmt.Sprintf("c%03d", ci)
			k := key{code, Day(20_000 + rng.IntN(2))}
			m := want[k]
			if m == nil {
				m = &model{referrers: map[string]uint64{}, browsers: map[string]uint64{}, oses: map[string]uint64{},
					devices: map[string]uint64{}, visitors: map[uint64]bool{}}
				want[k] = m
			}
			a := agents[rng.IntN(len(agents))]
			// Codes with 1, 2, 4 and 5 possible visitors (around the
			// counter's in-place limit) and with 40.
			pool := []int{1, 2, smallVisitors, smallVisitors + 1, 40}[ci%5]
			info := ClickInfo{Day: k.day, Agent: a, Visitor: uint64(1+rng.IntN(pool)) * 0x9e3779b97f4a7c15}
			if rng.IntN(10) == 0 {
				info.Agent.Bot = true
				m.bots++
				c.Record([]byte(code), info)
				continue
			}
			ref := DirectKey
			if n := rng.IntN(3 * smallTally); n < 2*smallTally {
				ref = fmt.Sprintf("h%d.example", n)
				info.Referrer = []byte(ref)
			}
			m.clicks++
			m.referrers[ref]++
			m.browsers[a.Browser]++
			m.oses[a.OS]++
			m.devices[a.Device]++
			m.visitors[info.Visitor] = true
			c.Record([]byte(code), info)
		}
		got := c.Drain()
		var all []Delta
		for shard, ds := range got {
			for _, d := range ds {
				if uint64(d.Code[1])%3 != shard {
					t.Fatalf("round %d: %s under shard %d", round, d.Code, shard)
				}
				all = append(all, d)
			}
		}
		if len(all) != len(want) {
			t.Fatalf("round %d: %d deltas, want %d", round, len(all), len(want))
		}
		tallyOf := func(cs []Count) map[string]uint64 {
			out := map[string]uint64{}
			for _, c := range cs {
				out[c.Key] += c.N
			}
			return out
		}
		check := func(d Delta) {
			t.Helper()
			m := want[key{d.Code, d.Day}]
			if m == nil {
				t.Fatalf("round %d: unexpected delta %s/%d", round, d.Code, d.Day)
			}
			if d.Clicks != m.clicks || d.Bots != m.bots {
				t.Fatalf("round %d: %s/%d clicks %d bots %d, want %d and %d", round, d.Code, d.Day, d.Clicks, d.Bots, m.clicks, m.bots)
			}
			for name, pair := range map[string][2]map[string]uint64{
				"referrers": {tallyOf(d.Referrers), m.referrers}, "browsers": {tallyOf(d.Browsers), m.browsers},
				"oses": {tallyOf(d.OSes), m.oses}, "devices": {tallyOf(d.Devices), m.devices},
			} {
				if !reflect.DeepEqual(pair[0], pair[1]) {
					t.Fatalf("round %d: %s/%d %s %v, want %v", round, d.Code, d.Day, name, pair[0], pair[1])
				}
			}
			var sk hyperloglog.Sketch
			if err := sk.UnmarshalBinary(d.Visitors); err != nil {
				t.Fatalf("round %d: %s/%d sketch: %v", round, d.Code, d.Day, err)
			}
			if e := sk.Estimate(); e != uint64(len(m.visitors)) {
				t.Fatalf("round %d: %s/%d uniques %d, want %d", round, d.Code, d.Day, e, len(m.visitors))
			}
			// Byte for byte the sketch of inserting every visitor into a
			// new sketch.
			ref := newSketch()
			for v := range m.visitors {
				ref.InsertHash(v)
			}
			ref.Estimate()
			if b, err := ref.AppendBinary(nil); err != nil || !bytes.Equal(b, d.Visitors) {
				t.Fatalf("round %d: %s/%d sketch %x, want %x (%v)", round, d.Code, d.Day, d.Visitors, b, err)
			}
		}
		for _, d := range all {
			check(d)
		}
		// Scribble over the first delta's slices: no other delta changes.
		first := all[0]
		for _, cs := range [][]Count{first.Referrers, first.Browsers, first.OSes, first.Devices} {
			for i := range cs {
				cs[i] = Count{Key: "scribbled", N: 1 << 40}
			}
		}
		for i := range first.Visitors {
			first.Visitors[i] = 0xff
		}
		for _, d := range all[1:] {
			check(d)
		}
	}
}

// TestDirectPastKeyCap: with more referrer hosts in one interval than a
// tally keeps keys for, the direct clicks still come out under DirectKey,
// and the tally's total is every human click.
func TestDirectPastKeyCap(t *testing.T) {
	c := NewCounter(func([]byte) uint64 { return 1 })
	a := Agent{Browser: "b", OS: "o", Device: "d"}
	for i := range 2 * maxCounterKeys {
		c.Record([]byte("abc"), ClickInfo{Day: 1, Referrer: fmt.Appendf(nil, "h%d.example", i), Agent: a, Visitor: uint64(i)})
	}
	for i := range 7 {
		c.Record([]byte("abc"), ClickInfo{Day: 1, Agent: a, Visitor: uint64(i)})
	}
	d := c.Drain()[1][0]
	var direct, total uint64
	for _, x := range d.Referrers {
		total += x.N
		if x.Key == DirectKey {
			direct = x.N
		}
	}
	if direct != 7 || total != 2*maxCounterKeys+7 || len(d.Referrers) > MaxTallyKeys {
		t.Fatalf("direct %d, total %d in %d keys: %v", direct, total, len(d.Referrers), d.Referrers)
	}
}
