package clicks

import (
	"testing"
)

// FuzzReferrerHost: any Referer value gives a host of [a-z0-9.-] of at
// most MaxHostLen bytes (or nothing), without touching dst's prefix.
func FuzzReferrerHost(f *testing.F) {
	for _, s := range []string{"https://www.Example.com/path?q=1", "http://u:p@h.org:80/", "android-app://com.x/", "", "://", "a://b", "javascript:alert(1)"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, referer []byte) {
		out := AppendReferrerHost([]byte("pre"), referer)
		if string(out[:3]) != "pre" {
			t.Fatalf("prefix changed: %q", out)
		}
		host := out[3:]
		if len(host) > MaxHostLen {
			t.Fatalf("host of %d bytes", len(host))
		}
		for _, c := range host {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
				t.Fatalf("host %q has %q", host, c)
			}
		}
	})
}

// FuzzClassify: the user agent is attacker-controlled; classifying it never
// panics and always names a browser, OS and device, the same each time.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{uaChrome, uaIPhone, uaGoogle, uaCurl, "", "Mozilla/5.0 (", "\xff\xfe"} {
		f.Add([]byte(s))
	}
	c := NewClassifier(64)
	f.Fuzz(func(t *testing.T, ua []byte) {
		a := c.Classify(ua)
		if a.Browser == "" || a.OS == "" || a.Device == "" {
			t.Fatalf("empty class: %+v", a)
		}
		if a.Bot != (a.Device == "Bot") {
			t.Fatalf("bot flag and device disagree: %+v", a)
		}
		if b := c.Classify(ua); b != a {
			t.Fatalf("cached %+v, parsed %+v", b, a)
		}
	})
}
