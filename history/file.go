package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxLine bounds one JSON line when decoding.
const maxLine = 1 << 20

// Encode writes ops as JSON lines, one Op per line.
func Encode(w io.Writer, ops []Op) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for _, op := range ops {
		if err := enc.Encode(op); err != nil {
			return fmt.Errorf("history: encode op %d: %w", op.ID, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("history: write: %w", err)
	}
	return nil
}

// Decode reads JSON lines written by Encode and validates the result (see
// Validate). Blank lines are skipped; unknown fields are an error.
func Decode(r io.Reader) ([]Op, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var ops []Op
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var op Op
		if err := dec.Decode(&op); err != nil {
			return nil, fmt.Errorf("history: line %d: %w", line, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("history: line %d: trailing data after the operation", line)
		}
		ops = append(ops, op)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("history: a line is longer than %d bytes: %w", maxLine, err)
		}
		return nil, fmt.Errorf("history: read: %w", err)
	}
	if err := Validate(ops); err != nil {
		return nil, err
	}
	return ops, nil
}

// Save writes ops to path as JSON lines, replacing the file.
func Save(path string, ops []Op) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("history: save: %w", err)
	}
	if err := Encode(f, ops); err != nil {
		_ = f.Close()
		return fmt.Errorf("history: save %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("history: save %s: %w", path, err)
	}
	return nil
}

// Load reads a history saved by Save.
func Load(path string) ([]Op, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("history: load: %w", err)
	}
	defer func() { _ = f.Close() }()
	ops, err := Decode(f)
	if err != nil {
		return nil, fmt.Errorf("history: load %s: %w", path, err)
	}
	return ops, nil
}
