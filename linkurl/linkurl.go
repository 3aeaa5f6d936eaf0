// Package linkurl validates and normalizes the target URLs of short links.
//
// Normalize accepts an absolute http or https URL with a host, at most
// MaxLength bytes, without spaces or control characters, and returns it in a
// canonical form, so that two spellings of one target are stored (and
// reused) as one:
//
//   - the scheme and the ASCII letters of the host are lower-cased;
//   - the default port (80 for http, 443 for https) and an empty port are
//     dropped, and a port's leading zeros are removed;
//   - an internationalized host label made only of letters, digits and '-'
//     is lower-cased and converted to punycode ("xn--..."); any other
//     non-ASCII label is left as given;
//   - an empty path becomes "/";
//   - bytes outside ASCII in the path, query and fragment are
//     percent-encoded, as browsers do before sending them;
//   - everything else (the path, the order and spelling of the query, the
//     escapes) is kept exactly as given: servers may distinguish what the
//     standards call equivalent, and a short link must lead where its
//     creator pointed.
//
// The fragment is kept: single-page applications route on it, so dropping
// it would change where a link leads.
//
// URLs with user information ("https://user:pass@host/") are refused: they
// leak credentials and are a classic way to disguise the real host.
//
// Normalize is idempotent: a normalized URL normalizes to itself.
package linkurl

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxLength is the longest URL accepted, in bytes, before and after
// normalization.
const MaxLength = 2048

// Reasons a URL is refused, each returned wrapped with the detail; check
// them with errors.Is. Their text is written for the API's users.
var (
	// ErrEmpty: no URL was given.
	ErrEmpty = errors.New("url is required")
	// ErrTooLong: the URL is longer than MaxLength bytes.
	ErrTooLong = fmt.Errorf("url must be at most %d bytes", MaxLength)
	// ErrInvalidChars: the URL holds a space or a control character.
	ErrInvalidChars = errors.New("url must not contain spaces or control characters")
	// ErrScheme: the URL is not absolute, or its scheme is not http or https.
	ErrScheme = errors.New("url must be an absolute http or https URL")
	// ErrNoHost: the URL has no host.
	ErrNoHost = errors.New("url must have a host")
	// ErrUserInfo: the URL carries a user name or password.
	ErrUserInfo = errors.New("url must not contain a user name or password")
	// ErrMalformed: the URL does not parse (a bad port, a bad IP literal,
	// a character that no host name holds, ...).
	ErrMalformed = errors.New("url is malformed")
	// ErrSelfLink: the URL points at the shortener itself, which would make
	// a redirect loop or hide one short link behind another.
	ErrSelfLink = errors.New("url must not point at this link shortener")
)

// Normalize validates raw and returns its canonical form (see the package
// documentation). The error wraps one of the package's sentinel errors.
func Normalize(raw string) (string, error) {
	if raw == "" {
		return "", ErrEmpty
	}
	if len(raw) > MaxLength {
		return "", fmt.Errorf("%w (got %d)", ErrTooLong, len(raw))
	}
	for i := 0; i < len(raw); i++ {
		if b := raw[i]; b <= ' ' || b == 0x7f {
			return "", fmt.Errorf("%w (byte %d is %q)", ErrInvalidChars, i, b)
		}
	}
	scheme, rest, err := splitScheme(raw)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(rest, "//") {
		return "", fmt.Errorf("%w: %q must be followed by \"//\" and a host", ErrMalformed, scheme+":")
	}
	rest = rest[2:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	host, port, err := splitAuthority(authority)
	if err != nil {
		return "", err
	}
	host, err = normalizeHost(host)
	if err != nil {
		return "", err
	}
	port, err = normalizePort(scheme, port)
	if err != nil {
		return "", err
	}

	var b strings.Builder
	b.Grow(len(raw) + 8)
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	if port != "" {
		b.WriteByte(':')
		b.WriteString(port)
	}
	if tail == "" || tail[0] != '/' {
		b.WriteByte('/')
	}
	appendEscaped(&b, tail)
	out := b.String()
	if len(out) > MaxLength {
		return "", fmt.Errorf("%w (%d once normalized)", ErrTooLong, len(out))
	}
	return out, nil
}

// splitScheme returns the lower-cased scheme (http or https) and what
// follows its colon.
func splitScheme(raw string) (scheme, rest string, err error) {
	colon := strings.IndexByte(raw, ':')
	if colon <= 0 {
		return "", "", fmt.Errorf("%w (no scheme)", ErrScheme)
	}
	scheme = raw[:colon]
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "", "", fmt.Errorf("%w (no scheme)", ErrScheme)
		}
	}
	scheme = strings.ToLower(scheme)
	if scheme != "http" && scheme != "https" {
		return "", "", fmt.Errorf("%w (got %q)", ErrScheme, scheme)
	}
	return scheme, raw[colon+1:], nil
}

// splitAuthority splits host[:port]; an IPv6 literal keeps its brackets.
func splitAuthority(authority string) (host, port string, err error) {
	if strings.ContainsRune(authority, '@') {
		return "", "", ErrUserInfo
	}
	if authority == "" {
		return "", "", ErrNoHost
	}
	if authority[0] == '[' {
		end := strings.IndexByte(authority, ']')
		if end < 0 {
			return "", "", fmt.Errorf("%w: unclosed '[' in the host", ErrMalformed)
		}
		host, rest := authority[:end+1], authority[end+1:]
		if rest == "" {
			return host, "", nil
		}
		if rest[0] != ':' {
			return "", "", fmt.Errorf("%w: %q after the IP literal", ErrMalformed, rest)
		}
		return host, rest[1:], nil
	}
	if i := strings.LastIndexByte(authority, ':'); i >= 0 {
		host, port = authority[:i], authority[i+1:]
	} else {
		host = authority
	}
	if host == "" {
		return "", "", ErrNoHost
	}
	return host, port, nil
}

// normalizeHost lower-cases the host, checks its characters and converts
// trivial internationalized labels to punycode.
func normalizeHost(host string) (string, error) {
	if host[0] == '[' {
		lit := host[1 : len(host)-1]
		addr, err := netip.ParseAddr(lit)
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", fmt.Errorf("%w: %q is not an IPv6 address", ErrMalformed, lit)
		}
		return "[" + addr.String() + "]", nil
	}
	ascii := true
	for i := 0; i < len(host); i++ {
		c := host[i]
		if c >= utf8.RuneSelf {
			ascii = false
			continue
		}
		if !hostByte(c) {
			return "", fmt.Errorf("%w: %q is not allowed in a host name", ErrMalformed, c)
		}
	}
	if ascii {
		return strings.ToLower(host), nil
	}
	if !utf8.ValidString(host) {
		return "", fmt.Errorf("%w: the host is not valid UTF-8", ErrMalformed)
	}
	labels := strings.Split(host, ".")
	for i, l := range labels {
		labels[i] = idnaLabel(l)
	}
	return strings.Join(labels, "."), nil
}

func hostByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'
}

// idnaLabel returns the punycode form of a label that needs no IDNA
// mapping beyond lower-casing (letters, digits and '-'), the lower-cased
// label if it is ASCII, and the label unchanged otherwise.
func idnaLabel(l string) string {
	ascii := true
	for i := 0; i < len(l); i++ {
		if l[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(l)
	}
	for _, r := range l {
		if !trivialRune(r) {
			return l
		}
	}
	lower := strings.Map(unicode.ToLower, l)
	for _, r := range lower {
		if !trivialRune(r) {
			return l
		}
	}
	enc, ok := punycode(lower)
	if !ok || len(enc)+4 > 63 {
		return l
	}
	return "xn--" + enc
}

// trivialRune reports whether r can appear in a label that IDNA maps by
// lower-casing alone: a letter or a decimal digit outside the blocks of
// compatibility forms (full-width Latin, letter-like symbols, ...), or an
// ASCII letter, digit or '-'.
func trivialRune(r rune) bool {
	if r < utf8.RuneSelf {
		return r <= 0x7f && hostByte(byte(r)) && r != '.' && r != '_'
	}
	switch {
	case r >= 0x2100 && r <= 0x214f, // letter-like symbols
		r >= 0x2460 && r <= 0x24ff,   // enclosed alphanumerics
		r >= 0x3300 && r <= 0x33ff,   // CJK compatibility
		r >= 0xf900 && r <= 0xfaff,   // CJK compatibility ideographs
		r >= 0xfb00 && r <= 0xfdff,   // presentation forms
		r >= 0xfe70 && r <= 0xfeff,   // Arabic presentation forms-B
		r >= 0xff00 && r <= 0xffef,   // half-width and full-width forms
		r >= 0x1d400 && r <= 0x1d7ff: // mathematical alphanumerics
		return false
	}
	return unicode.IsLetter(r) && !unicode.Is(unicode.Lm, r) || unicode.Is(unicode.Nd, r)
}

// normalizePort validates the port and returns it without leading zeros,
// or "" when it is empty or the scheme's default.
func normalizePort(scheme, port string) (string, error) {
	if port == "" {
		return "", nil
	}
	if len(port) > 5 {
		trimmed := strings.TrimLeft(port, "0")
		if len(trimmed) > 5 {
			return "", fmt.Errorf("%w: port %q", ErrMalformed, port)
		}
		port = trimmed
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
		return "", fmt.Errorf("%w: port %q", ErrMalformed, port)
	}
	if scheme == "http" && n == 80 || scheme == "https" && n == 443 {
		return "", nil
	}
	return strconv.Itoa(n), nil
}

// appendEscaped writes s with every byte outside ASCII percent-encoded.
func appendEscaped(b *strings.Builder, s string) {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < utf8.RuneSelf {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
	}
}

// Authority returns the host[:port] of a URL that Normalize returned.
func Authority(normalized string) string {
	_, rest, ok := strings.Cut(normalized, "://")
	if !ok {
		return ""
	}
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		rest = rest[:end]
	}
	return rest
}

// NotOwnDomain returns an error wrapping ErrSelfLink when the normalized
// URL u points at the host and port of one of baseURLs, the public bases
// of the shortener's own links. Base URLs are compared after
// normalization; the scheme is ignored (http and https of one host loop
// alike). A base URL that does not normalize is ignored.
func NotOwnDomain(u string, baseURLs []string) error {
	target := Authority(u)
	if target == "" {
		return nil
	}
	for _, base := range baseURLs {
		nb, err := Normalize(base)
		if err != nil {
			continue
		}
		if strings.EqualFold(Authority(nb), target) {
			return fmt.Errorf("%w (%s)", ErrSelfLink, target)
		}
	}
	return nil
}
