package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linkraft/linkraft/proctest"
)

// link is one acknowledged create: the code and the URL it must redirect to.
type link struct{ code, url string }

// createMany creates n links through base with workers concurrent clients;
// every third one carries a custom alias. It fails the test on any error.
func createMany(t *testing.T, base string, n, workers int, prefix string) []link {
	t.Helper()
	var (
		mu    sync.Mutex
		links []link
		wg    sync.WaitGroup
		errs  = make(chan error, workers)
		next  = make(chan int)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				url := fmt.Sprintf("https://example.com/%s/%d?q=%d", prefix, i, rand.Int())
				body := fmt.Sprintf(`{"url": %q}`, url)
				if i%3 == 0 {
					body = fmt.Sprintf(`{"url": %q, "alias": "%s-%d"}`, url, prefix, i)
				}
				st, c, raw, err := shorten(base, body)
				if err == nil && st != http.StatusCreated {
					err = fmt.Errorf("create %d: status %d: %s", i, st, raw)
				}
				if err != nil {
					errs <- err
					return
				}
				if c.URL != url {
					errs <- fmt.Errorf("create %d: url %q, want %q", i, c.URL, url)
					return
				}
				mu.Lock()
				links = append(links, link{c.Code, url})
				mu.Unlock()
			}
		}()
	}
	func() {
		defer close(next)
		for i := 0; i < n; i++ {
			select {
			case next <- i:
			case err := <-errs:
				t.Fatal(err)
				return
			}
		}
	}()
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	seen := make(map[string]string, len(links))
	for _, l := range links {
		if prev, dup := seen[l.code]; dup {
			t.Fatalf("code %s issued twice: %s and %s", l.code, prev, l.url)
		}
		seen[l.code] = l.url
	}
	return links
}

// checkAllRedirect asserts that every link redirects (301) to its URL at base.
func checkAllRedirect(t *testing.T, base string, links []link) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		bad  []string
		jobs = make(chan link)
	)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range jobs {
				st, loc, err := redirectTarget(base, l.code)
				if err != nil || st != http.StatusMovedPermanently || loc != l.url {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%s: status %d location %q err %v (want %q)", l.code, st, loc, err, l.url))
					mu.Unlock()
				}
			}
		}()
	}
	for _, l := range links {
		jobs <- l
	}
	close(jobs)
	wg.Wait()
	if len(bad) > 0 {
		if len(bad) > 10 {
			bad = append(bad[:10], fmt.Sprintf("... and %d more", len(bad)-10))
		}
		t.Fatalf("%d of %d links do not redirect at %s:\n%s", len(bad), len(links), base, strings.Join(bad, "\n"))
	}
}

// TestProcessClusterSurvivesLeaderKill is the end-to-end proof of invariants
// 1-3 with real processes: links created through a router survive a kill -9
// of a shard leader, creates resume within 5 s, the killed node catches up
// after a restart, and a router started later resolves every code.
func TestProcessClusterSurvivesLeaderKill(t *testing.T) {
	c := proctest.New(t, proctest.Options{Routers: 2, ClickFlushInterval: 200 * time.Millisecond})
	nodes := c.NodeIDs()
	for _, id := range nodes {
		c.StartNode(id)
	}
	r1 := c.URL("r1")
	c.StartRouter("r1")
	c.WaitReady("r1")

	links := createMany(t, r1, 2000, 16, "before")
	checkAllRedirect(t, r1, links)

	// kill -9 the leader of shard 1.
	victim := c.WaitLeader(1)
	t.Logf("killing %s, leader of shard 1", victim)
	c.Kill(victim)
	killedAt := time.Now()

	// Creates on the killed leader's shard succeed again within 5 s. The
	// URLs are chosen so that the ring places them on shard 1; every
	// acknowledged one joins the set that must never be lost.
	placement, err := c.Config().Ring()
	if err != nil {
		t.Fatalf("ring: %v", err)
	}
	urlOnShard1 := func(i int) string {
		for j := 0; ; j++ {
			u := fmt.Sprintf("https://example.com/after-kill/%d/%d", i, j)
			if placement.ShardOf(placement.PartitionOfURL(u)) == 1 {
				return u
			}
		}
	}
	var recovered time.Duration
	for i := 0; ; i++ {
		url := urlOnShard1(i)
		st, cr, _, err := shorten(r1, fmt.Sprintf(`{"url": %q}`, url))
		if err == nil && st == http.StatusCreated {
			links = append(links, link{cr.Code, url})
			recovered = time.Since(killedAt)
			break
		}
		if time.Since(killedAt) > 5*time.Second {
			t.Fatalf("creates on shard 1 did not succeed within 5s of its leader's kill (last: status %d, err %v)", st, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("creates succeeded again %s after the kill", recovered)
	links = append(links, createMany(t, r1, 300, 8, "during")...)

	// A router started now has a cold cache: every code must resolve through
	// the shards, with one node down.
	r2 := c.URL("r2")
	c.StartRouter("r2")
	c.WaitReady("r2")
	checkAllRedirect(t, r2, links)
	checkAllRedirect(t, r1, links)

	// Restart the killed node: it catches up with every shard's leader.
	c.StartNode(victim)
	for _, shard := range c.Shards() {
		proctest.Eventually(t, 30*time.Second, fmt.Sprintf("%s to catch up on shard %d", victim, shard), func() error {
			ls, err := c.NodeStatus(c.WaitLeader(shard), shard)
			if err != nil {
				return err
			}
			vs, err := c.NodeStatus(victim, shard)
			if err != nil {
				return err
			}
			if vs.AppliedIndex < ls.AppliedIndex {
				return fmt.Errorf("applied %d < leader's %d", vs.AppliedIndex, ls.AppliedIndex)
			}
			return nil
		})
	}

	// With the restarted node in every quorum (another node killed now),
	// creates still succeed and a router with a cold cache (r2 restarted)
	// still resolves every code.
	other := nodes[(slices.Index(nodes, victim)+1)%len(nodes)]
	t.Logf("killing %s; %s must now be part of every quorum", other, victim)
	c.Kill(other)
	proctest.Eventually(t, 15*time.Second, "a create with the restarted node in the quorum", func() error {
		url := "https://example.com/quorum-check"
		st, cr, raw, err := shorten(r1, fmt.Sprintf(`{"url": %q}`, url))
		if err != nil {
			return err
		}
		if st != http.StatusCreated {
			return fmt.Errorf("status %d: %s", st, raw)
		}
		links = append(links, link{cr.Code, url})
		return nil
	})
	if err := c.Stop("r2"); err != nil {
		t.Error(err)
	}
	c.StartRouter("r2")
	c.WaitReady("r2")
	checkAllRedirect(t, r2, links)

	// A graceful stop of everything left exits cleanly.
	for _, id := range append(c.RouterIDs(), nodes...) {
		if id == other {
			continue
		}
		if err := c.Stop(id); err != nil {
			t.Error(err)
		}
	}
}
