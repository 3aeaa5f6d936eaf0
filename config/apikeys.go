package config

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// APIKey is one key of the public API (cluster.yaml `api_keys:`). Only the
// key's hash is in the file: routers hash the key a request presents and
// look the hash up. When the list is empty the API is open.
type APIKey struct {
	// ID names the key; every link created with it records it as its
	// owner. 1 to MaxKeyIDLength of [A-Za-z0-9_.-]. Never reuse the ID of
	// a removed key for another user: its links would become theirs.
	ID string `yaml:"id"`
	// Hash is "sha256:" followed by the 64 hex digits of the SHA-256 of
	// the key (HashAPIKey).
	Hash string `yaml:"hash"`
	// Admin keys may read, edit, list and delete every link.
	Admin bool `yaml:"admin"`
}

// MaxKeyIDLength bounds an API key ID (it is stored in every link the key
// creates).
const MaxKeyIDLength = 64

// apiKeyHashPrefix starts every APIKey.Hash.
const apiKeyHashPrefix = "sha256:"

// apiKeyPrefix starts every key NewAPIKey makes, so that a leaked key is
// recognisable (secret scanners, logs).
const apiKeyPrefix = "lrk_"

// NewAPIKey returns a fresh random key: "lrk_" and 32 bytes from
// crypto/rand in unpadded base64url (256 bits of entropy).
func NewAPIKey() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return apiKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashAPIKey returns the APIKey.Hash of key: "sha256:<hex>". A single fast
// hash is enough because keys are random 256-bit tokens (NewAPIKey), not
// passwords: there is no dictionary to try, so a slow password hash would
// only slow every request down.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return apiKeyHashPrefix + hex.EncodeToString(sum[:])
}

// Digest returns the SHA-256 digest of k.Hash; ok is false when the hash
// is not "sha256:" and 64 hex digits.
func (k APIKey) Digest() (d [sha256.Size]byte, ok bool) {
	h, found := strings.CutPrefix(k.Hash, apiKeyHashPrefix)
	if !found || len(h) != 2*sha256.Size {
		return d, false
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return d, false
	}
	return d, true
}

// validateAPIKeys checks the api_keys list: valid and distinct IDs, valid
// and distinct hashes.
func (c *Config) validateAPIKeys(ps *problems) {
	ids := make(map[string]bool, len(c.APIKeys))
	hashes := make(map[[sha256.Size]byte]string, len(c.APIKeys))
	for i, k := range c.APIKeys {
		f := fmt.Sprintf("api_keys[%d]", i)
		if msg := checkKeyID(k.ID); msg != "" {
			ps.add(f+".id", "%s", msg)
		} else if ids[k.ID] {
			ps.add(f+".id", "duplicate API key ID %q", k.ID)
		} else {
			ids[k.ID] = true
		}
		d, ok := k.Digest()
		switch {
		case k.Hash == "":
			ps.add(f+".hash", "is required (%q and the hex SHA-256 of the key; `linkraft admin new-key` prints one)", apiKeyHashPrefix)
		case !ok:
			ps.add(f+".hash", "must be %q and 64 hex digits (the SHA-256 of the key, never the key itself)", apiKeyHashPrefix)
		case hashes[d] != "":
			ps.add(f+".hash", "the same key as %s", hashes[d])
		default:
			hashes[d] = f
		}
	}
}

// checkKeyID returns what is wrong with an API key ID, or "".
func checkKeyID(id string) string {
	return checkName(id, MaxKeyIDLength, ".", "letters, digits, '_', '-' and '.'")
}
