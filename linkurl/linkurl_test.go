package linkurl

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	cases := []struct {
		in, want string
	}{
		{"https://example.com/a/long/path?x=1", "https://example.com/a/long/path?x=1"},
		{"HTTPS://Example.COM/Path/Keeps/Case", "https://example.com/Path/Keeps/Case"},
		{"http://example.com", "http://example.com/"},
		{"http://example.com?b=2&a=1", "http://example.com/?b=2&a=1"},
		{"http://example.com#top", "http://example.com/#top"},
		{"https://example.com/app#/route/1", "https://example.com/app#/route/1"},
		{"http://example.com:80/x", "http://example.com/x"},
		{"https://example.com:443/x", "https://example.com/x"},
		{"http://example.com:443/x", "http://example.com:443/x"},
		{"https://example.com:8443/x", "https://example.com:8443/x"},
		{"https://example.com:08443/x", "https://example.com:8443/x"},
		{"https://example.com:0000000443/x", "https://example.com/x"},
		{"http://example.com:/x", "http://example.com/x"},
		{"https://example.com/a%2Fb?q=%41", "https://example.com/a%2Fb?q=%41"},
		{"https://example.com/a/../b/./c", "https://example.com/a/../b/./c"},
		{"https://example.com/café?q=naïve#é", "https://example.com/caf%C3%A9?q=na%C3%AFve#%C3%A9"},
		{"https://münchen.de/", "https://xn--mnchen-3ya.de/"},
		{"https://MÜNCHEN.de/", "https://xn--mnchen-3ya.de/"},
		{"https://bücher.example/", "https://xn--bcher-kva.example/"},
		{"https://例え.テスト/", "https://xn--r8jz45g.xn--zckzah/"},
		{"https://xn--mnchen-3ya.de/", "https://xn--mnchen-3ya.de/"},
		{"https://ｅｘａｍｐｌｅ.com/", "https://ｅｘａｍｐｌｅ.com/"}, // not trivial: left as given
		{"https://☃.net/", "https://☃.net/"},
		{"http://[2001:DB8::1]/", "http://[2001:db8::1]/"},
		{"http://[2001:db8:0:0:0:0:0:1]:8080/", "http://[2001:db8::1]:8080/"},
		{"http://[::1]:80/", "http://[::1]/"},
		{"http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"},
		{"http://my_host.internal/", "http://my_host.internal/"},
		{"https://example.com/?q=\"quoted\"", "https://example.com/?q=\"quoted\""},
	}
	for _, tc := range cases {
		got, err := Normalize(tc.in)
		if err != nil {
			t.Errorf("Normalize(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
		}
		again, err := Normalize(got)
		if err != nil || again != got {
			t.Errorf("Normalize(%q) = %q, %v: not idempotent", got, again, err)
		}
	}
}

func TestNormalizeRefuses(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("a", MaxLength)
	cases := []struct {
		in   string
		want error
	}{
		{"", ErrEmpty},
		{long, ErrTooLong},
		{"https://example.com/" + strings.Repeat("é", 1100), ErrTooLong}, // grows past the limit when escaped
		{"https://example.com/a b", ErrInvalidChars},
		{" https://example.com/", ErrInvalidChars},
		{"https://example.com/\x01", ErrInvalidChars},
		{"https://example.com/\x7f", ErrInvalidChars},
		{"https://example.com/\n", ErrInvalidChars},
		{"https://example.com/\t", ErrInvalidChars},
		{"/just/a/path", ErrScheme},
		{"example.com/path", ErrScheme},
		{"//example.com/path", ErrScheme},
		{"ftp://example.com/file", ErrScheme},
		{"javascript:alert(1)", ErrScheme},
		{"data:text/html,hi", ErrScheme},
		{"1http://example.com/", ErrScheme},
		{"ht tp://example.com/", ErrInvalidChars},
		{"http:example.com", ErrMalformed},
		{"http:/example.com", ErrMalformed},
		{"http:///path", ErrNoHost},
		{"http://", ErrNoHost},
		{"http://:8080/", ErrNoHost},
		{"http://?q", ErrNoHost},
		{"https://user:pass@example.com/", ErrUserInfo},
		{"https://google.com@evil.example/", ErrUserInfo},
		{"http://example.com:99999/", ErrMalformed},
		{"http://example.com:0/", ErrMalformed},
		{"http://example.com:8x/", ErrMalformed},
		{"http://example.com:+80/", ErrMalformed},
		{"http://exa%6dple.com/", ErrMalformed},
		{"http://exa!mple.com/", ErrMalformed},
		{"http://[::1/", ErrMalformed},
		{"http://[::1]x/", ErrMalformed},
		{"http://[1.2.3.4]/", ErrMalformed},
		{"http://[fe80::1%25eth0]/", ErrMalformed},
		{"http://[zz]/", ErrMalformed},
		{"http://ex\xffample.com/", ErrMalformed},
	}
	for _, tc := range cases {
		got, err := Normalize(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("Normalize(%.60q) = %q, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestPunycode(t *testing.T) {
	// Vectors from RFC 3492 section 7.1 and common IDNs.
	cases := map[string]string{
		"münchen":           "mnchen-3ya",
		"bücher":            "bcher-kva",
		"例え":                "r8jz45g",
		"テスト":               "zckzah",
		"ليهمابتكلموشعربي؟": "egbpdaj6bu4bxfgehfvwxn",
		"他们为什么不说中文":         "ihqwcrb4cv8a8dqg056pqjye",
		"почемужеонинеговорятпорусски": "b1abfaaepdrnnbgefbadotcwatmq2g4l",
		"3年b組金八先生": "3b-ww4c5e180e575a65lsy2b",
	}
	for in, want := range cases {
		got, ok := punycode(in)
		if !ok || got != want {
			t.Errorf("punycode(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestNotOwnDomain(t *testing.T) {
	bases := []string{"http://127.0.0.1:8080", "https://Sho.rt", "not a url"}
	refused := []string{
		"http://127.0.0.1:8080/abc",
		"https://127.0.0.1:8080/abc",
		"https://sho.rt/abc",
		"http://sho.rt/",
		"https://SHO.RT:443/x",
	}
	for _, raw := range refused {
		u, err := Normalize(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := NotOwnDomain(u, bases); !errors.Is(err, ErrSelfLink) {
			t.Errorf("NotOwnDomain(%q) = %v, want ErrSelfLink", u, err)
		}
	}
	allowed := []string{
		"http://127.0.0.1:8081/abc",
		"http://127.0.0.1/abc",
		"https://sho.rt.example.com/",
		"https://sho.rt:8443/",
		"https://example.com/?u=http://127.0.0.1:8080/abc",
	}
	for _, raw := range allowed {
		u, err := Normalize(raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := NotOwnDomain(u, bases); err != nil {
			t.Errorf("NotOwnDomain(%q) = %v, want nil", u, err)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		"https://example.com/a/long/path?x=1", "HTTP://EXAMPLE.com:80", "https://münchen.de:0443/ä?ö#ü",
		"http://[2001:DB8::1]:8080/", "http://[::ffff:1.2.3.4]/", "https://例え.テスト/", "https://ｅｘａｍｐｌｅ.com/",
		"javascript:alert(1)", "http:///x", "http://a@b/", "http://a:b:c/", "http://%41/", "https://x.y/%zz#%",
		"http://example.com:00000000080/", "https://a..b/", "https://-.-/", "http://xn--/", "https://ß.de/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out, err := Normalize(raw)
		if err != nil {
			if out != "" {
				t.Fatalf("Normalize(%q) returned %q with error %v", raw, out, err)
			}
			return
		}
		again, err := Normalize(out)
		if err != nil {
			t.Fatalf("Normalize(%q) = %q, which does not normalize: %v", raw, out, err)
		}
		if again != out {
			t.Fatalf("Normalize(%q) = %q, but that normalizes to %q", raw, out, again)
		}
		if len(out) > MaxLength {
			t.Fatalf("Normalize(%q) is %d bytes long", raw, len(out))
		}
		u, err := url.Parse(out)
		if err != nil {
			// net/url is stricter about some escapes than browsers; it
			// must still agree on scheme and host when it parses.
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.User != nil {
			t.Fatalf("Normalize(%q) = %q: scheme %q host %q user %v", raw, out, u.Scheme, u.Host, u.User)
		}
		if !strings.EqualFold(u.Host, Authority(out)) {
			t.Fatalf("Normalize(%q) = %q: net/url host %q, Authority %q", raw, out, u.Host, Authority(out))
		}
		for i := 0; i < len(out); i++ {
			if out[i] <= ' ' || out[i] == 0x7f {
				t.Fatalf("Normalize(%q) = %q holds byte %q", raw, out, out[i])
			}
		}
	})
}
