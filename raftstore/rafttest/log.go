package rafttest

import (
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// logWriter sends log lines to t.Log until it is stopped, so a goroutine
// that logs after the test ended cannot panic the test binary.
type logWriter struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *logWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

// NewLogger returns an hclog.Logger that writes to t.Log (shown when the
// test fails, or with -v) and goes quiet when the test's cleanup ends.
func NewLogger(t testing.TB, name string, level hclog.Level) hclog.Logger {
	w := &logWriter{t: t}
	// Registered before the caller's cleanups, so it runs after them: the
	// logger stays usable while the things that log are being stopped.
	t.Cleanup(w.stop)
	return hclog.New(&hclog.LoggerOptions{
		Name:            name,
		Level:           level,
		Output:          w,
		IncludeLocation: false,
	})
}
