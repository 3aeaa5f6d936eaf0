package bench

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

func FuzzExtractCode(f *testing.F) {
	for _, s := range []string{
		`{"code":"kP3x9Qa","short_url":"http://x/kP3x9Qa","url":"https://e.com","created_at":"2026-11-27T06:00:00Z"}`,
		`{"code" : "launch-day"}`,
		`{"code":""}`,
		`{"code":"a\"b"}`,
		`{"code":12}`,
		`{"code":"unterminated`,
		`{"error":{"code":"invalid_url","message":"x"}}`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		code, ok := extractCode(body)
		if !ok {
			if code != "" {
				t.Fatalf("not ok but code %q", code)
			}
			return
		}
		if code == "" || strings.ContainsAny(code, `"\`) {
			t.Fatalf("extracted %q", code)
		}
		if !bytes.Contains(body, []byte(`"`+code+`"`)) {
			t.Fatalf("code %q is not a string in the body", code)
		}
	})
}

func FuzzParseCodes(f *testing.F) {
	f.Add("abc\n# comment\n\n  kP3x9Qa  \nlaunch-day\n", 0)
	f.Add("a b\n", 0)
	f.Add("x\ny\nz\n", 2)
	f.Add(strings.Repeat("a", 5000), 0)
	f.Fuzz(func(t *testing.T, in string, limit int) {
		codes, err := parseCodes(strings.NewReader(in), limit)
		if err != nil {
			return
		}
		if limit > 0 && len(codes) > limit {
			t.Fatalf("%d codes, limit %d", len(codes), limit)
		}
		for _, c := range codes {
			if !validCode([]byte(c)) {
				t.Fatalf("invalid code %q accepted", c)
			}
		}
	})
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:8080", "https://example.com", "http://[::1]:80/", "http://x:1/path",
		"ftp://x", "http://", "127.0.0.1:8080", "http://user@x:1", "http://x:1?q"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := parseTarget(s)
		if err != nil {
			return
		}
		host, port, err := net.SplitHostPort(tg.addr)
		if err != nil || port == "" || host == "" {
			t.Fatalf("target %q gave address %q: %v", s, tg.addr, err)
		}
		if tg.host == "" || strings.ContainsAny(tg.host, " \r\n") {
			t.Fatalf("target %q gave host %q", s, tg.host)
		}
	})
}
