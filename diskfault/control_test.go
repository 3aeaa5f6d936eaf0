package diskfault

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{Healthy, Failing, Stalled} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", m.String(), got, err, m)
		}
		if got, err := ParseMode("  " + m.String() + "\n"); err != nil || got != m {
			t.Errorf("ParseMode with white space around %q = %v, %v", m.String(), got, err)
		}
	}
	for _, bad := range []string{"", "fail", "Healthy", "stall ed", "healthy\nfailing", strings.Repeat("x", 100)} {
		if _, err := ParseMode(bad); err == nil {
			t.Errorf("ParseMode(%q): no error", bad)
		}
	}
}

func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"healthy", "failing", "stalled", " stalled\n", "", "fail", "Mode(7)", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMode(s)
		if err != nil {
			return
		}
		// Whatever parses names a mode, and that mode's name parses back.
		if m != Healthy && m != Failing && m != Stalled {
			t.Fatalf("ParseMode(%q) = %v", s, m)
		}
		if back, err := ParseMode(m.String()); err != nil || back != m {
			t.Fatalf("round trip of %v: %v, %v", m, back, err)
		}
		if strings.TrimSpace(s) != m.String() {
			t.Fatalf("ParseMode(%q) = %v: accepted another spelling", s, m)
		}
	})
}

// waitApplied waits until the watcher of path reports mode want.
func waitApplied(t *testing.T, path string, want Mode) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, ok, err := AppliedMode(path)
		if err != nil {
			t.Fatal(err)
		}
		if ok && m == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watcher did not apply %v within 10s (state %v, %v)", want, m, ok)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWatchSwitchesModes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "control")
	fs := Wrap(vfs.NewMem())
	if _, ok, _ := AppliedMode(path); ok {
		t.Fatal("a state before any watcher started")
	}
	w, err := fs.Watch(path, time.Millisecond, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	waitApplied(t, path, Healthy) // no control file: the starting mode is reported

	if err := SetControl(path, Failing); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, path, Failing)
	if _, err := fs.Create("f", vfs.WriteCategoryUnspecified); !errors.Is(err, ErrInjected) {
		t.Fatalf("create on a failing disk: %v", err)
	}
	if err := SetControl(path, Stalled); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, path, Stalled)
	if fs.Mode() != Stalled {
		t.Fatalf("mode %v, want stalled", fs.Mode())
	}
	if err := SetControl(path, Healthy); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, path, Healthy)
	f, err := fs.Create("f", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatalf("create on a healed disk: %v", err)
	}
	_ = f.Close()

	// A control file that does not parse changes nothing.
	if err := os.WriteFile(path, []byte("broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SetControl(path, Failing); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, path, Failing)
	w.Stop()
	w.Stop() // twice is fine
	if err := SetControl(path, Healthy); err != nil {
		t.Fatal(err)
	}
	if fs.Mode() != Failing {
		t.Fatalf("a stopped watcher changed the mode to %v", fs.Mode())
	}
}

// TestWatchAppliesBeforeReturning: a process started with a failing
// control file never writes through a healthy file system.
func TestWatchAppliesBeforeReturning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control")
	if err := SetControl(path, Failing); err != nil {
		t.Fatal(err)
	}
	fs := Wrap(vfs.NewMem())
	w, err := fs.Watch(path, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if fs.Mode() != Failing {
		t.Fatalf("mode %v right after Watch, want failing", fs.Mode())
	}
	if m, ok, err := AppliedMode(path); err != nil || !ok || m != Failing {
		t.Fatalf("state %v, %v, %v; want failing", m, ok, err)
	}
}

func TestWatchRejectsBadControlFileAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control")
	if err := os.WriteFile(path, []byte("sometimes"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Wrap(vfs.NewMem()).Watch(path, 0, nil); err == nil {
		t.Fatal("Watch accepted a control file that names no mode")
	}
}
