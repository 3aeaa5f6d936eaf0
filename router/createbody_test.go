package router

import (
	"reflect"
	"testing"
)

// benchCreateBody is a create body as the bench harness sends it.
const benchCreateBody = `{"url":"https://example.com/bench/run-1700000000/17-123456"}`

// plainCreateBodies take parseCreatePlain's path.
var plainCreateBodies = []string{
	benchCreateBody,
	`{"url": "https://example.com/"}`,
	" \t\r\n{ \"url\" : \"https://example.com/a?b=c&d=<e>\" } \n",
	`{"url": "https://例え.テスト/é", "alias": "my-alias", "reuse": true}`,
	`{"reuse": false, "url": "https://example.com/"}`,
	`{"url": "https://example.com/", "ttl": "72h", "max_clicks": 10}`,
	`{"url": "https://example.com/", "expires_at": "2027-01-31T12:00:00Z", "max_clicks": 0}`,
	`{"url": "https://example.com/", "title": "A é title", "tags": [], "redirect_status": 302}`,
	`{"url": "https://example.com/", "tags": [ "x" , "y" ], "redirect_status": 0}`,
	`{"url": "https://example.com/", "max_clicks": 9999999999999999999}`,
	`{"url": "https://example.com/", "redirect_status": 999999999999999999}`,
	`{"url": "x"}`,
}

// fallbackCreateBodies leave parseCreatePlain's path: errors, and valid
// bodies outside its subset.
var fallbackCreateBodies = []string{
	``, ` `, `null`, `[]`, `{}`, `"x"`, `{"url": ""}`, `{"url": null}`, `{"url": "a", "reuse": null}`,
	`{"url": "a\/b"}`, `{"u\u0072l": "a"}`, `{"url": "a", "url": "b"}`, `{"url": "a"} {}`, `{"url": "a"}x`,
	`{"url": "a",}`, `{"url" "a"}`, `{"url": "a"`, `{"url": "a` + "\x00" + `b"}`, `{"url": "a` + "\xff" + `"}`,
	`{"URL": "a"}`, `{"url": "a", "other": 1}`, `{"url": 42}`, `{"url": "a", "reuse": "true"}`,
	`{"url": "a", "reuse": truex}`, `{"url": "a", "max_clicks": -1}`, `{"url": "a", "max_clicks": 1.0}`,
	`{"url": "a", "max_clicks": 1e3}`, `{"url": "a", "max_clicks": 01}`, `{"url": "a", "max_clicks": 18446744073709551615}`,
	`{"url": "a", "max_clicks": 18446744073709551616}`, `{"url": "a", "redirect_status": -302}`,
	`{"url": "a", "redirect_status": 9223372036854775807}`, `{"url": "a", "tags": null}`, `{"url": "a", "tags": ["x",]}`,
	`{"url": "a", "tags": ["x", 1]}`, `{"url": "a", "tags": "x"}`, `{"url": "a", "title": "\u2028"}`,
	"\ufeff" + `{"url": "a"}`,
}

// checkDecodeCreate fails when decodeCreate answers body otherwise than
// decodeCreateJSON, or parseCreatePlain accepts what decodeCreateJSON
// refuses or decodes otherwise. It reports whether parseCreatePlain took
// the body.
func checkDecodeCreate(t *testing.T, body string) (plain bool) {
	t.Helper()
	wantReq, wantStatus, wantCode, wantMsg := decodeCreateJSON([]byte(body))
	req, status, code, msg := decodeCreate([]byte(body))
	if status != wantStatus || code != wantCode || msg != wantMsg || (status == 0 && !reflect.DeepEqual(req, wantReq)) {
		t.Fatalf("body %q: decodeCreate %d %s %q %+v, encoding/json %d %s %q %+v",
			body, status, code, msg, req, wantStatus, wantCode, wantMsg, wantReq)
	}
	plainReq, ok := parseCreatePlain([]byte(body))
	if ok && (wantStatus != 0 || !reflect.DeepEqual(plainReq, wantReq)) {
		t.Fatalf("body %q: plain parse %+v, encoding/json %d %q %+v", body, plainReq, wantStatus, wantMsg, wantReq)
	}
	return ok
}

func TestDecodeCreatePlainPath(t *testing.T) {
	for _, body := range plainCreateBodies {
		if !checkDecodeCreate(t, body) {
			t.Errorf("body %q left the plain path", body)
		}
	}
	for _, body := range fallbackCreateBodies {
		if checkDecodeCreate(t, body) {
			t.Errorf("body %q took the plain path", body)
		}
	}
}

// FuzzDecodeCreate checks that decodeCreate answers every body exactly as
// encoding/json's decodeCreateJSON does, and that what parseCreatePlain
// accepts is valid and decoded alike.
func FuzzDecodeCreate(f *testing.F) {
	for _, s := range plainCreateBodies {
		f.Add(s)
	}
	for _, s := range fallbackCreateBodies {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		checkDecodeCreate(t, body)
	})
}

func TestDecodeCreateAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates")
	}
	body := []byte(benchCreateBody)
	if n := testing.AllocsPerRun(100, func() { decodeCreate(body) }); n > 1 {
		t.Fatalf("decoding %s allocates %.0f times, want at most 1 (the body's copy)", body, n)
	}
}

// BenchmarkDecodeCreate measures parsing a create body: the common shape
// (a URL alone), and one with every field.
func BenchmarkDecodeCreate(b *testing.B) {
	for _, c := range []struct{ name, body string }{
		{"url", benchCreateBody},
		{"all", `{"url": "https://example.com/a?b=c&d=e", "alias": "my-alias", "ttl": "72h", "max_clicks": 10, "title": "A title", "tags": ["x", "y"], "redirect_status": 302}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			body := []byte(c.body)
			b.ReportAllocs()
			for b.Loop() {
				if _, status, _, msg := decodeCreate(body); status != 0 {
					b.Fatal(msg)
				}
			}
		})
	}
}
