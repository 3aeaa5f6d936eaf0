package router

import "unicode/utf8"

// parseCreatePlain parses the common shape of a create body without
// reflection and with one allocation (every string field is a slice of
// one copy of the body): one JSON object whose keys are known create
// fields, each at most once, with string values free of escapes and of
// invalid UTF-8, "reuse" a literal true or false, "max_clicks" and
// "redirect_status" plain non-negative integers, "tags" an array of such
// strings, and a non-empty "url". It reports false for any other body,
// valid or not, and decodeCreate then decides with encoding/json: what
// this parser accepts it decodes exactly as decodeCreateJSON would, so
// validation and error answers stay those of decodeCreateJSON.
func parseCreatePlain(body []byte) (req createRequest, ok bool) {
	p := plainParser{s: string(body)}
	p.space()
	if !p.eat('{') {
		return req, false
	}
	var seen uint16
	for {
		p.space()
		key, ok := p.str()
		if !ok {
			return req, false
		}
		p.space()
		if !p.eat(':') {
			return req, false
		}
		p.space()
		var bit uint16
		switch key {
		case "url":
			bit = 1 << 0
			req.URL, ok = p.str()
		case "alias":
			bit = 1 << 1
			req.Alias, ok = p.str()
		case "reuse":
			bit = 1 << 2
			req.Reuse, ok = p.boolean()
		case "expires_at":
			bit = 1 << 3
			req.ExpiresAt, ok = p.str()
		case "ttl":
			bit = 1 << 4
			req.TTL, ok = p.str()
		case "max_clicks":
			bit = 1 << 5
			req.MaxClicks, ok = p.uint(19) // below 10^19 fits a uint64
			req.HasMaxClicks = true
		case "title":
			bit = 1 << 6
			req.Title, ok = p.str()
		case "tags":
			bit = 1 << 7
			req.Tags, ok = p.strings()
		case "redirect_status":
			bit = 1 << 8
			var n uint64
			n, ok = p.uint(18) // below 10^18 fits an int
			req.RedirectStatus = int(n)
			req.HasRedirectStatus = true
		default:
			return req, false
		}
		if !ok || seen&bit != 0 {
			return req, false
		}
		seen |= bit
		p.space()
		if p.eat(',') {
			continue
		}
		if !p.eat('}') {
			return req, false
		}
		break
	}
	p.space()
	if p.i != len(p.s) || req.URL == "" {
		return req, false
	}
	return req, true
}

// plainParser reads the JSON subset parseCreatePlain accepts from s,
// at offset i.
type plainParser struct {
	s string
	i int
}

// space skips JSON whitespace.
func (p *plainParser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// eat consumes c if it is next.
func (p *plainParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string without escapes, control characters or invalid
// UTF-8: its value is its bytes, a slice of s.
func (p *plainParser) str() (string, bool) {
	if !p.eat('"') {
		return "", false
	}
	start, ascii := p.i, true
	for ; p.i < len(p.s); p.i++ {
		switch c := p.s[p.i]; {
		case c == '"':
			v := p.s[start:p.i]
			p.i++
			if !ascii && !utf8.ValidString(v) {
				return "", false
			}
			return v, true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// boolean reads true or false.
func (p *plainParser) boolean() (bool, bool) {
	rest := p.s[p.i:]
	switch {
	case len(rest) >= 4 && rest[:4] == "true":
		p.i += 4
		return true, true
	case len(rest) >= 5 && rest[:5] == "false":
		p.i += 5
		return false, true
	}
	return false, false
}

// uint reads a non-negative integer of at most maxDigits digits, without
// a leading zero, fraction or exponent. What follows it is the caller's
// to check: any character but a delimiter makes the body fall back.
func (p *plainParser) uint(maxDigits int) (uint64, bool) {
	start := p.i
	var n uint64
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		n = n*10 + uint64(p.s[p.i]-'0')
		p.i++
	}
	digits := p.i - start
	if digits == 0 || digits > maxDigits || (digits > 1 && p.s[start] == '0') {
		return 0, false
	}
	if p.i < len(p.s) && (p.s[p.i] == '.' || p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		return 0, false
	}
	return n, true
}

// strings reads an array of str strings; [] is an empty, non-nil slice,
// as encoding/json decodes it.
func (p *plainParser) strings() ([]string, bool) {
	if !p.eat('[') {
		return nil, false
	}
	out := []string{}
	p.space()
	if p.eat(']') {
		return out, true
	}
	for {
		p.space()
		v, ok := p.str()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		p.space()
		if p.eat(',') {
			continue
		}
		if p.eat(']') {
			return out, true
		}
		return nil, false
	}
}
