package router

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/shardrpc"
)

// BenchmarkRedirectCachedCounting compares the cached redirect with click
// counting off and on, in one run: one hot code (every request on one
// counter stripe, the worst case) and 200 codes (all cached).
func BenchmarkRedirectCachedCounting(b *testing.B) {
	for _, bc := range []struct {
		name  string
		off   bool
		codes int
	}{{"off/1code", true, 1}, {"on/1code", false, 1}, {"off/200codes", true, 200}, {"on/200codes", false, 200}} {
		b.Run(bc.name, func(b *testing.B) {
			r, fake, code := newClickRouter(b, Options{DisableClicks: bc.off})
			paths := []string{"/" + code}
			for i := 1; i < bc.codes; i++ {
				c := r.codec.Encode(uint64(1_000_000 + i))
				p := r.ring.PartitionOfCode(c)
				if _, err := fake.Create(context.Background(), r.ring.ShardOf(p), shardrpc.CreateRequest{Partition: p, URL: fmt.Sprintf("https://example.com/%d", i), Alias: c}); err != nil {
					b.Fatal(err)
				}
				paths = append(paths, "/"+c)
			}
			var warm fasthttp.RequestCtx
			for range 2 {
				for _, p := range paths {
					redirectRequest(&warm, fasthttp.MethodGet, p)
					r.handle(&warm)
				}
				if err := r.FlushClicks(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			var next atomic.Uint32
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var ctx fasthttp.RequestCtx
				ip := net.IPv4(192, 0, 2, byte(next.Add(1)))
				ctx.Init(&ctx.Request, &net.TCPAddr{IP: ip, Port: 5555}, nil)
				i := int(next.Add(7919))
				for pb.Next() {
					i++
					redirectRequest(&ctx, fasthttp.MethodGet, paths[i%len(paths)])
					r.handle(&ctx)
				}
			})
		})
	}
}

// BenchmarkRedirectServerCounting is the cached redirect's throughput
// through a real server over loopback TCP (client in the same process),
// with click counting off and on, alternating in one run.
func BenchmarkRedirectServerCounting(b *testing.B) {
	for _, bc := range []struct {
		name string
		off  bool
	}{{"off", true}, {"on", false}, {"off#2", true}, {"on#2", false}} {
		b.Run(bc.name, func(b *testing.B) {
			r, _, code := newClickRouter(b, Options{DisableClicks: bc.off})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- r.Serve(ln) }()
			c := &fasthttp.HostClient{
				Addr: ln.Addr().String(), MaxConns: 64, MaxIdleConnDuration: 50 * time.Millisecond,
				// Not fasthttp's default dialer: it starts a goroutine
				// that never stops.
				Dial: func(addr string) (net.Conn, error) { return net.Dial("tcp", addr) },
			}
			b.Cleanup(func() {
				c.CloseIdleConnections()
				_ = r.Shutdown(context.Background())
				<-done
			})
			url := "http://" + ln.Addr().String() + "/" + code
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.SetRequestURI(url)
				req.Header.SetUserAgent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")
				req.Header.SetReferer("https://news.example.org/item?id=1")
				for pb.Next() {
					if err := c.Do(req, resp); err != nil || resp.StatusCode() != 301 {
						b.Errorf("redirect: %d %v", resp.StatusCode(), err)
						return
					}
				}
			})
			b.StopTimer()
		})
	}
}
