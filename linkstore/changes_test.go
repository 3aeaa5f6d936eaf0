package linkstore

import (
	"slices"
	"testing"

	"github.com/linkraft/linkraft/clicks"
)

// TestChangedCodes: deletes, edits and purges name the codes they may
// change; creates, create batches, clicks and undecodable commands none.
func TestChangedCodes(t *testing.T) {
	codes := func(cmd []byte) []string {
		var out []string
		ChangedCodes(cmd, func(code string) { out = append(out, code) })
		return out
	}
	for name, tc := range map[string]struct {
		cmd  []byte
		want []string
	}{
		"delete": {AppendDelete(nil, Delete{Partition: 1, Code: "abcdefg", DeletedAtMs: 5}), []string{"abcdefg"}},
		"edit": {AppendEdit(nil, Edit{Partition: 1, Code: "my-alias", UpdatedAtMs: 5, Fields: EditURL, URL: "https://example.com/"}),
			[]string{"my-alias"}},
		"purge": {AppendPurge(nil, Purge{CutoffMs: 9, Items: []PurgeItem{{1, "aaaaaaa"}, {2, "bbbbbbb"}}}),
			[]string{"aaaaaaa", "bbbbbbb"}},
		"create":           {EncodeCreate(Create{Partition: 1, URL: "https://example.com/", Alias: "x-alias"}), nil},
		"create batch":     {AppendCreateBatch(nil, CreateBatch{Items: []BatchItem{{Create: Create{Partition: 1, URL: "https://e.x/"}}}}), nil},
		"clicks":           {AppendClickBatch(nil, clicks.Batch{}), nil},
		"truncated delete": {AppendDelete(nil, Delete{Partition: 1, Code: "abcdefg"})[:4], nil},
		"other version":    {append([]byte{0x7f}, AppendDelete(nil, Delete{Partition: 1, Code: "abcdefg"})[1:]...), nil},
		"empty":            {nil, nil},
	} {
		if got := codes(tc.cmd); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", name, got, tc.want)
		}
	}
}
