package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"unsafe"
)

// dial opens a TCP connection to hp with TCP_NODELAY on a blocking socket
// read and written with raw system calls, outside the runtime's network
// poller and scheduler: the probe waits on one answer at a time, and
// parking a goroutine for each (or letting the runtime hand its P over
// while a system call blocks) costs futex calls and thread wake-ups worth
// more CPU than the request itself, CPU taken from the processes being
// measured. The command has one goroutine, so blocking its thread is free.
func dial(hp string) (io.ReadWriteCloser, error) {
	addr, err := net.ResolveTCPAddr("tcp", hp)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", hp, err)
	}
	var sa syscall.Sockaddr
	family := syscall.AF_INET
	if ip4 := addr.IP.To4(); ip4 != nil {
		sa = &syscall.SockaddrInet4{Port: addr.Port, Addr: [4]byte(ip4)}
	} else {
		family = syscall.AF_INET6
		sa = &syscall.SockaddrInet6{Port: addr.Port, Addr: [16]byte(addr.IP.To16())}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dial %s: socket: %w", hp, err)
	}
	c := &blockingConn{fd: fd}
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1); err != nil {
		c.Close()
		return nil, fmt.Errorf("dial %s: TCP_NODELAY: %w", hp, err)
	}
	for {
		err = syscall.Connect(fd, sa)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("dial %s: connect: %w", hp, err)
	}
	return c, nil
}

// blockingConn is a connected blocking socket.
type blockingConn struct{ fd int }

// Read reads from the socket; io.EOF once the peer has closed it.
func (c *blockingConn) Read(p []byte) (int, error) {
	for {
		n, err := rawIO(syscall.SYS_READ, c.fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err != 0:
			return 0, fmt.Errorf("read: %w", err)
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Write writes all of p to the socket.
func (c *blockingConn) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := rawIO(syscall.SYS_WRITE, c.fd, p[done:])
		if err == syscall.EINTR {
			continue
		}
		if err != 0 {
			return done, fmt.Errorf("write: %w", err)
		}
		done += n
	}
	return done, nil
}

// rawIO is read(2) or write(2) (trap) of p on fd without telling the
// runtime scheduler, which would otherwise hand this thread's P to another
// thread whenever the call blocks.
func rawIO(trap uintptr, fd int, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

// Close closes the socket.
func (c *blockingConn) Close() error {
	if err := syscall.Close(c.fd); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// sleepUntil sleeps until the monotonic time t, if it is still ahead: one
// clock_nanosleep to that absolute time, a raw system call that blocks the
// thread rather than a runtime timer (see dial for why).
func sleepUntil(t float64) {
	if t <= monotonic() {
		return
	}
	ns := int64(t * 1e9)
	ts := syscall.Timespec{Sec: ns / 1e9, Nsec: ns % 1e9}
	const clockMonotonic, timerAbstime = 1, 1
	for {
		_, _, e := syscall.RawSyscall6(syscall.SYS_CLOCK_NANOSLEEP, clockMonotonic, timerAbstime,
			uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		if e != syscall.EINTR {
			return
		}
	}
}
