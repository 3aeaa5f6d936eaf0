package diskfault

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ControlEnv names the environment variable through which a storage node
// built with the faultinject tag learns its control file (see Watch). The
// production build has no fault code and ignores it.
const ControlEnv = "LINKRAFT_DISKFAULT_CONTROL"

// ControlInterval is how often Watch reads the control file by default.
const ControlInterval = 20 * time.Millisecond

// ParseMode parses a mode's name as Mode.String writes it ("healthy",
// "failing" or "stalled"), ignoring surrounding white space.
func ParseMode(s string) (Mode, error) {
	switch string(bytes.TrimSpace([]byte(s))) {
	case "healthy":
		return Healthy, nil
	case "failing":
		return Failing, nil
	case "stalled":
		return Stalled, nil
	}
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return Healthy, fmt.Errorf("diskfault: unknown mode %q (want healthy, failing or stalled)", s)
}

// StatePath is the file in which Watch reports the mode it applied last,
// beside the control file at path.
func StatePath(path string) string { return path + ".state" }

// SetControl asks the process watching the control file at path to switch
// its disk to mode m. The file is replaced atomically (a rename), so the
// watcher never reads half of it. The switch happens at the watcher's next
// read; AppliedMode tells when it has.
func SetControl(path string, m Mode) error {
	return writeAtomic(path, m.String()+"\n")
}

// AppliedMode returns the mode the watcher of the control file at path
// applied last; ok is false while it has applied none (not started yet).
func AppliedMode(path string) (m Mode, ok bool, err error) {
	b, err := os.ReadFile(StatePath(path))
	if errors.Is(err, os.ErrNotExist) {
		return Healthy, false, nil
	}
	if err != nil {
		return Healthy, false, fmt.Errorf("diskfault: read state: %w", err)
	}
	m, err = ParseMode(string(b))
	if err != nil {
		return Healthy, false, fmt.Errorf("diskfault: state file %s: %w", StatePath(path), err)
	}
	return m, true, nil
}

// Watcher applies the mode named in a control file to an FS. Start it with
// Watch; Stop ends it.
type Watcher struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Watch reads the control file at path now and then every interval (0:
// ControlInterval), and switches f to the mode it names; after each switch
// (and after the first read) it writes the mode to StatePath(path), so the
// test that wrote the control file knows it took effect. A missing control
// file leaves the mode as it is; a control file that does not parse is
// reported to logf (which may be nil) and ignored. The state file is
// written with the os package, not through f: a failing or stalled f does
// not stop the reports.
//
// The first read happens before Watch returns, so a process that starts
// with a control file saying "failing" never writes through a healthy f.
func (f *FS) Watch(path string, interval time.Duration, logf func(format string, args ...any)) (*Watcher, error) {
	if interval <= 0 {
		interval = ControlInterval
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var last []byte
	poll := func() error {
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("diskfault: read control file: %w", err)
		}
		if last != nil && bytes.Equal(b, last) {
			return nil
		}
		last = b
		m, err := ParseMode(string(b))
		if err != nil {
			return err
		}
		f.inj.setMode(m)
		logf("diskfault: disk %s (control file %s)", m, path)
		return writeAtomic(StatePath(path), m.String()+"\n")
	}
	if err := poll(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(StatePath(path)); errors.Is(err, os.ErrNotExist) {
		// No control file yet: report the mode the FS starts in.
		if err := writeAtomic(StatePath(path), f.Mode().String()+"\n"); err != nil {
			return nil, err
		}
	}
	w := &Watcher{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				if err := poll(); err != nil {
					logf("diskfault: %v", err)
				}
			}
		}
	}()
	return w, nil
}

// Stop ends the watcher and waits until its goroutine has returned. The
// FS keeps its current mode. Stop may be called more than once.
func (w *Watcher) Stop() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

// writeAtomic writes s to a temporary file beside path and renames it
// over path.
func writeAtomic(path, s string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("diskfault: write %s: %w", path, err)
	}
	if _, err := tmp.WriteString(s); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("diskfault: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("diskfault: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("diskfault: write %s: %w", path, err)
	}
	return nil
}
