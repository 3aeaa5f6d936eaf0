package router

import (
	"context"
	"sync"
	"time"
)

// eachShard calls fn for every shard concurrently, each with its index in
// shards, under one context bounded by timeout, and returns once every call
// has returned. fn must write only its own results (its index's slot).
func eachShard(timeout time.Duration, shards []uint64, fn func(ctx context.Context, i int, shard uint64)) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, s := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(ctx, i, s)
		}()
	}
	wg.Wait()
}
