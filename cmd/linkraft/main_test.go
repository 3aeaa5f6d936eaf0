package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUsageErrors: every subcommand answers --help with exit 0 and its
// usage, and a usage mistake with exit 2 and a message naming it.
func TestUsageErrors(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(cfg, []byte("cluster: {partitions: 0}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Usage: linkraft <subcommand>"},
		{[]string{"--help"}, 0, "Usage: linkraft <subcommand>"},
		{[]string{"nosuch"}, 2, `unknown subcommand "nosuch"`},
		{[]string{"node", "--help"}, 0, "Usage: linkraft node"},
		{[]string{"router", "--help"}, 0, "Usage: linkraft router"},
		{[]string{"up", "--help"}, 0, "Usage: linkraft up"},
		{[]string{"admin", "--help"}, 0, "Usage: linkraft admin status"},
		{[]string{"node", "--config", cfg}, 2, "--id is required"},
		{[]string{"router", "--bogus"}, 2, "flag provided but not defined"},
		{[]string{"node", "--config", cfg, "--id", "n1", "extra"}, 2, "unexpected arguments"},
		{[]string{"node", "--config", cfg, "--id", "n1"}, 1, "partitions"},
		{[]string{"up", "--config", filepath.Join(t.TempDir(), "missing.yaml")}, 1, "missing.yaml"},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, &stdout, &stderr)
		out := stdout.String() + stderr.String()
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("linkraft %q: exit %d, want %d; output does not contain %q:\n%s", tc.args, code, tc.code, tc.want, out)
		}
	}
}
