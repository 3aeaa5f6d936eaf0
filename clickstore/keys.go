package clickstore

import (
	"encoding/binary"
)

// Key kinds, the byte after the partition. linkstore uses 'c', 'n', 'u'.
const (
	kindDay   = 's'
	kindTotal = 't'
	kindFlush = 'f'
)

// markPrefix starts the flush-mark keys, after every partition's range.
var markPrefix = []byte{0xff, 0xff, 0xff, 0xff, 0xff, kindFlush}

// DayKey returns the key of code's record of day in partition p.
func DayKey(p uint32, code string, day uint32) []byte {
	return appendDayKey(make([]byte, 0, 10+len(code)), p, code, day)
}

func appendDayPrefix(dst []byte, p uint32, code string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, p)
	dst = append(dst, kindDay)
	dst = append(dst, code...)
	return append(dst, 0x00)
}

func appendDayKey(dst []byte, p uint32, code string, day uint32) []byte {
	return binary.BigEndian.AppendUint32(appendDayPrefix(dst, p, code), day)
}

// TotalKey returns the key of code's totals in partition p.
func TotalKey(p uint32, code string) []byte {
	return appendTotalKey(make([]byte, 0, 5+len(code)), p, code)
}

func appendTotalKey(dst []byte, p uint32, code string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, p)
	dst = append(dst, kindTotal)
	return append(dst, code...)
}

// MarkKey returns the key of router's last applied flush sequence.
func MarkKey(router string) []byte {
	k := make([]byte, 0, len(markPrefix)+len(router))
	k = append(k, markPrefix...)
	return append(k, router...)
}
