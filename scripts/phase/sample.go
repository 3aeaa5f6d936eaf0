package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// sampleEvery is the period of sample.
const sampleEvery = 0.010

// sampleFile writes, every sampleEvery for secs seconds, the monotonic time
// and the user+system clock ticks of each process to the file out, after a
// header line "t NAME...". A process that cannot be read counts 0 ticks.
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
	paths := make([]string, len(procs))
	for i, p := range procs {
		names[i] = p.name
		paths[i] = fmt.Sprintf("/proc/%d/stat", p.pid)
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
		for _, path := range paths {
			ticks, err := readTicks(path)
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

// readTicks reads the user+system clock ticks of the process whose
// /proc/PID/stat is path.
func readTicks(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read ticks: %w", err)
	}
	t, err := parseStatTicks(string(b))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
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
