package router

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/shardrpc"
)

// checkCreatedJSON fails when appendCreatedJSON's bytes differ from
// json.Marshal of linkJSON's answer.
func checkCreatedJSON(t *testing.T, base string, link shardrpc.Link) {
	t.Helper()
	r := &Router{baseURL: base}
	out := r.linkJSON(link, false)
	now := time.Now().UnixMilli()
	want, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendCreatedJSON(nil, base, link, now); string(got) != string(want) {
		t.Fatalf("link %+v base %q:\n got %s\nwant %s", link, base, got, want)
	}
}

func TestCreatedJSONMatchesMarshal(t *testing.T) {
	created := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC).UnixMilli()
	past := time.Date(2001, 2, 3, 4, 5, 6, 789_000_000, time.UTC).UnixMilli()
	future := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	weird := "a\"b\\c<d>e&f\b\f\n\r\t\x00\x1f\x7f\u2028\u2029é例\xff\xc3(\xe2\x82"
	for _, c := range []struct {
		base string
		link shardrpc.Link
	}{
		{"http://short.test", shardrpc.Link{Code: "aB3dE5g", URL: "https://example.com/", CreatedAtMs: created}},
		{"https://s.example", shardrpc.Link{Code: "my-alias", URL: "https://example.com/?a=1&b=<2>", CreatedAtMs: created, Alias: true, Created: true}},
		{"http://x" + weird, shardrpc.Link{Code: weird, URL: weird, CreatedAtMs: 0, Title: weird, Owner: weird, Tags: []string{weird, "", "t"}}},
		{"http://short.test", shardrpc.Link{Code: "c", URL: "u", CreatedAtMs: created, ExpiresAtMs: past, MaxClicks: 5, RedirectStatus: 307, UpdatedAtMs: past + 1}},
		{"http://short.test", shardrpc.Link{Code: "c", URL: "u", CreatedAtMs: created, ExpiresAtMs: future, Tags: []string{}, UpdatedAtMs: future}},
		{"http://short.test", shardrpc.Link{Code: "c", URL: "u", CreatedAtMs: -62135596800001, ExpiresAtMs: 253402300800000}},
		{"", shardrpc.Link{}},
	} {
		checkCreatedJSON(t, c.base, c.link)
	}
}

// FuzzCreatedJSON checks appendCreatedJSON against json.Marshal on
// arbitrary strings and numbers (expiries an hour from now, so that
// "expired" cannot change between the two).
func FuzzCreatedJSON(f *testing.F) {
	f.Add("http://short.test", "aB3dE5g", "https://example.com/?a=1&b=2", "title", "owner", "tag", int64(1764223200000), uint64(0), 0, int64(0), true)
	f.Add("h\xff", "a\u2028", "<>&\"\\\x00", "\xe2\x82", "é", "", int64(-1), uint64(7), 302, int64(1), false)
	f.Fuzz(func(t *testing.T, base, code, url, title, owner, tag string, created int64, maxClicks uint64, status int, updated int64, expiredLink bool) {
		link := shardrpc.Link{Code: code, URL: url, CreatedAtMs: created, MaxClicks: maxClicks, Title: title,
			Owner: owner, RedirectStatus: status, UpdatedAtMs: updated}
		if tag != "" {
			link.Tags = strings.Split(tag, ",")
		}
		if expiredLink {
			link.ExpiresAtMs = time.Now().Add(-time.Hour).UnixMilli()
		} else {
			link.ExpiresAtMs = time.Now().Add(time.Hour).UnixMilli()
		}
		checkCreatedJSON(t, base, link)
	})
}

func TestWriteCreated(t *testing.T) {
	r, _, _ := newHandlerRouter(t)
	link := shardrpc.Link{Code: "aB3dE5g", URL: "https://example.com/a?b=c&d=e", CreatedAtMs: 1764223200000, Title: "t"}
	var ctx fasthttp.RequestCtx
	write := func() {
		ctx.Response.Reset()
		r.writeCreated(&ctx, fasthttp.StatusCreated, link)
	}
	write()
	want, err := json.Marshal(r.linkJSON(link, false))
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Response.StatusCode() != fasthttp.StatusCreated || string(ctx.Response.Header.ContentType()) != contentJSON ||
		string(ctx.Response.Body()) != string(want)+"\n" {
		t.Fatalf("answer %d %q %s, want 201 %q %s", ctx.Response.StatusCode(), ctx.Response.Header.ContentType(),
			ctx.Response.Body(), contentJSON, want)
	}
	if raceEnabled {
		return
	}
	if n := testing.AllocsPerRun(100, write); n != 0 {
		t.Fatalf("writing a create's answer allocates %.0f times, want 0", n)
	}
}

// BenchmarkCreateAnswer measures writing the 201 answer of a create.
func BenchmarkCreateAnswer(b *testing.B) {
	r, _, _ := newHandlerRouter(b)
	link := shardrpc.Link{Code: "aB3dE5g", URL: "https://example.com/bench/run-1700000000/17-123456",
		CreatedAtMs: time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC).UnixMilli(), Created: true}
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		r.writeCreated(&ctx, fasthttp.StatusCreated, link)
	}
}

// BenchmarkCreateHandler measures POST /api/v1/links through the handler,
// against in-memory shards: authentication, parsing, checks, the create
// call, caching and the answer.
func BenchmarkCreateHandler(b *testing.B) {
	r, _, _ := newHandlerRouter(b)
	var ctx fasthttp.RequestCtx
	body := []byte(benchCreateBody)
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod(fasthttp.MethodPost)
		ctx.Request.SetRequestURI(pathLinks)
		ctx.Request.Header.SetContentType(contentJSON)
		ctx.Request.SetBody(body)
		r.handle(&ctx)
		if ctx.Response.StatusCode() != fasthttp.StatusCreated {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}
