//go:build faultinject

package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/linkraft/linkraft/diskfault"
)

// nodeDiskFaults, in a build with the faultinject tag, puts the node's
// Pebble DB on a diskfault.FS driven by the control file named in
// $LINKRAFT_DISKFAULT_CONTROL (see diskfault.Watch): a test writes
// "failing", "stalled" or "healthy" there and the node's disk follows.
// Without the variable the node runs on the plain file system. stop ends
// the watcher; call it after the node has closed.
func nodeDiskFaults(logger *slog.Logger) (fs vfs.FS, stop func(), err error) {
	path := os.Getenv(diskfault.ControlEnv)
	if path == "" {
		return nil, func() {}, nil
	}
	dfs := diskfault.Wrap(vfs.Default)
	w, err := dfs.Watch(path, 0, func(format string, args ...any) {
		logger.Warn(fmt.Sprintf(format, args...))
	})
	if err != nil {
		return nil, nil, fmt.Errorf("disk fault control: %w", err)
	}
	logger.Warn("disk fault injection on (faultinject build)", "control", path)
	return dfs, w.Stop, nil
}
