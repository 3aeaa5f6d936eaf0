package linkstore

import (
	"fmt"
	"unicode/utf8"
)

// Limits of the per-link fields of record version 0x03. Apply refuses a
// create beyond them (ResultBadRequest), so no replica stores what the
// decoders or the API would refuse.
const (
	// MaxOwnerLength bounds an owner (an API key ID) in bytes.
	MaxOwnerLength = 64
	// MaxTitleLength bounds a title in bytes (valid UTF-8).
	MaxTitleLength = 256
	// MaxTags bounds the number of tags of one link.
	MaxTags = 16
	// MaxTagLength bounds one tag in bytes; a tag is 1 to MaxTagLength of
	// [A-Za-z0-9_-:.].
	MaxTagLength = 32
)

// ValidateOwner checks an owner (an API key ID): 1 to MaxOwnerLength of
// [A-Za-z0-9_.-]. The empty owner (keys off) is valid too.
func ValidateOwner(owner string) error {
	if owner == "" {
		return nil
	}
	if len(owner) > MaxOwnerLength {
		return fmt.Errorf("owner of %d bytes is longer than %d", len(owner), MaxOwnerLength)
	}
	for i := 0; i < len(owner); i++ {
		if c := owner[i]; !isIDChar(c) {
			return fmt.Errorf("owner %q: byte %d (%q) is not one of A-Z a-z 0-9 _ . -", owner, i, c)
		}
	}
	return nil
}

func isIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// ValidateTitle checks a title: valid UTF-8 of at most MaxTitleLength
// bytes, without control characters.
func ValidateTitle(title string) error {
	if len(title) > MaxTitleLength {
		return fmt.Errorf("title of %d bytes is longer than %d", len(title), MaxTitleLength)
	}
	if !utf8.ValidString(title) {
		return fmt.Errorf("title is not valid UTF-8")
	}
	for _, r := range title {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("title holds the control character %U", r)
		}
	}
	return nil
}

// ValidTag reports whether tag is 1 to MaxTagLength of [A-Za-z0-9_-:.].
func ValidTag(tag string) bool {
	if tag == "" || len(tag) > MaxTagLength {
		return false
	}
	for i := 0; i < len(tag); i++ {
		if c := tag[i]; !isIDChar(c) && c != ':' {
			return false
		}
	}
	return true
}

// ValidateTags checks a link's tags: at most MaxTags, each ValidTag, none
// given twice (tags are compared exactly, case included).
func ValidateTags(tags []string) error {
	if len(tags) > MaxTags {
		return fmt.Errorf("%d tags, at most %d are allowed", len(tags), MaxTags)
	}
	for i, t := range tags {
		if !ValidTag(t) {
			return fmt.Errorf("tag %q must be 1 to %d characters of [A-Za-z0-9_-:.]", t, MaxTagLength)
		}
		for _, u := range tags[:i] {
			if u == t {
				return fmt.Errorf("tag %q is given twice", t)
			}
		}
	}
	return nil
}

// ValidRedirectStatus reports whether s is a link's redirect status: 0
// (the cluster's default) or 301, 302, 307, 308.
func ValidRedirectStatus(s int) bool {
	switch s {
	case 0, 301, 302, 307, 308:
		return true
	}
	return false
}

// checkMeta returns why the per-link fields cannot be stored, or "".
func checkMeta(owner, title string, tags []string, status uint16) string {
	if err := ValidateOwner(owner); err != nil {
		return err.Error()
	}
	if err := ValidateTitle(title); err != nil {
		return err.Error()
	}
	if err := ValidateTags(tags); err != nil {
		return err.Error()
	}
	if !ValidRedirectStatus(int(status)) {
		return fmt.Sprintf("redirect status %d is not 0, 301, 302, 307 or 308", status)
	}
	return ""
}
