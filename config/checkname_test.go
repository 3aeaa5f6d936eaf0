package config

import (
	"strings"
	"testing"
)

// TestCheckIDAndKeyID pins what checkID and checkKeyID (both checkName)
// accept and say: key IDs also allow '.'.
func TestCheckIDAndKeyID(t *testing.T) {
	for _, tc := range []struct {
		name, id, wantID, wantKey string
	}{
		{"ok", "n1_a-B", "", ""},
		{"empty", "", "is required", "is required"},
		{"dot", "ci.deploy", `"ci.deploy": only letters, digits, '_' and '-' are allowed`, ""},
		{"space", "a b", `"a b": only letters, digits, '_' and '-' are allowed`, `"a b": only letters, digits, '_', '-' and '.' are allowed`},
		{"non-ascii", "nöde", "only letters", "only letters"},
		{"too long", strings.Repeat("a", max(MaxIDLength, MaxKeyIDLength)+1), "longer than", "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(what, got, want string) {
				t.Helper()
				if (want == "") != (got == "") || !strings.Contains(got, want) {
					t.Errorf("%s(%q) = %q, want %q", what, tc.id, got, want)
				}
			}
			check("checkID", checkID(tc.id), tc.wantID)
			check("checkKeyID", checkKeyID(tc.id), tc.wantKey)
		})
	}
}
