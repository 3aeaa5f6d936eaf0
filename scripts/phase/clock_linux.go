package main

import (
	"syscall"
	"unsafe"
)

// monotonic returns CLOCK_MONOTONIC in seconds: one clock for every process
// on the machine, unlike the monotonic reading of time.Now, which counts
// from this process's start.
func monotonic() float64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		panic("clock_gettime(CLOCK_MONOTONIC): " + e.Error())
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}
