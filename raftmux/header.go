package raftmux

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HeaderVersion is the first byte a dialer writes on every connection. The
// high nibble (0xB) marks the linkraft Raft multiplexer, the low nibble is the
// protocol version (1). A connection whose first byte differs is not ours (or
// speaks a version this build does not know) and is closed.
const HeaderVersion byte = 0xB1

// MaxHeaderLen is the longest valid header: the version byte plus the longest
// uvarint encoding of a uint64 (10 bytes).
const MaxHeaderLen = 1 + binary.MaxVarintLen64

// ErrBadHeader is returned (wrapped) by ReadHeader for a connection that does
// not start with a valid header.
var ErrBadHeader = errors.New("raftmux: bad connection header")

// AppendHeader appends the connection header for group to b and returns the
// extended slice.
func AppendHeader(b []byte, group uint64) []byte {
	b = append(b, HeaderVersion)
	return binary.AppendUvarint(b, group)
}

// ReadHeader reads a connection header from r and returns its group ID. It
// reads one byte at a time and never past the end of the header, so the rest
// of the stream is left for the group's transport.
//
// The group ID must be a minimal (canonical) uvarint of at most 10 bytes and
// must not be 0. Every malformed header gives an error wrapping ErrBadHeader;
// an I/O error (including a deadline) is returned wrapped as it is.
func ReadHeader(r io.Reader) (uint64, error) {
	var buf [1]byte
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return 0, fmt.Errorf("raftmux: read header version: %w", err)
	}
	if buf[0] != HeaderVersion {
		return 0, fmt.Errorf("%w: version byte %#x, want %#x", ErrBadHeader, buf[0], HeaderVersion)
	}
	var group uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("raftmux: read header group: %w", err)
		}
		b := buf[0]
		if i == binary.MaxVarintLen64-1 && b > 1 {
			return 0, fmt.Errorf("%w: group ID overflows uint64", ErrBadHeader)
		}
		group |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, fmt.Errorf("%w: group ID is not minimally encoded", ErrBadHeader)
			}
			if group == 0 {
				return 0, fmt.Errorf("%w: group ID 0", ErrBadHeader)
			}
			return group, nil
		}
	}
	// Unreachable: the tenth byte is either rejected above or ends the loop.
	return 0, fmt.Errorf("%w: group ID too long", ErrBadHeader)
}
