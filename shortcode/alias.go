package shortcode

import (
	"errors"
	"fmt"
	"strings"
)

// Alias length limits.
const (
	MinAliasLength = 3
	MaxAliasLength = 64
)

// Errors of ValidateAlias, each returned wrapped with the detail; check them
// with errors.Is. Their text is written for the API's users.
var (
	// ErrAliasLength: the alias is shorter than MinAliasLength or longer
	// than MaxAliasLength bytes.
	ErrAliasLength = errors.New("alias must be 3 to 64 characters long")
	// ErrAliasCharset: the alias holds a byte outside [A-Za-z0-9_-].
	ErrAliasCharset = errors.New("alias may only contain letters, digits, '_' and '-'")
	// ErrAliasReserved: the alias is a reserved word.
	ErrAliasReserved = errors.New("alias is a reserved word")
)

// reserved are the words no alias may be, compared case-insensitively: the
// paths the router serves itself and names a browser or crawler asks for.
var reserved = []string{
	"admin", "api", "assets", "bulk", "debug", "docs", "favicon", "health", "healthz",
	"internal", "links", "livez", "login", "logout", "metrics", "openapi",
	"qr", "readyz", "robots", "rpc", "sitemap", "static", "stats", "status",
	"well-known",
}

// Reserved returns the reserved words, in lower case.
func Reserved() []string {
	return append([]string(nil), reserved...)
}

// IsReserved reports whether s is a reserved word, ignoring case.
func IsReserved(s string) bool {
	for _, w := range reserved {
		if strings.EqualFold(s, w) {
			return true
		}
	}
	return false
}

// ValidateAlias checks a custom alias: MinAliasLength to MaxAliasLength
// bytes of [A-Za-z0-9_-], not a reserved word (ignoring case). The error
// wraps ErrAliasLength, ErrAliasCharset or ErrAliasReserved.
func ValidateAlias(alias string) error {
	if len(alias) < MinAliasLength || len(alias) > MaxAliasLength {
		return fmt.Errorf("%w (got %d)", ErrAliasLength, len(alias))
	}
	for i := 0; i < len(alias); i++ {
		if !aliasByte(alias[i]) {
			return fmt.Errorf("%w (byte %d is %q)", ErrAliasCharset, i, alias[i])
		}
	}
	if IsReserved(alias) {
		return fmt.Errorf("%w: %q", ErrAliasReserved, alias)
	}
	return nil
}

func aliasByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-'
}
