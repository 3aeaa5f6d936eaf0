// Package robust holds linkraft's robustness scenarios: a cluster under a
// recorded workload while faults are injected, its history checked by
// package history. See docs/ROBUSTNESS.md.
//
// This file is the workload: clients of the public HTTP API that create
// links (generated and aliases from a small shared pool, so clients race
// for them) and resolve them, recording every operation.
package robust

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/linkraft/linkraft/history"
)

// Workload drives creates and resolves against routers and records them.
// Fill the fields, then call Run and, after healing the cluster, Verify.
type Workload struct {
	// Routers are the base URLs of the routers, e.g. "http://127.0.0.1:8080";
	// each request goes to a random one.
	Routers []string
	// Clients is the number of concurrent clients (default 4).
	Clients int
	// Seed makes the choice of operations reproducible.
	Seed uint64
	// Aliases is the size of the shared alias pool (default 8). Clients
	// race for the aliases of the pool; after 4 alias creates per alias
	// the pool moves on to fresh aliases, so aliases are created all
	// through the run, during faults too.
	Aliases int
	// RequestTimeout bounds one request (default 2 s); a timeout is an
	// unknown outcome.
	RequestTimeout time.Duration
	// Recorder receives every operation (required).
	Recorder *history.Recorder

	mu      sync.Mutex
	acked   []string        // codes acknowledged so far
	tried   map[string]bool // aliases tried
	nextURL int
	aliasN  int // alias creates so far: their number picks the pool
	http    *http.Client
}

func (w *Workload) init() {
	if w.Clients <= 0 {
		w.Clients = 4
	}
	if w.Aliases <= 0 {
		w.Aliases = 8
	}
	if w.RequestTimeout <= 0 {
		w.RequestTimeout = 2 * time.Second
	}
	if w.tried == nil {
		w.tried = make(map[string]bool)
	}
	if w.http == nil {
		w.http = &http.Client{
			Transport: &http.Transport{MaxIdleConnsPerHost: 64},
			// A redirect is the answer of a resolve, not something to follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
}

// Run runs the clients until ctx is done and returns when every client has
// stopped. A request cut short by ctx is recorded with an unknown outcome.
func (w *Workload) Run(ctx context.Context) {
	w.init()
	var wg sync.WaitGroup
	for c := range w.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(w.Seed, uint64(c)))
			for ctx.Err() == nil {
				w.step(ctx, c, rng)
			}
		}()
	}
	wg.Wait()
}

// step issues one random operation as client c.
func (w *Workload) step(ctx context.Context, c int, rng *rand.Rand) {
	switch k := rng.IntN(10); {
	case k < 4:
		w.mu.Lock()
		w.nextURL++
		url := fmt.Sprintf("https://example.com/robust/%d/%d", w.Seed, w.nextURL)
		w.mu.Unlock()
		w.create(ctx, c, rng, history.CreateInput(url))
	case k < 6:
		w.mu.Lock()
		w.nextURL++
		url := fmt.Sprintf("https://example.com/robust/%d/%d", w.Seed, w.nextURL)
		alias := w.alias(w.aliasN/(4*w.Aliases), rng)
		w.aliasN++
		w.tried[alias] = true
		w.mu.Unlock()
		w.create(ctx, c, rng, history.AliasInput(alias, url))
	default:
		w.mu.Lock()
		var code string
		if len(w.acked) > 0 && rng.IntN(4) > 0 {
			code = w.acked[rng.IntN(len(w.acked))]
		} else {
			code = w.alias(max(0, w.aliasN/(4*w.Aliases)-rng.IntN(2)), rng)
		}
		w.mu.Unlock()
		w.resolve(ctx, c, rng, code)
	}
}

// alias returns a random alias of pool generation gen.
func (w *Workload) alias(gen int, rng *rand.Rand) string {
	return fmt.Sprintf("rb-%d-%d-%d", w.Seed%1000000, gen, rng.IntN(w.Aliases))
}

func (w *Workload) router(rng *rand.Rand) string {
	return w.Routers[rng.IntN(len(w.Routers))]
}

type createBody struct {
	URL   string `json:"url"`
	Alias string `json:"alias,omitempty"`
}

type createAnswer struct {
	Code string `json:"code"`
}

// create issues a create and records it.
func (w *Workload) create(ctx context.Context, c int, rng *rand.Rand, in history.Input) {
	body, err := json.Marshal(createBody{URL: in.URL, Alias: in.Alias})
	if err != nil {
		panic(err) // two strings always marshal
	}
	call := w.Recorder.Begin(c, in)
	out := w.doCreate(ctx, w.router(rng), body)
	_ = call.End(out)
	if out.Result == history.ResultOK {
		w.mu.Lock()
		w.acked = append(w.acked, out.Code)
		w.mu.Unlock()
	}
}

func (w *Workload) doCreate(ctx context.Context, base string, body []byte) history.Output {
	ctx, cancel := context.WithTimeout(ctx, w.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/links", bytes.NewReader(body))
	if err != nil {
		return history.Unknown(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.http.Do(req)
	if err != nil {
		return history.Unknown(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return history.Unknown(fmt.Errorf("read answer: %w", err))
	}
	switch {
	case resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK:
		var a createAnswer
		if err := json.Unmarshal(b, &a); err != nil || a.Code == "" {
			return history.Unknown(fmt.Errorf("%d with an unreadable body %q: %v", resp.StatusCode, b, err))
		}
		return history.Created(a.Code)
	case resp.StatusCode == http.StatusConflict:
		return history.AliasTaken()
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return history.Rejected(fmt.Errorf("%d: %s", resp.StatusCode, b))
	default:
		return history.Unknown(fmt.Errorf("%d: %s", resp.StatusCode, b))
	}
}

// resolve issues a resolve of code and records it.
func (w *Workload) resolve(ctx context.Context, c int, rng *rand.Rand, code string) history.Output {
	call := w.Recorder.Begin(c, history.ResolveInput(code))
	out := w.doResolve(ctx, w.router(rng), code)
	_ = call.End(out)
	return out
}

func (w *Workload) doResolve(ctx context.Context, base, code string) history.Output {
	ctx, cancel := context.WithTimeout(ctx, w.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/"+code, nil)
	if err != nil {
		return history.Unknown(err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := w.http.Do(req)
	if err != nil {
		return history.Unknown(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		loc := resp.Header.Get("Location")
		if loc == "" {
			return history.Unknown(fmt.Errorf("%d without a Location", resp.StatusCode))
		}
		return history.Found(loc)
	case resp.StatusCode == http.StatusNotFound:
		return history.NotFound()
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return history.Rejected(fmt.Errorf("%d: %s", resp.StatusCode, b))
	default:
		return history.Unknown(fmt.Errorf("%d: %s", resp.StatusCode, b))
	}
}

// ErrUnverified is returned by Verify when some final resolve never got a
// definite answer.
var ErrUnverified = errors.New("robust: final resolves did not get a definite answer")

// Verify resolves every acknowledged code and every alias tried, as client
// Clients (after the workload's own), retrying an unknown answer until
// ctx is done: these final resolves end the history. Call it after Run
// returned and the faults are healed.
func (w *Workload) Verify(ctx context.Context) error {
	w.init()
	w.mu.Lock()
	set := make(map[string]bool)
	for _, c := range w.acked {
		set[c] = true
	}
	for a := range w.tried {
		set[a] = true
	}
	w.mu.Unlock()
	codes := make([]string, 0, len(set))
	for c := range set {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	rng := rand.New(rand.NewPCG(w.Seed, 1<<32))
	var failed []string
	for _, code := range codes {
		for {
			out := w.resolve(ctx, w.Clients, rng, code)
			if out.Result != history.ResultUnknown {
				break
			}
			select { // the shard may still be electing: retry shortly
			case <-time.After(50 * time.Millisecond):
				continue
			case <-ctx.Done():
			}
			failed = append(failed, code)
			break
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: %d of %d codes, first %s", ErrUnverified, len(failed), len(codes), failed[0])
	}
	return nil
}

// Close releases the workload's idle connections.
func (w *Workload) Close() {
	if w.http != nil {
		w.http.CloseIdleConnections()
	}
}
