package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// helloHash is the hash of the key "hello" (the SHA-256 test vector).
const helloHash = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

func TestHashAPIKey(t *testing.T) {
	if got := HashAPIKey("hello"); got != helloHash {
		t.Fatalf("HashAPIKey(hello) = %s", got)
	}
	seen := map[string]bool{}
	for range 100 {
		k := NewAPIKey()
		if !strings.HasPrefix(k, "lrk_") || len(k) != 4+43 || seen[k] {
			t.Fatalf("NewAPIKey = %q (seen before: %v)", k, seen[k])
		}
		seen[k] = true
		if d, ok := (APIKey{ID: "x", Hash: HashAPIKey(k)}).Digest(); !ok || d == [32]byte{} {
			t.Fatalf("digest of a fresh key's hash: %x %v", d, ok)
		}
	}
}

func TestAPIKeysParse(t *testing.T) {
	_, err := Parse([]byte("api_keys:\n  - {id: alice, hash: '"+helloHash+"'}\n  - {id: ops.admin-1, hash: '"+
		strings.ToUpper(HashAPIKey("other")[7:])+"', admin: true}\n"+minimal), "")
	if err == nil {
		t.Fatalf("an upper-case hash without its prefix was accepted")
	}
	if fields := Fields(err); !slices.Equal(fields, []string{"api_keys[1].hash"}) {
		t.Fatalf("fields %v", fields)
	}
	cfg, err := Parse([]byte("api_keys:\n  - {id: alice, hash: '"+helloHash+"'}\n  - {id: ops.admin-1, hash: 'sha256:"+
		strings.ToUpper(HashAPIKey("other")[7:])+"', admin: true}\n"+minimal), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.APIKeys) != 2 || cfg.APIKeys[0] != (APIKey{ID: "alice", Hash: helloHash}) || !cfg.APIKeys[1].Admin {
		t.Fatalf("keys %+v", cfg.APIKeys)
	}
	if _, err := Parse([]byte("api_keys: [{id: a, hash: '"+helloHash+"', key: hello}]\n"+minimal), ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown key field: %v", err)
	}
}

func TestAPIKeysValidateNamesField(t *testing.T) {
	other := HashAPIKey("other")
	for _, tc := range []struct {
		name   string
		keys   []APIKey
		fields []string
	}{
		{"id missing", []APIKey{{Hash: helloHash}}, []string{"api_keys[0].id"}},
		{"id charset", []APIKey{{ID: "al ice", Hash: helloHash}}, []string{"api_keys[0].id"}},
		{"id slash", []APIKey{{ID: "a/b", Hash: helloHash}}, []string{"api_keys[0].id"}},
		{"id too long", []APIKey{{ID: strings.Repeat("a", 65), Hash: helloHash}}, []string{"api_keys[0].id"}},
		{"id duplicate", []APIKey{{ID: "a", Hash: helloHash}, {ID: "a", Hash: other}}, []string{"api_keys[1].id"}},
		{"hash missing", []APIKey{{ID: "a"}}, []string{"api_keys[0].hash"}},
		{"plain key", []APIKey{{ID: "a", Hash: "hello"}}, []string{"api_keys[0].hash"}},
		{"other algorithm", []APIKey{{ID: "a", Hash: "md5:5d41402abc4b2a76b9719d911017c592"}}, []string{"api_keys[0].hash"}},
		{"short hash", []APIKey{{ID: "a", Hash: helloHash[:70]}}, []string{"api_keys[0].hash"}},
		{"not hex", []APIKey{{ID: "a", Hash: helloHash[:70] + "zz"}}, []string{"api_keys[0].hash"}},
		{"same key twice", []APIKey{{ID: "a", Hash: helloHash}, {ID: "b", Hash: strings.ToUpper(helloHash[7:])}}, []string{"api_keys[1].hash"}},
		{"same key, case", []APIKey{{ID: "a", Hash: helloHash}, {ID: "b", Hash: "sha256:" + strings.ToUpper(helloHash[7:])}}, []string{"api_keys[1].hash"}},
	} {
		c := Default()
		c.APIKeys = tc.keys
		if got := Fields(c.Validate()); !slices.Equal(got, tc.fields) {
			t.Errorf("%s: fields %v, want %v", tc.name, got, tc.fields)
		}
	}
	c := Default()
	c.APIKeys = []APIKey{{ID: "alice", Hash: helloHash}, {ID: "root", Hash: other, Admin: true}}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid keys: %v", err)
	}
}
