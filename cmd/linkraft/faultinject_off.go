//go:build !faultinject

package main

import (
	"log/slog"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// nodeDiskFaults returns the node's file system: nil, the OS's. Only a
// build with the faultinject tag can inject disk faults.
func nodeDiskFaults(*slog.Logger) (fs vfs.FS, stop func(), err error) {
	return nil, func() {}, nil
}
