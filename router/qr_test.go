package router

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	zxqr "github.com/makiuchi-d/gozxing/qrcode"
	"github.com/valyala/fasthttp"

	"github.com/linkraft/linkraft/shardrpc"
)

// decodeQR reads the QR code in img with an independent decoder (ZXing's
// Go port) and returns its text.
func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatalf("binarize: %v", err)
	}
	res, err := zxqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("the image holds no readable QR code: %v", err)
	}
	return res.GetText()
}

// checkModules checks that img draws bits with square modules of a whole
// number of pixels, centred: the pixel at the centre of every module has
// the module's colour, and the margin around the symbol is white.
func checkModules(t *testing.T, img image.Image, bits [][]bool) {
	t.Helper()
	size := img.Bounds().Dx()
	n := len(bits)
	scale := size / n
	off := (size - scale*n) / 2
	dark := func(x, y int) bool {
		r, g, b, _ := img.At(x, y).RGBA()
		return r+g+b < 3*0x8000
	}
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			for _, c := range [][2]int{{0, 0}, {scale - 1, scale - 1}} {
				px, py := off+x*scale+c[0], off+y*scale+c[1]
				if dark(px, py) != bits[y][x] {
					t.Fatalf("module (%d,%d), pixel (%d,%d): dark=%v, want %v", x, y, px, py, !bits[y][x], bits[y][x])
				}
			}
		}
	}
	for i := 0; i < size; i++ {
		if dark(i, 0) || dark(0, i) || dark(i, size-1) || dark(size-1, i) {
			t.Fatalf("dark pixel on the image's edge at %d", i)
		}
	}
}

func TestQRCodePNG(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	c := decode[created](t, tr.post(t, `{"url": "https://example.com/printed/on/a/poster"}`))
	want := "http://short.test/" + c.Code
	bits, err := qrModules(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		query string
		size  int
	}{
		{"", DefaultQRSize},
		{"?format=png", DefaultQRSize},
		{"?size=64", 64},
		{"?size=257&format=png", 257},
		{"?size=2048", 2048},
	} {
		a := tr.do(t, http.MethodGet, "/api/v1/links/"+c.Code+"/qr"+tc.query, "", "")
		if a.status != 200 || a.header.Get("Content-Type") != "image/png" {
			t.Fatalf("%s: %d %q %.200q", tc.query, a.status, a.header.Get("Content-Type"), a.body)
		}
		if cc := a.header.Get("Cache-Control"); cc != "public, max-age=86400" {
			t.Errorf("%s: Cache-Control %q", tc.query, cc)
		}
		img, err := png.Decode(strings.NewReader(a.body))
		if err != nil {
			t.Fatalf("%s: not a PNG: %v", tc.query, err)
		}
		if b := img.Bounds(); b.Dx() != tc.size || b.Dy() != tc.size {
			t.Fatalf("%s: image %v, want %dx%d", tc.query, b, tc.size, tc.size)
		}
		checkModules(t, img, bits)
		if got := decodeQR(t, img); got != want {
			t.Fatalf("%s: QR holds %q, want %q", tc.query, got, want)
		}
	}
	// The short URL is the asking router's.
	if c.ShortURL != want {
		t.Fatalf("short_url %q, want %q", c.ShortURL, want)
	}
}

// svgImage is what the test reads from a QR SVG.
type svgImage struct {
	XMLName xml.Name `xml:"svg"`
	Width   string   `xml:"width,attr"`
	Height  string   `xml:"height,attr"`
	ViewBox string   `xml:"viewBox,attr"`
	Title   string   `xml:"title"`
	Path    struct {
		Fill string `xml:"fill,attr"`
		D    string `xml:"d,attr"`
	} `xml:"path"`
}

var svgRun = regexp.MustCompile(`^M(\d+) (\d+)h(\d+)v1h-(\d+)z`)

// rasterSVG parses a QR SVG's path (rectangles "MX Yh W v1h-W z") back into
// a module matrix of n x n.
func rasterSVG(t *testing.T, d string, n int) [][]bool {
	t.Helper()
	bits := make([][]bool, n)
	for i := range bits {
		bits[i] = make([]bool, n)
	}
	for d != "" {
		m := svgRun.FindStringSubmatch(d)
		if m == nil {
			t.Fatalf("unexpected path data at %.40q", d)
		}
		x, _ := strconv.Atoi(m[1])
		y, _ := strconv.Atoi(m[2])
		w, _ := strconv.Atoi(m[3])
		if m[3] != m[4] || y >= n || x+w > n || w == 0 {
			t.Fatalf("bad rectangle %q in a %d-module symbol", m[0], n)
		}
		for i := x; i < x+w; i++ {
			if bits[y][i] {
				t.Fatalf("module (%d,%d) drawn twice", i, y)
			}
			bits[y][i] = true
		}
		d = d[len(m[0]):]
	}
	return bits
}

func TestQRCodeSVG(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	c := decode[created](t, tr.post(t, `{"url": "https://example.com/vector", "alias": "vector-qr"}`))
	want := "http://short.test/vector-qr"
	bits, err := qrModules(want)
	if err != nil {
		t.Fatal(err)
	}
	n := len(bits)
	a := tr.do(t, http.MethodGet, "/api/v1/links/"+c.Code+"/qr?format=svg&size=300", "", "")
	if a.status != 200 || a.header.Get("Content-Type") != "image/svg+xml" {
		t.Fatalf("%d %q %.200q", a.status, a.header.Get("Content-Type"), a.body)
	}
	var svg svgImage
	if err := xml.Unmarshal([]byte(a.body), &svg); err != nil {
		t.Fatalf("not well-formed XML: %v\n%s", err, a.body)
	}
	if svg.Width != "300" || svg.Height != "300" || svg.ViewBox != fmt.Sprintf("0 0 %d %d", n, n) || svg.Title != want || svg.Path.Fill != "#000" {
		t.Fatalf("svg attributes: %+v", svg)
	}
	got := rasterSVG(t, svg.Path.D, n)
	for y := range bits {
		for x := range bits[y] {
			if got[y][x] != bits[y][x] {
				t.Fatalf("module (%d,%d): %v, want %v", x, y, got[y][x], bits[y][x])
			}
		}
	}
	// Drawn at 4 pixels a module, the SVG's modules decode to the short URL.
	const scale = 4
	img := image.NewGray(image.Rect(0, 0, n*scale, n*scale))
	for y := range got {
		for x := range got[y] {
			v := color.Gray{Y: 255}
			if got[y][x] {
				v = color.Gray{}
			}
			for dy := 0; dy < scale; dy++ {
				for dx := 0; dx < scale; dx++ {
					img.SetGray(x*scale+dx, y*scale+dy, v)
				}
			}
		}
	}
	if text := decodeQR(t, img); text != want {
		t.Fatalf("SVG holds %q, want %q", text, want)
	}
}

func TestQRCodeCaching(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	c := decode[created](t, tr.post(t, `{"url": "https://example.com/etag"}`))
	path := "/api/v1/links/" + c.Code + "/qr"
	a := tr.do(t, http.MethodGet, path, "", "")
	etag := a.header.Get("ETag")
	if a.status != 200 || !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 4 {
		t.Fatalf("%d ETag %q", a.status, etag)
	}
	if again := tr.do(t, http.MethodGet, path, "", ""); again.header.Get("ETag") != etag || again.body != a.body {
		t.Fatal("the same request gave another ETag or image")
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		nm := tr.do(t, http.MethodGet, path, "", "", "If-None-Match", inm)
		if nm.status != http.StatusNotModified || nm.body != "" || nm.header.Get("ETag") != etag || nm.header.Get("Cache-Control") == "" {
			t.Fatalf("If-None-Match %s: %d ETag %q Cache-Control %q body %d bytes", inm, nm.status, nm.header.Get("ETag"), nm.header.Get("Cache-Control"), len(nm.body))
		}
	}
	if nm := tr.do(t, http.MethodGet, path, "", "", "If-None-Match", `"other"`); nm.status != 200 {
		t.Fatalf("a stale ETag: %d", nm.status)
	}
	tags := map[string]string{etag: ""}
	for _, q := range []string{"?size=300", "?format=svg", "?format=svg&size=300"} {
		tag := tr.do(t, http.MethodGet, path+q, "", "").header.Get("ETag")
		if prev, dup := tags[tag]; dup {
			t.Fatalf("%s and %q share the ETag %s", q, prev, tag)
		}
		tags[tag] = q
	}
	// HEAD: the headers of GET, no body.
	h := tr.do(t, http.MethodHead, path, "", "")
	if h.status != 200 || h.body != "" || h.header.Get("ETag") != etag || h.header.Get("Content-Type") != "image/png" {
		t.Fatalf("HEAD: %d %q %q", h.status, h.header.Get("ETag"), h.header.Get("Content-Type"))
	}
}

func TestQRCodeBadInput(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	c := decode[created](t, tr.post(t, `{"url": "https://example.com/qr-bad-input"}`))
	creates, resolvesBefore := tr.fake.counts()
	path := "/api/v1/links/" + c.Code + "/qr"
	for _, q := range []string{
		"?format=gif", "?format=", "?format=PNG", "?format=png&format=svg",
		"?size=63", "?size=2049", "?size=abc", "?size=", "?size=-256", "?size=1e3", "?size=256.0", "?size=+256",
		"?size=99999999999999999999999", "?size=256&size=512",
		"?scale=4", "?format=png&margin=0", "?" + strings.Repeat("x", 200) + "=1",
	} {
		a := tr.do(t, http.MethodGet, path+q, "", "")
		if a.status != http.StatusBadRequest || errorCode(t, a) != codeInvalidRequest {
			t.Errorf("%s: %d %q", q, a.status, a.body)
		}
		if len(a.body) > 400 {
			t.Errorf("%s: the error echoes too much: %d bytes", q, len(a.body))
		}
	}
	// A bad query is refused before any shard call.
	if _, resolves := tr.fake.counts(); resolves != resolvesBefore {
		t.Errorf("%d resolves for bad queries", resolves-resolvesBefore)
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		a := tr.do(t, m, path, "application/json", `{}`)
		if a.status != http.StatusMethodNotAllowed || a.header.Get("Allow") != "GET, HEAD" || errorCode(t, a) != codeMethodNotAllowed {
			t.Errorf("%s: %d Allow %q", m, a.status, a.header.Get("Allow"))
		}
	}
	// Unknown codes, and paths that cannot be codes: 404 JSON.
	for _, code := range []string{"zzzzzzz", "no-such-alias", "ab", "api", strings.Repeat("a", 65), "bad.code"} {
		a := tr.do(t, http.MethodGet, "/api/v1/links/"+code+"/qr", "", "", "Accept", "text/html")
		if a.status != http.StatusNotFound || errorCode(t, a) != codeNotFound {
			t.Errorf("%s: %d %q", code, a.status, a.body)
		}
	}
	if after, _ := tr.fake.counts(); after != creates {
		t.Fatalf("%d links stored by QR requests", after-creates)
	}
	// Deleted: 410 like the redirect, JSON even for a browser.
	if a := tr.do(t, http.MethodDelete, "/api/v1/links/"+c.Code, "", ""); a.status != http.StatusNoContent {
		t.Fatalf("delete: %d", a.status)
	}
	a := tr.do(t, http.MethodGet, path, "", "", "Accept", "text/html")
	if a.status != http.StatusGone || errorCode(t, a) != codeGone {
		t.Fatalf("deleted: %d %q", a.status, a.body)
	}
	// Bad parameters are reported first even for a deleted link.
	if a := tr.do(t, http.MethodGet, path+"?size=1", "", ""); a.status != http.StatusBadRequest {
		t.Fatalf("deleted, bad size: %d", a.status)
	}
}

func TestQRCodeExpired(t *testing.T) {
	r, fake, _ := newHandlerRouter(t)
	code := "qr-expiring"
	p := r.ring.PartitionOfCode(code)
	exp := time.Now().Add(200 * time.Millisecond).UnixMilli()
	if _, err := fake.Create(context.Background(), r.ring.ShardOf(p), shardrpc.CreateRequest{Partition: p, URL: "https://example.com/qr-soon", Alias: code, ExpiresAtMs: exp}); err != nil {
		t.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	get := func() int {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod(fasthttp.MethodGet)
		ctx.Request.SetRequestURI("/api/v1/links/" + code + "/qr?format=svg")
		r.handle(&ctx)
		return ctx.Response.StatusCode()
	}
	if st := get(); st != 200 && time.Now().UnixMilli() < exp {
		t.Fatalf("before the expiry: %d %s", st, ctx.Response.Body())
	}
	deadline := time.Now().Add(5 * time.Second)
	for get() != http.StatusGone {
		if time.Now().After(deadline) {
			t.Fatalf("still %d after the expiry", ctx.Response.StatusCode())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !bytes.Contains(ctx.Response.Body(), []byte(`"gone"`)) {
		t.Fatalf("body %q", ctx.Response.Body())
	}
	// Uncached (another router): the shard's record says expired too.
	r.cache.Invalidate(code)
	if st := get(); st != http.StatusGone {
		t.Fatalf("uncached expired link: %d", st)
	}
}

// TestQRCodeTooSmall: a long short URL needs more modules than a small size
// has pixels; the answer says which size is enough.
func TestQRCodeTooSmall(t *testing.T) {
	cfg := testConfig(t, 1000)
	label := strings.Repeat("h", 63)
	cfg.Routers[0].BaseURL = "https://" + label + "." + label + "." + label + ".example"
	tr := startRouter(t, cfg)
	alias := strings.Repeat("q", 64)
	c := decode[created](t, tr.post(t, `{"url": "https://example.com/long-host", "alias": "`+alias+`"}`))
	bits, err := qrModules(c.ShortURL)
	if err != nil {
		t.Fatal(err)
	}
	n := len(bits)
	if n <= MinQRSize {
		t.Fatalf("%d modules: the test needs a short URL longer than %q", n, c.ShortURL)
	}
	a := tr.do(t, http.MethodGet, "/api/v1/links/"+alias+"/qr?size="+strconv.Itoa(n-1), "", "")
	if a.status != http.StatusBadRequest || errorCode(t, a) != codeInvalidRequest || !strings.Contains(a.body, "at least "+strconv.Itoa(n)) {
		t.Fatalf("size %d for %d modules: %d %s", n-1, n, a.status, a.body)
	}
	a = tr.do(t, http.MethodGet, "/api/v1/links/"+alias+"/qr?size="+strconv.Itoa(n), "", "")
	if a.status != 200 {
		t.Fatalf("size %d: %d %s", n, a.status, a.body)
	}
	img, err := png.Decode(strings.NewReader(a.body))
	if err != nil {
		t.Fatal(err)
	}
	checkModules(t, img, bits)
	if _, err := qrPNGImage(bits, n-1); err == nil {
		t.Fatal("qrPNGImage drew more modules than pixels")
	}
}

func TestETagMatches(t *testing.T) {
	const tag = `"qr1f"`
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{``, false}, {`"qr1f"`, true}, {`W/"qr1f"`, true}, {`"a", "qr1f"`, true}, {` "qr1f" `, true},
		{`*`, true}, {`"qr1"`, false}, {`qr1f`, false}, {`"qr1f`, false}, {`,,,`, false}, {`"a","b"`, false},
	} {
		if got := etagMatches([]byte(tc.header), tag); got != tc.want {
			t.Errorf("%q: %v, want %v", tc.header, got, tc.want)
		}
	}
}

// FuzzQRArgs: any query either parses to a format and a size within bounds
// or is refused with a message; it never panics.
func FuzzQRArgs(f *testing.F) {
	for _, s := range []string{
		"", "format=png", "format=svg&size=64", "size=2048", "size=2049", "size=-1", "size=0x40",
		"format=png&format=png", "size=256&size=256", "x=1", "format", "size", "&&&", "format=%73vg",
		"size=%32%35%36", "size=1_000", "size=٣٣٣",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, query string) {
		var args fasthttp.Args
		args.Parse(query)
		p, msg := parseQRArgs(&args)
		if msg != "" {
			if len(msg) > 200 {
				t.Fatalf("message of %d bytes", len(msg))
			}
			return
		}
		if p.size < MinQRSize || p.size > MaxQRSize || (p.format != qrPNG && p.format != qrSVG) {
			t.Fatalf("%q accepted as %+v", query, p)
		}
	})
}

// BenchmarkQR measures the work of one QR answer (encoding and drawing,
// no shard call): a public endpoint should stay cheap at the largest size.
func BenchmarkQR(b *testing.B) {
	const shortURL = "https://s.example/AbCdEf1"
	for _, bc := range []struct {
		name   string
		format qrFormat
		size   int
	}{{"png-256", qrPNG, 256}, {"png-2048", qrPNG, 2048}, {"svg", qrSVG, 256}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				bits, err := qrModules(shortURL)
				if err != nil {
					b.Fatal(err)
				}
				if bc.format == qrSVG {
					_ = qrSVGImage(bits, bc.size, shortURL)
				} else if _, err := qrPNGImage(bits, bc.size); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
