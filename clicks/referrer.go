package clicks

// DirectKey is the referrer host of a click without a usable Referer
// header.
const DirectKey = "(direct)"

// MaxHostLen is the longest referrer host kept; longer ones count as
// DirectKey.
const MaxHostLen = 253

// AppendReferrerHost appends the lower-cased host of a Referer header value
// to dst: the part after "scheme://" and any "user@", up to the port, path,
// query or fragment. A value without "://", with an empty host or a host
// longer than MaxHostLen, or with bytes outside [A-Za-z0-9.-] in the host
// appends nothing (a direct click). It does not allocate when dst has room.
func AppendReferrerHost(dst, referer []byte) []byte {
	i := indexScheme(referer)
	if i < 0 {
		return dst
	}
	rest := referer[i+3:]
	end := len(rest)
	for j, c := range rest {
		if c == '/' || c == '?' || c == '#' {
			end = j
			break
		}
	}
	auth := rest[:end]
	for j := len(auth) - 1; j >= 0; j-- {
		if auth[j] == '@' {
			auth = auth[j+1:]
			break
		}
	}
	for j, c := range auth {
		if c == ':' {
			auth = auth[:j]
			break
		}
	}
	if len(auth) == 0 || len(auth) > MaxHostLen {
		return dst
	}
	start := len(dst)
	for _, c := range auth {
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '-':
		default:
			return dst[:start]
		}
		dst = append(dst, c)
	}
	return dst
}

// indexScheme returns the index of "://" after a valid scheme, or -1.
func indexScheme(b []byte) int {
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		case c == ':' && i > 0 && len(b) >= i+3 && b[i+1] == '/' && b[i+2] == '/':
			return i
		default:
			return -1
		}
	}
	return -1
}
