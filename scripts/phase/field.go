package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// printField writes the value at keys (object keys, outermost first) of
// the JSON file path to w: a number as written in the file, a string
// unquoted, anything else as compact JSON. When a key is absent it writes
// or if orSet, and fails otherwise; any other error fails.
func printField(w io.Writer, path string, keys []string, or string, orSet bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("field: %w", err)
	}
	v, err := field(b, keys)
	var noKey errNoKey
	switch {
	case errors.As(err, &noKey) && orSet:
		v = or
	case err != nil:
		return fmt.Errorf("field: %s: %w", path, err)
	}
	if _, err := fmt.Fprintln(w, v); err != nil {
		return fmt.Errorf("field: %w", err)
	}
	return nil
}

// errNoKey is returned by field for a key the document does not have.
type errNoKey struct{ path string }

func (e errNoKey) Error() string { return "no key " + e.path }

// field returns the value at keys of the JSON document doc, formatted as
// printField writes it.
func field(doc []byte, keys []string) (string, error) {
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return "", fmt.Errorf("decode: %w", err)
	}
	for i, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return "", fmt.Errorf("%s is not an object", strings.Join(keys[:i], "."))
		}
		if v, ok = m[k]; !ok {
			return "", errNoKey{strings.Join(keys[:i+1], ".")}
		}
	}
	switch x := v.(type) {
	case json.Number:
		return x.String(), nil
	case string:
		return x, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode: %w", err)
	}
	return string(b), nil
}
