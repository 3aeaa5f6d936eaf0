package clickstore

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"

	"github.com/linkraft/linkraft/clicks"
)

// The visitor sketches are merged in axiomhq/hyperloglog's binary form
// (version 2, see hyperloglog.Sketch.UnmarshalBinary) without decoding them
// into a hyperloglog.Sketch: on a shard the library's decode, merge,
// Estimate (which compacts) and encode were a third of the allocations of
// applying a click batch. The result is the one the library gives, byte for
// byte (FuzzSketchMerge holds the two to each other):
//
//   - A sparse sketch is a set of 32-bit keys (encodeHash of each inserted
//     hash at the sparse precision 25): a "tmp set" in any order, then a
//     sorted delta-varint "compressed list". Merging sparse sketches and
//     compacting (Estimate) gives the sorted union as a compressed list with
//     an empty tmp set, unless the list's stream is longer than m = 2^p
//     bytes: then the sketch turns dense.
//   - A dense sketch is m registers; turning sparse keys dense, or merging
//     into a dense sketch, takes the maximum rho of each register.
//
// Both results depend only on the union of the inputs' keys and registers,
// not on the order the library would have merged them in: the sparse list's
// stream only grows with its set of keys, so the library's intermediate
// switches to dense happen exactly when the final union is too long.
const (
	skP      = clicks.SketchPrecision
	skM      = 1 << skP
	skPP     = 25           // the library's sparse precision (version 2)
	skMP     = 1 << skPP    // the library's bound on a compressed list's count
	skMaxRho = 64 - skP + 1 // the largest register value
	skHeader = 8            // version, p, b, sparse flag, then a uint32
	skList   = 12           // compressed list: count, last, stream size
	skVer    = 2            // the version the library writes
	skVerOld = 1            // the library also reads version 1
)

// sketchView is a visitor sketch that parseSketch accepted, as slices of
// its bytes.
type sketchView struct {
	sparse bool
	tmp    []byte // sparse: the tmp set's keys, 4 bytes each, any order
	stream []byte // sparse: the compressed list's delta varints
	regs   []byte // dense: the registers, or version 1's packed pairs
	v1     bool   // dense: version 1 (two 4-bit registers a byte, plus bias)
	bias   byte   // dense version 1: added to each register
}

// parseSketch returns the parts of b if hyperloglog.Sketch.UnmarshalBinary
// accepts b and its precision is clicks.SketchPrecision (decodeSketch's
// rule). It makes every check the library's decoder makes, so it accepts
// exactly what decodeSketch accepts (FuzzSketchMerge). It does not
// allocate.
func parseSketch(b []byte) (sketchView, bool) { return parseSketchKeys(b, nil) }

// parseSketchKeys is parseSketch that also appends the keys of a sparse
// sketch's compressed list to *keys, when keys is not nil, as it checks
// them.
func parseSketchKeys(b []byte, keys *[]uint32) (sketchView, bool) {
	if len(b) < skHeader {
		return sketchView{}, false
	}
	v, p, bias, flag := b[0], b[1], b[2], b[3]
	if v != skVer && v != skVerOld || flag > 1 || v == skVer && bias != 0 || p != skP {
		return sketchView{}, false
	}
	if flag == 0 {
		n := binary.BigEndian.Uint32(b[4:8])
		payload := b[skHeader:]
		if v == skVerOld {
			// Bytes 4:8 are ignored; m/2 bytes of two registers each.
			if len(payload) != skM/2 {
				return sketchView{}, false
			}
			for _, x := range payload {
				if uint16(x>>4)+uint16(bias) > skMaxRho || uint16(x&0x0f)+uint16(bias) > skMaxRho {
					return sketchView{}, false
				}
			}
			return sketchView{regs: payload, v1: true, bias: bias}, true
		}
		if n != skM || len(payload) != skM {
			return sketchView{}, false
		}
		for _, r := range payload {
			if r > skMaxRho {
				return sketchView{}, false
			}
		}
		return sketchView{regs: payload}, true
	}
	tssz := binary.BigEndian.Uint32(b[4:8])
	need := skHeader + 4*uint64(tssz)
	if need > uint64(len(b)) || tssz > skM {
		return sketchView{}, false
	}
	tmp := b[skHeader:need]
	for i := 0; i < len(tmp); i += 4 {
		if !validSparseKey(binary.BigEndian.Uint32(tmp[i:])) {
			return sketchView{}, false
		}
	}
	list := b[need:]
	if len(list) < skList {
		return sketchView{}, false
	}
	count := binary.BigEndian.Uint32(list[0:4])
	last := binary.BigEndian.Uint32(list[4:8])
	sz := binary.BigEndian.Uint32(list[8:12])
	stream := list[skList:]
	if uint64(len(stream)) != uint64(sz) || count >= skMP {
		return sketchView{}, false
	}
	if count == 0 {
		if sz != 0 || last != 0 {
			return sketchView{}, false
		}
	} else if sz < count || uint64(sz) > 5*uint64(count) {
		return sketchView{}, false
	}
	var entries, running uint32
	for i := 0; i < len(stream); {
		x, next, ok := streamVarint(stream, i)
		if !ok {
			return sketchView{}, false
		}
		i = next
		key := running + x
		if entries > 0 && key <= running {
			return sketchView{}, false
		}
		running = key
		if !validSparseKey(running) {
			return sketchView{}, false
		}
		if keys != nil {
			*keys = append(*keys, key)
		}
		entries++
	}
	if count != entries || last != running {
		return sketchView{}, false
	}
	return sketchView{sparse: true, tmp: tmp, stream: stream}, true
}

// streamVarint reads the compressed list's varint at s[i:]: the value and
// the offset after it. Like the library it refuses a varint that runs past
// the end, is longer than 5 bytes, does not fit 32 bits or is not minimal.
func streamVarint(s []byte, i int) (x uint32, next int, ok bool) {
	j := i
	for ; j < len(s) && s[j]&0x80 != 0; j++ {
		x |= uint32(s[j]&0x7f) << (uint(j-i) * 7)
	}
	if j >= len(s) {
		return 0, len(s), false
	}
	x |= uint32(s[j]) << (uint(j-i) * 7)
	n := j - i + 1
	if n > 5 || n == 5 && s[j] > 0x0f || n > 1 && s[j] == 0 {
		return 0, len(s), false
	}
	return x, j + 1, true
}

// sparseReg returns the register index and rho of a sparse key, as the
// library's decodeHash at precision skP and sparse precision skPP.
func sparseReg(k uint32) (idx uint32, rho uint8) {
	if k&1 == 1 {
		return k >> (32 - skP) & (skM - 1), uint8(k>>1&0x3f) + skPP - skP
	}
	return k >> (skPP - skP + 1) & (skM - 1), uint8(bits.LeadingZeros64(uint64(k<<(32-skPP+skP-1))) - 31)
}

// validSparseKey reports whether k decodes to a rho the library accepts
// (its checkSparseKey).
func validSparseKey(k uint32) bool {
	_, r := sparseReg(k)
	return r <= skMaxRho
}

// sketchMerger merges visitor sketches (parseSketch's views) into the bytes
// the library writes after merging and compacting them. It keeps its
// buffers from one merge to the next.
type sketchMerger struct {
	n     int      // sketches added since reset
	dense bool     // regs holds the merge
	regs  []byte   // skM registers when dense
	keys  []uint32 // sparse: sorted union of the lists' keys so far
	tmp   []uint32 // sparse: tmp-set keys, unsorted, maybe repeated
	spare []uint32 // the keys to add to keys
	union []uint32 // scratch for the union of keys and spare
	list  []byte   // scratch for the merged stream
}

// reset empties m for the next merge, keeping its buffers.
func (m *sketchMerger) reset() {
	m.n, m.dense = 0, false
	m.keys, m.tmp = m.keys[:0], m.tmp[:0]
}

// add merges v in.
func (m *sketchMerger) add(v sketchView) {
	if v.sparse && !m.dense {
		m.spare = appendStreamKeys(m.spare[:0], v.stream)
	}
	m.addDecoded(v)
}

// addStored merges in the stored sketch b, checking it as parseSketch does
// and decoding its list's keys in the same pass; false if b is not
// acceptable (nothing merged).
func (m *sketchMerger) addStored(b []byte) bool {
	m.spare = m.spare[:0]
	v, ok := parseSketchKeys(b, &m.spare)
	if ok {
		m.addDecoded(v)
	}
	return ok
}

// addDecoded merges v in; when v is sparse and m is not dense, m.spare
// holds the keys of v's list.
func (m *sketchMerger) addDecoded(v sketchView) {
	m.n++
	if v.sparse && !m.dense {
		for i := 0; i < len(v.tmp); i += 4 {
			m.tmp = append(m.tmp, binary.BigEndian.Uint32(v.tmp[i:]))
		}
		if len(m.spare) > 0 {
			m.unionSpare()
		}
		return
	}
	if !m.dense {
		if !v.sparse && !v.v1 && len(m.keys) == 0 && len(m.tmp) == 0 {
			// The first sketch, dense: its registers as they are.
			m.regs = append(m.regs[:0], v.regs...)
			m.dense = true
			return
		}
		m.toDense()
	}
	if v.sparse {
		for i := 0; i < len(v.tmp); i += 4 {
			m.insert(binary.BigEndian.Uint32(v.tmp[i:]))
		}
		var last uint32
		for i := 0; i < len(v.stream); {
			x, next, _ := streamVarint(v.stream, i)
			i, last = next, last+x
			m.insert(last)
		}
		return
	}
	if v.v1 {
		for i, x := range v.regs {
			m.regs[2*i] = max(m.regs[2*i], x>>4+v.bias)
			m.regs[2*i+1] = max(m.regs[2*i+1], x&0x0f+v.bias)
		}
		return
	}
	for i, r := range v.regs {
		m.regs[i] = max(m.regs[i], r)
	}
}

// appendStreamKeys appends the keys of a validated compressed-list stream.
func appendStreamKeys(dst []uint32, s []byte) []uint32 {
	var last uint32
	for i := 0; i < len(s); {
		x, next, _ := streamVarint(s, i)
		i, last = next, last+x
		dst = append(dst, last)
	}
	return dst
}

// unionSpare sets m.keys to the sorted union of m.keys and m.spare (both
// strictly increasing), swapping buffers rather than allocating. The
// shorter list's keys are placed in the longer by binary search, and the
// runs between them copied whole: a delta's few keys into a stored list of
// hundreds.
func (m *sketchMerger) unionSpare() {
	if len(m.keys) == 0 {
		m.keys, m.spare = m.spare, m.keys[:0]
		return
	}
	long, short := m.keys, m.spare
	if len(short) > len(long) {
		long, short = short, long
	}
	out := m.union[:0]
	for _, k := range short {
		i, found := slices.BinarySearch(long, k)
		out = append(out, long[:i]...)
		if !found {
			out = append(out, k)
		}
		long = long[i:]
	}
	out = append(out, long...)
	m.keys, m.union = out, m.keys[:0]
}

func (m *sketchMerger) insert(k uint32) {
	i, r := sparseReg(k)
	m.regs[i] = max(m.regs[i], r)
}

// toDense turns the sparse keys so far into registers.
func (m *sketchMerger) toDense() {
	if m.regs == nil {
		m.regs = make([]byte, skM)
	}
	clear(m.regs)
	for _, k := range m.keys {
		m.insert(k)
	}
	for _, k := range m.tmp {
		m.insert(k)
	}
	m.dense = true
}

// appendSketch appends the merged sketch as a day record holds it: its
// length (uvarint), then the sketch; length 0 when nothing was added.
func (m *sketchMerger) appendSketch(dst []byte) []byte {
	if m.n == 0 {
		return binary.AppendUvarint(dst, 0)
	}
	if !m.dense {
		if len(m.tmp) > 0 {
			slices.Sort(m.tmp)
			m.tmp = slices.Compact(m.tmp)
			m.spare = append(m.spare[:0], m.tmp...)
			m.unionSpare()
			m.tmp = m.tmp[:0]
		}
		m.list = m.list[:0]
		var last uint32
		for _, k := range m.keys {
			m.list = binary.AppendUvarint(m.list, uint64(k-last))
			last = k
		}
		if len(m.list) <= skM {
			dst = binary.AppendUvarint(dst, uint64(skHeader+skList+len(m.list)))
			dst = append(dst, skVer, skP, 0, 1, 0, 0, 0, 0)
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.keys)))
			dst = binary.BigEndian.AppendUint32(dst, last)
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.list)))
			return append(dst, m.list...)
		}
		m.toDense()
	}
	dst = binary.AppendUvarint(dst, uint64(skHeader+skM))
	dst = append(dst, skVer, skP, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, skM)
	return append(dst, m.regs...)
}

// sketchError returns why b is not an acceptable visitor sketch: the
// library's own error, as the apply path gave before it merged sketches
// itself.
func sketchError(b []byte) error {
	if _, err := decodeSketch(b); err != nil {
		return err
	}
	return fmt.Errorf("%w: visitor sketch not accepted", ErrMalformed)
}
