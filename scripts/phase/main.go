// Command phase shows where inside each click flush interval the CPU and
// the latency of a running cluster go; scripts/bench-open.sh builds and
// runs it. It needs nothing but Go and Linux's /proc.
//
//	phase sample OUT SECONDS NAME=PID...
//	    every ~10 ms, the monotonic time and the user+system clock ticks
//	    of each PID (/proc/PID/stat), one line each, to OUT.
//	phase probe OUT SECONDS HOST:PORT CODE
//	    one GET /CODE every 2 ms on one keep-alive connection (a slot
//	    missed while waiting for an answer is skipped, so a stall shows as
//	    the latency of the requests sent into it, not as a backlog), one
//	    line "send_time latency_s" each, to OUT.
//	phase fold [-hz N] PERIOD SAMPLES [PROBE]
//	    folds both over PERIOD seconds in 20 bins: per bin, each process's
//	    mean CPU (cores) and the probe's p50/p99 latency and count, as a
//	    Markdown table. The bins are aligned so that bin 0 holds the nodes'
//	    peak. N is the clock ticks per second of /proc/PID/stat (100, or
//	    `getconf CLK_TCK`).
//	phase field [-or VALUE] FILE KEY...
//	    the value at KEY... (object keys, outermost first) of the JSON file
//	    FILE, such as a `linkraft bench -out` result; VALUE when a key is
//	    absent (an error without -or).
//
// sample and probe stamp their lines with the same clock (CLOCK_MONOTONIC),
// so that fold can put both on one time axis.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

const usage = `usage:
  phase sample OUT SECONDS NAME=PID...
  phase probe OUT SECONDS HOST:PORT CODE
  phase fold [-hz N] PERIOD SAMPLES [PROBE]
  phase field [-or VALUE] FILE KEY...
`

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "phase:", err)
		os.Exit(1)
	}
}

// errUsage is returned for a command line that names no known subcommand
// or lacks its arguments.
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg + "\n" + usage }

// run runs the subcommand args[0] with the rest of args, writing what it
// prints to stdout.
func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage{"no subcommand"}
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "sample":
		if len(args) < 3 {
			return errUsage{"sample: want OUT SECONDS NAME=PID..."}
		}
		secs, err := parseSeconds(args[1])
		if err != nil {
			return err
		}
		procs, err := parseProcs(args[2:])
		if err != nil {
			return err
		}
		return sampleFile(args[0], secs, procs)
	case "probe":
		if len(args) != 4 {
			return errUsage{"probe: want OUT SECONDS HOST:PORT CODE"}
		}
		secs, err := parseSeconds(args[1])
		if err != nil {
			return err
		}
		return probeFile(args[0], secs, args[2], args[3])
	case "fold":
		fs := flag.NewFlagSet("fold", flag.ContinueOnError)
		hz := fs.Float64("hz", 100, "clock ticks per second of /proc/PID/stat")
		if err := fs.Parse(args); err != nil {
			return err
		}
		args = fs.Args()
		if len(args) < 2 || len(args) > 3 || *hz <= 0 {
			return errUsage{"fold: want [-hz N] PERIOD SAMPLES [PROBE]"}
		}
		period, err := parseSeconds(args[0])
		if err != nil {
			return err
		}
		probe := ""
		if len(args) == 3 {
			probe = args[2]
		}
		return foldFiles(stdout, period, *hz, args[1], probe)
	case "field":
		fs := flag.NewFlagSet("field", flag.ContinueOnError)
		or := fs.String("or", "", "the value printed when a key is absent")
		if err := fs.Parse(args); err != nil {
			return err
		}
		args = fs.Args()
		if len(args) < 2 {
			return errUsage{"field: want [-or VALUE] FILE KEY..."}
		}
		orSet := false
		fs.Visit(func(f *flag.Flag) { orSet = orSet || f.Name == "or" })
		return printField(stdout, args[0], args[1:], *or, orSet)
	}
	return errUsage{fmt.Sprintf("unknown subcommand %q", cmd)}
}

// parseSeconds parses a positive number of seconds ("30", "0.5").
func parseSeconds(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0) {
		return 0, fmt.Errorf("seconds %q: want a positive number", s)
	}
	return v, nil
}

// proc is one process sample names: its column name and its pid.
type proc struct {
	name string
	pid  int
}

// parseProcs parses NAME=PID arguments.
func parseProcs(args []string) ([]proc, error) {
	procs := make([]proc, 0, len(args))
	for _, a := range args {
		name, pid, ok := strings.Cut(a, "=")
		n, err := strconv.Atoi(pid)
		if !ok || name == "" || strings.ContainsAny(name, " \t") || err != nil || n <= 0 {
			return nil, fmt.Errorf("process %q: want NAME=PID", a)
		}
		procs = append(procs, proc{name, n})
	}
	return procs, nil
}
