package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
)

// probeEvery is the period of probe's requests.
const probeEvery = 0.002

// probeFile sends GET /code to hp every probeEvery for secs seconds on one
// keep-alive connection and writes one line "send_time latency_s" per
// answer to the file out. A slot missed while waiting for an answer is
// skipped, so a stall shows as the latency of the requests sent into it,
// not as a backlog.
func probeFile(out string, secs float64, hp, code string) error {
	conn, err := dial(hp)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer conn.Close()
	var rows bytes.Buffer
	if err := probe(&rows, conn, secs, hp, code); err != nil {
		return err
	}
	if err := os.WriteFile(out, rows.Bytes(), 0o644); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	return nil
}

// probe runs the requests of probeFile on conn, writing the rows to rows.
func probe(rows io.Writer, conn io.ReadWriter, secs float64, hp, code string) error {
	req := []byte("GET /" + code + " HTTP/1.1\r\nHost: " + hp + "\r\nUser-Agent: phase-probe/1 Mozilla/5.0\r\n\r\n")
	r := bufio.NewReaderSize(conn, 4096)
	start := monotonic()
	end := start + secs
	line := make([]byte, 0, 32)
	for i := 0; ; i++ {
		due := start + float64(i)*probeEvery
		if due >= end {
			return nil
		}
		if d := due - monotonic(); d > 0 {
			sleepUntil(due)
		} else {
			i += int(math.Floor(-d / probeEvery))
		}
		sent := monotonic()
		if _, err := conn.Write(req); err != nil {
			return fmt.Errorf("probe: send: %w", err)
		}
		if err := readResponse(r); err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		line = strconv.AppendFloat(line[:0], sent, 'f', 6, 64)
		line = append(line, ' ')
		line = strconv.AppendFloat(line, monotonic()-sent, 'f', 6, 64)
		line = append(line, '\n')
		if _, err := rows.Write(line); err != nil {
			return fmt.Errorf("probe: %w", err)
		}
	}
}

// readResponse reads one HTTP/1.1 response from r: the head up to the empty
// line, then Content-Length bytes of body (none without the header).
func readResponse(r *bufio.Reader) error {
	n := 0
	for first := true; ; first = false {
		line, err := r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("connection closed")
			}
			return fmt.Errorf("read answer: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if first {
				return errors.New("read answer: empty status line")
			}
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !first && ok && strings.EqualFold(strings.TrimSpace(name), "Content-Length") {
			n, err = strconv.Atoi(strings.TrimSpace(value))
			if err != nil || n < 0 {
				return fmt.Errorf("read answer: Content-Length %q", value)
			}
		}
	}
	if _, err := r.Discard(n); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("connection closed")
		}
		return fmt.Errorf("read answer body: %w", err)
	}
	return nil
}
