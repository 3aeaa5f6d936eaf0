package router

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"html"
	"sync"

	"github.com/skip2/go-qrcode"
)

// qrModules returns the module matrix of content at error correction level
// M, quiet zone included: bits[y][x] is true for a dark module.
func qrModules(content string) ([][]bool, error) {
	q, err := qrcode.New(content, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("router: encode %d bytes as a QR code: %w", len(content), err)
	}
	return q.Bitmap(), nil
}

// pngSignature starts every PNG file.
var pngSignature = []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}

// zlibWriters keeps deflate state between images: a compressor is about a
// megabyte of tables, more than the image it writes.
var zlibWriters = sync.Pool{New: func() any {
	zw, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed) // a valid level: no error
	return zw
}}

// qrPNGImage draws bits as a size x size PNG, 1-bit grayscale: every module
// is size/len(bits) pixels wide, and the remainder is white margin split
// between both sides. len(bits) must be at most size.
//
// It writes the PNG itself rather than through image/png, whose 1-bit path
// costs an interface call per pixel (about 4 million at the largest size):
// a module row is packed once and handed to zlib scale times, so the cost
// is the deflate of the rows. The format: signature, IHDR (color type 0,
// bit depth 1), one IDAT of zlib data whose rows are filter type 0 (none)
// plus the pixels, MSB first, 1 = white; IEND. Tests decode the result with
// image/png and read the symbol with an independent QR decoder.
func qrPNGImage(bits [][]bool, size int) ([]byte, error) {
	n := len(bits)
	if n == 0 || n > size {
		return nil, fmt.Errorf("router: %d modules cannot be drawn in %d pixels", n, size)
	}
	scale := size / n
	off := (size - scale*n) / 2
	rowLen := 1 + (size+7)/8
	white := bytes.Repeat([]byte{0xff}, rowLen)
	white[0] = 0 // filter type none
	line := make([]byte, rowLen)

	var idat bytes.Buffer
	zw := zlibWriters.Get().(*zlib.Writer)
	defer zlibWriters.Put(zw)
	zw.Reset(&idat)
	var err error
	rows := func(row []byte, times int) {
		for ; times > 0 && err == nil; times-- {
			_, err = zw.Write(row)
		}
	}
	rows(white, off)
	for _, modules := range bits {
		copy(line, white)
		for x, dark := range modules {
			if !dark {
				continue
			}
			for px := off + x*scale; px < off+(x+1)*scale; px++ {
				line[1+px>>3] &^= 0x80 >> (px & 7)
			}
		}
		rows(line, scale)
	}
	rows(white, size-off-scale*n)
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("router: compress QR PNG: %w", err)
	}

	out := bytes.NewBuffer(make([]byte, 0, len(pngSignature)+3*12+13+idat.Len()))
	out.Write(pngSignature)
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(size))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(size))
	ihdr[8] = 1 // bit depth
	// ihdr[9..12]: color type 0 (grayscale), compression 0 (deflate),
	// filter method 0, no interlace.
	writePNGChunk(out, "IHDR", ihdr[:])
	writePNGChunk(out, "IDAT", idat.Bytes())
	writePNGChunk(out, "IEND", nil)
	return out.Bytes(), nil
}

// writePNGChunk appends one chunk: length, type, data, CRC-32 of type and
// data.
func writePNGChunk(out *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	out.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	out.WriteString(typ)
	out.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	out.Write(n[:])
}

// qrSVGImage draws bits as an SVG of size x size pixels whose user units
// are modules: a white background and one black path made of a rectangle
// per horizontal run of dark modules. title (the short URL) is its
// accessible name.
func qrSVGImage(bits [][]bool, size int, title string) []byte {
	n := len(bits)
	var b bytes.Buffer
	b.Grow(64 * n)
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" shape-rendering="crispEdges">`+"\n",
		size, size, n, n)
	fmt.Fprintf(&b, "<title>%s</title>\n", html.EscapeString(title))
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n"+`<path fill="#000" d="`, n, n)
	for y, row := range bits {
		for x := 0; x < n; {
			if !row[x] {
				x++
				continue
			}
			run := 1
			for x+run < n && row[x+run] {
				run++
			}
			fmt.Fprintf(&b, "M%d %dh%dv1h-%dz", x, y, run, run)
			x += run
		}
	}
	b.WriteString("\"/>\n</svg>\n")
	return b.Bytes()
}
