package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

// foldBins is the number of bins fold splits the period into.
const foldBins = 20

// cpuWindow is the number of sample intervals one CPU reading spans: 5 of
// 10 ms, so that 10 ms clock ticks average out.
const cpuWindow = 5

// samples is a parsed sample file: the process names and, per row, the
// time followed by each process's clock ticks.
type samples struct {
	names []string
	rows  [][]float64
}

// parseSamples parses a file written by sample.
func parseSamples(r io.Reader) (samples, error) {
	var s samples
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return s, fmt.Errorf("samples: %w", err)
		}
		return s, fmt.Errorf("samples: empty, want a header line")
	}
	head := strings.Fields(sc.Text())
	if len(head) == 0 || head[0] != "t" {
		return s, fmt.Errorf("samples: header %q, want \"t NAME...\"", sc.Text())
	}
	s.names = head[1:]
	for n := 2; sc.Scan(); n++ {
		row, err := parseFloats(sc.Text())
		if err != nil {
			return s, fmt.Errorf("samples: line %d: %w", n, err)
		}
		if row == nil {
			continue
		}
		if len(row) != len(s.names)+1 {
			return s, fmt.Errorf("samples: line %d: %d fields, want %d", n, len(row), len(s.names)+1)
		}
		s.rows = append(s.rows, row)
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("samples: %w", err)
	}
	return s, nil
}

// parseProbe parses a file written by probe into send times and latencies
// in seconds.
func parseProbe(r io.Reader) (times, lats []float64, err error) {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		row, err := parseFloats(sc.Text())
		if err != nil {
			return nil, nil, fmt.Errorf("probe: line %d: %w", n, err)
		}
		if row == nil {
			continue
		}
		if len(row) != 2 {
			return nil, nil, fmt.Errorf("probe: line %d: %d fields, want 2", n, len(row))
		}
		times = append(times, row[0])
		lats = append(lats, row[1])
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("probe: %w", err)
	}
	return times, lats, nil
}

// parseFloats parses the blank-separated numbers of line; nil for a blank line.
func parseFloats(line string) ([]float64, error) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return nil, nil
	}
	row := make([]float64, len(fields))
	for i, f := range fields {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, fmt.Errorf("field %d: %w", i+1, err)
		}
		row[i] = v
	}
	return row, nil
}

// binOf returns the bin of time t in a period folded into foldBins bins.
func binOf(t, period float64) int {
	m := math.Mod(t, period)
	if m < 0 {
		m += period
	}
	return min(foldBins-1, int(m/period*foldBins))
}

// pct returns the q-quantile of v (the value at index q*len(v) once
// sorted, the last for q near 1); NaN for no values. It sorts v.
func pct(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	sort.Float64s(v)
	return v[min(len(v)-1, int(q*float64(len(v))))]
}

// mean returns the mean of v, 0 for no values.
func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// fnum formats v with prec decimals, NaN as "nan".
func fnum(v float64, prec int) string {
	if math.IsNaN(v) {
		return "nan"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// foldFiles reads the sample file and, unless probeFile is "", the probe
// file, and writes fold's table to w.
func foldFiles(w io.Writer, period, hz float64, samplesFile, probeFile string) error {
	f, err := os.Open(samplesFile)
	if err != nil {
		return fmt.Errorf("fold: %w", err)
	}
	s, err := parseSamples(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("fold: %s: %w", samplesFile, err)
	}
	var times, lats []float64
	if probeFile != "" {
		f, err := os.Open(probeFile)
		if err != nil {
			return fmt.Errorf("fold: %w", err)
		}
		times, lats, err = parseProbe(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("fold: %s: %w", probeFile, err)
		}
	}
	bw := bufio.NewWriter(w)
	fold(bw, period, hz, s, probeFile != "", times, lats)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("fold: %w", err)
	}
	return nil
}

// fold writes a Markdown table of s and, when withProbe, of the probe's
// send times and latencies (seconds), folded over period seconds in
// foldBins bins: per bin, each process's mean CPU in cores (over windows
// of cpuWindow samples, at hz ticks per second) and the probe's count and
// p50/p99 latency in ms. The rows start at the bin where the CPU of the
// processes whose name starts with "n" (the nodes) peaks; a line on how
// concentrated that CPU is follows the table.
func fold(w io.Writer, period, hz float64, s samples, withProbe bool, times, lats []float64) {
	cpu := make([][][]float64, foldBins)
	for k := range cpu {
		cpu[k] = make([][]float64, len(s.names))
	}
	for i := 0; i+cpuWindow < len(s.rows); i++ {
		a, b := s.rows[i], s.rows[i+cpuWindow]
		dt := b[0] - a[0]
		if dt <= 0 {
			continue
		}
		k := binOf((a[0]+b[0])/2, period)
		for j := range s.names {
			cpu[k][j] = append(cpu[k][j], (b[j+1]-a[j+1])/hz/dt)
		}
	}
	var nodes []int
	for j, n := range s.names {
		if strings.HasPrefix(n, "n") {
			nodes = append(nodes, j)
		}
	}
	load := make([]float64, foldBins)
	shift := 0
	for k := range load {
		for _, j := range nodes {
			load[k] += mean(cpu[k][j])
		}
		if load[k] > load[shift] {
			shift = k
		}
	}
	lat := make([][]float64, foldBins)
	for i, t := range times {
		k := binOf(t, period)
		lat[k] = append(lat[k], lats[i]*1000)
	}

	cols := make([]string, len(s.names))
	for j, n := range s.names {
		cols[j] = n + " cores"
	}
	head := "| phase (ms) | " + strings.Join(cols, " | ")
	sep := "|--:|" + strings.Repeat("--:|", len(s.names))
	if withProbe {
		head += " | probe n | probe p50 ms | probe p99 ms |"
		sep += strings.Repeat("--:|", 3)
	} else {
		head += " |"
	}
	fmt.Fprintln(w, head)
	fmt.Fprintln(w, sep)
	for i := range foldBins {
		k := (i + shift) % foldBins
		cells := make([]string, 0, len(s.names)+3)
		for j := range s.names {
			cells = append(cells, fnum(mean(cpu[k][j]), 2))
		}
		if withProbe {
			cells = append(cells, strconv.Itoa(len(lat[k])), fnum(pct(lat[k], 0.5), 2), fnum(pct(lat[k], 0.99), 2))
		}
		fmt.Fprintf(w, "| %s | %s |\n", fnum(float64(i)*period*1000/foldBins, 0), strings.Join(cells, " | "))
	}
	if len(nodes) == 0 {
		return
	}
	total, peak2 := 0.0, 0.0
	for k := range load {
		total += load[k]
		peak2 = max(peak2, load[k]+load[(k+1)%foldBins])
	}
	if total <= 0 {
		fmt.Fprintln(w, "\nNodes: no CPU in the samples.")
		return
	}
	fmt.Fprintf(w, "\nNodes: %.2f cores on average; the busiest 100 ms of the interval "+
		"hold %.1f %% of their CPU (even: %.0f %%), the busiest 50 ms %.2fx the mean.\n",
		total/foldBins, 100*peak2/total, 200.0/foldBins, load[shift]/(total/foldBins))
}
