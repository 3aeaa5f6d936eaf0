package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// sampleEvery is the period of sample.
const sampleEvery = 0.010

// sampleFile writes, every sampleEvery for secs seconds, the monotonic time
// and the user+system clock ticks of each process to the file out, after a
// header line "t NAME...". A process that cannot be read (gone, or not
// there at the start) counts 0 ticks.
func sampleFile(out string, secs float64, procs []proc) error {
	f, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	w := bufio.NewWriter(f)
	err = sample(w, secs, procs)
	if ferr := w.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("sample: write %s: %w", out, ferr)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("sample: close %s: %w", out, cerr)
	}
	return err
}

// sample is sampleFile writing to w.
func sample(w io.Writer, secs float64, procs []proc) error {
	names := make([]string, len(procs))
	stats := make([]*statFile, len(procs))
	for i, p := range procs {
		names[i] = p.name
		stats[i] = openStat(p.pid)
		defer stats[i].close()
	}
	if _, err := fmt.Fprintf(w, "t %s\n", strings.Join(names, " ")); err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	end := monotonic() + secs
	next := monotonic()
	line := make([]byte, 0, 128)
	for {
		now := monotonic()
		if now >= end {
			return nil
		}
		line = strconv.AppendFloat(line[:0], now, 'f', 6, 64)
		for _, st := range stats {
			ticks, err := st.ticks()
			if err != nil {
				ticks = 0
			}
			line = append(line, ' ')
			line = strconv.AppendUint(line, ticks, 10)
		}
		line = append(line, '\n')
		if _, err := w.Write(line); err != nil {
			return fmt.Errorf("sample: %w", err)
		}
		next += sampleEvery
		sleepUntil(next)
	}
}

// statFile is a /proc/PID/stat kept open and read again from its start for
// each sample: one system call a sample instead of the five or more of
// opening, reading and closing it.
type statFile struct {
	path string
	fd   int // -1 when the file could not be opened
	buf  []byte
}

// openStat opens /proc/pid/stat; a process that is gone gives a statFile
// whose ticks fail.
func openStat(pid int) *statFile {
	st := &statFile{path: fmt.Sprintf("/proc/%d/stat", pid), buf: make([]byte, 1024)}
	fd, err := syscall.Open(st.path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		fd = -1
	}
	st.fd = fd
	return st
}

// ticks returns the process's user+system clock ticks now.
func (st *statFile) ticks() (uint64, error) {
	if st.fd < 0 {
		return 0, fmt.Errorf("%s: not open", st.path)
	}
	for {
		n, err := syscall.Pread(st.fd, st.buf, 0)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", st.path, err)
		}
		if n == len(st.buf) {
			st.buf = make([]byte, 2*len(st.buf))
			continue
		}
		t, err := parseStatTicks(string(st.buf[:n]))
		if err != nil {
			return 0, fmt.Errorf("%s: %w", st.path, err)
		}
		return t, nil
	}
}

// close closes the file.
func (st *statFile) close() {
	if st.fd >= 0 {
		syscall.Close(st.fd)
		st.fd = -1
	}
}

// parseStatTicks returns utime+stime (fields 14 and 15) of a
// /proc/PID/stat line. The command name (field 2, in parentheses) may hold
// spaces and parentheses itself, so the fields are counted from the last ')'.
func parseStatTicks(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no ')' after the command name")
	}
	fields := strings.Fields(stat[i+1:])
	// After the name: state (3), ppid (4), ..., utime (14), stime (15).
	if len(fields) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(fields))
	}
	utime, err := strconv.ParseUint(fields[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: utime: %w", err)
	}
	stime, err := strconv.ParseUint(fields[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: stime: %w", err)
	}
	return utime + stime, nil
}
