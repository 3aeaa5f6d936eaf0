//go:build !linux

package main

import (
	"fmt"
	"io"
	"net"
	"time"
)

// dial opens a TCP connection to hp with TCP_NODELAY (Go's default).
func dial(hp string) (io.ReadWriteCloser, error) {
	c, err := net.Dial("tcp", hp)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	return c, nil
}

// sleepUntil sleeps until the monotonic time t, if it is still ahead.
func sleepUntil(t float64) {
	if d := t - monotonic(); d > 0 {
		time.Sleep(time.Duration(d * 1e9))
	}
}
