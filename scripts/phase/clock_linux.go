package main

import (
	"syscall"
	"time"
	"unsafe"
)

// monoBase and monoStart pin the runtime's monotonic clock to
// CLOCK_MONOTONIC: on Linux both count the same nanoseconds, so the offset
// read once here holds for the life of the process.
var monoBase, monoStart = clockMonotonic(), time.Now()

// monotonic returns CLOCK_MONOTONIC in seconds: one clock for every process
// on the machine, unlike the monotonic reading of time.Now, which counts
// from this process's start. It is read through time.Since (the vDSO, no
// system call) from the offset taken at start.
func monotonic() float64 {
	return monoBase + time.Since(monoStart).Seconds()
}

// clockMonotonic reads CLOCK_MONOTONIC in seconds with a system call.
func clockMonotonic() float64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		panic("clock_gettime(CLOCK_MONOTONIC): " + e.Error())
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}
