package router

import (
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/shardrpc"
)

// answerBufs holds the buffers create answers are encoded in: the body is
// copied into the response, so a buffer is reused once the answer is set.
var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeCreated answers a create with status and the link as JSON: the
// bytes writeJSON(ctx, status, r.linkJSON(link, false)) writes, appended
// without reflection or intermediate strings.
func (r *Router) writeCreated(ctx *fasthttp.RequestCtx, status int, link shardrpc.Link) {
	bp := answerBufs.Get().(*[]byte)
	var now int64
	if link.ExpiresAtMs != 0 {
		now = time.Now().UnixMilli()
	}
	b := appendCreatedJSON((*bp)[:0], r.baseURL, link, now)
	b = append(b, '\n')
	ctx.SetStatusCode(status)
	ctx.SetContentType(contentJSON)
	ctx.Response.SetBody(b)
	*bp = b
	answerBufs.Put(bp)
}

// appendCreatedJSON appends json.Marshal's encoding of the linkResponse
// that linkJSON(link, false) returns for a router whose base URL is
// baseURL, at Unix ms now (read only for a link with an expiry): the
// struct's field order, its omitempty rules, its string escaping.
func appendCreatedJSON(b []byte, baseURL string, link shardrpc.Link, now int64) []byte {
	b = append(b, `{"code":`...)
	b = appendJSONString(b, link.Code)
	// The short URL is baseURL + "/" + code. Escaping it in parts is
	// escaping the whole: "/" is a whole character that no UTF-8 sequence
	// continues into, so every part decodes alone as it does in the whole.
	b = append(b, `,"short_url":"`...)
	b = appendJSONEscaped(b, baseURL)
	b = append(b, '/')
	b = appendJSONEscaped(b, link.Code)
	b = append(b, `","url":`...)
	b = appendJSONString(b, link.URL)
	b = append(b, `,"created_at":"`...)
	b = time.UnixMilli(link.CreatedAtMs).UTC().AppendFormat(b, time.RFC3339)
	b = append(b, '"')
	if link.ExpiresAtMs != 0 {
		b = append(b, `,"expires_at":"`...)
		b = time.UnixMilli(link.ExpiresAtMs).UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if link.MaxClicks != 0 {
		b = append(b, `,"max_clicks":`...)
		b = strconv.AppendUint(b, link.MaxClicks, 10)
	}
	if link.ExpiresAtMs != 0 && now >= link.ExpiresAtMs {
		b = append(b, `,"expired":true`...)
	}
	if link.Title != "" {
		b = append(b, `,"title":`...)
		b = appendJSONString(b, link.Title)
	}
	if len(link.Tags) > 0 {
		b = append(b, `,"tags":[`...)
		for i, t := range link.Tags {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, t)
		}
		b = append(b, ']')
	}
	if link.RedirectStatus != 0 {
		b = append(b, `,"redirect_status":`...)
		b = strconv.AppendInt(b, int64(link.RedirectStatus), 10)
	}
	if link.UpdatedAtMs != 0 {
		b = append(b, `,"updated_at":"`...)
		b = time.UnixMilli(link.UpdatedAtMs).UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if link.Owner != "" {
		b = append(b, `,"owner":`...)
		b = appendJSONString(b, link.Owner)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string, as json.Marshal writes it.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendJSONEscaped(b, s)
	return append(b, '"')
}

// appendJSONEscaped appends the inside of s as a JSON string exactly as
// json.Marshal escapes it: '"' and '\\' with a backslash; \b, \f, \n, \r
// and \t by name; other control characters, '<', '>' and '&' as \u00XX;
// each byte of invalid UTF-8 as \ufffd; U+2028 and U+2029 as \u2028 and
// \u2029.
func appendJSONEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
