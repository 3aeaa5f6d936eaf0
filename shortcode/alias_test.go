package shortcode

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestValidateAlias(t *testing.T) {
	for _, tc := range []struct {
		alias string
		want  error
	}{
		{"abc", nil},
		{"my-launch", nil},
		{"Under_Score-9", nil},
		{strings.Repeat("a", 64), nil},
		{"2faJmRg", nil}, // generated shape: allowed, placed by decoding
		{"apis", nil},
		{"api2", nil},
		{"", ErrAliasLength},
		{"ab", ErrAliasLength},
		{strings.Repeat("a", 65), ErrAliasLength},
		{"has space", ErrAliasCharset},
		{"slash/es", ErrAliasCharset},
		{"dot.ted", ErrAliasCharset},
		{"robots.txt", ErrAliasCharset},
		{"percent%20", ErrAliasCharset},
		{"ümlaut", ErrAliasCharset},
		{"new\nline", ErrAliasCharset},
		{"api", ErrAliasReserved},
		{"API", ErrAliasReserved},
		{"Healthz", ErrAliasReserved},
		{"readyz", ErrAliasReserved},
		{"metrics", ErrAliasReserved},
		{"static", ErrAliasReserved},
		{"admin", ErrAliasReserved},
		{"debug", ErrAliasReserved},
		{"login", ErrAliasReserved},
		{"logout", ErrAliasReserved},
		{"assets", ErrAliasReserved},
		{"docs", ErrAliasReserved},
		{"openapi", ErrAliasReserved},
		{"stats", ErrAliasReserved},
		{"LINKS", ErrAliasReserved},
		{"favicon", ErrAliasReserved},
	} {
		err := ValidateAlias(tc.alias)
		if tc.want == nil {
			if err != nil {
				t.Errorf("ValidateAlias(%q) = %v, want nil", tc.alias, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("ValidateAlias(%q) = %v, want %v", tc.alias, err, tc.want)
		}
	}
}

func TestReserved(t *testing.T) {
	words := Reserved()
	words[0] = "changed"
	if Reserved()[0] == "changed" {
		t.Fatal("Reserved returns the package's own slice")
	}
	for _, w := range Reserved() {
		if w != strings.ToLower(w) {
			t.Errorf("reserved word %q is not lower case", w)
		}
		if !IsReserved(strings.ToUpper(w)) {
			t.Errorf("IsReserved(%q) = false", strings.ToUpper(w))
		}
	}
}

var aliasPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{3,64}$`)

func FuzzAlias(f *testing.F) {
	for _, s := range []string{"abc", "my-launch", "api", "ApI", "ab", "has space", "ümlaut", strings.Repeat("x", 65), "robots.txt", "\x00\x01\x02"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := ValidateAlias(s)
		valid := aliasPattern.MatchString(s) && !IsReserved(s)
		if valid != (err == nil) {
			t.Fatalf("ValidateAlias(%q) = %v, want valid=%v", s, err, valid)
		}
		if err != nil && !errors.Is(err, ErrAliasLength) && !errors.Is(err, ErrAliasCharset) && !errors.Is(err, ErrAliasReserved) {
			t.Fatalf("ValidateAlias(%q) = %v: no sentinel", s, err)
		}
	})
}
