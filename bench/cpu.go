package bench

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPU accounting: on a machine that the harness shares with the target
// (the benchmark topology runs every process on one host), throughput moves
// with whatever else runs, but the CPU each process spends per request
// moves far less, so it is the figure that compares two builds or two
// machines. A run always measures its own CPU (the generator's); with
// Config.CPUOf it also measures other local processes, read from
// /proc/PID/stat, over exactly the recorded window.

// GeneratorGroup is the name of the harness's own CPU in Result.CPU.
const GeneratorGroup = "generator"

// ProcessGroup names local processes whose CPU a run measures together,
// such as "nodes" and the PIDs of the three storage nodes.
type ProcessGroup struct {
	Name string
	PIDs []int
}

// String returns g in the form ParseProcessGroup parses: "name=pid,pid".
func (g ProcessGroup) String() string {
	ids := make([]string, len(g.PIDs))
	for i, pid := range g.PIDs {
		ids[i] = strconv.Itoa(pid)
	}
	return g.Name + "=" + strings.Join(ids, ",")
}

// maxGroupPIDs bounds the PIDs of one group.
const maxGroupPIDs = 1024

// ParseProcessGroup parses "name=pid[,pid...]" (the -cpu-of flag). The
// name is 1 to 32 letters, digits, '-' or '_', and not GeneratorGroup;
// each PID is a decimal number > 0, at most once.
func ParseProcessGroup(s string) (ProcessGroup, error) {
	name, list, ok := strings.Cut(s, "=")
	if !ok {
		return ProcessGroup{}, fmt.Errorf("process group %q: want name=pid[,pid...]", s)
	}
	if err := checkGroupName(name); err != nil {
		return ProcessGroup{}, err
	}
	g := ProcessGroup{Name: name}
	for _, f := range strings.Split(list, ",") {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 || f != strconv.Itoa(pid) {
			return ProcessGroup{}, fmt.Errorf("process group %q: %q is not a process ID", name, f)
		}
		if slices.Contains(g.PIDs, pid) {
			return ProcessGroup{}, fmt.Errorf("process group %q: process %d is listed twice", name, pid)
		}
		if len(g.PIDs) == maxGroupPIDs {
			return ProcessGroup{}, fmt.Errorf("process group %q: more than %d processes", name, maxGroupPIDs)
		}
		g.PIDs = append(g.PIDs, pid)
	}
	return g, nil
}

// checkGroupName checks a process group's name.
func checkGroupName(name string) error {
	if name == "" || len(name) > 32 {
		return fmt.Errorf("process group name %q: want 1 to 32 characters", name)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("process group name %q: only letters, digits, '-' and '_'", name)
		}
	}
	if name == GeneratorGroup {
		return fmt.Errorf("process group name %q is the harness's own", name)
	}
	return nil
}

// CPUUse is the CPU a group of processes used in a run's recorded window.
type CPUUse struct {
	// Name is the group's name (GeneratorGroup for the harness itself).
	Name string `json:"name"`
	// PIDs are the group's processes; empty for the generator.
	PIDs []int `json:"pids,omitempty"`
	// Seconds is the user + system CPU time of the group in the window.
	Seconds float64 `json:"cpu_s"`
	// PerRequest is Seconds per successful request of the run, in
	// microseconds: 0 when no request succeeded.
	PerRequest float64 `json:"us_per_request"`
}

// userHZ is the unit of the CPU times in /proc/PID/stat: USER_HZ, which
// Linux fixes at 100 for user space whatever the kernel's own tick.
const userHZ = 100

// errProcStat is wrapped by the errors of parseProcStat.
var errProcStat = errors.New("malformed /proc/PID/stat")

// parseProcStat returns utime + stime, in USER_HZ ticks, from the contents
// of /proc/PID/stat. The command name (field 2) is in parentheses and may
// hold spaces and parentheses itself, so the fields are counted from the
// last ')'.
func parseProcStat(b []byte) (int64, error) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: no command name", errProcStat)
	}
	// After ") ": field 3 (state) onwards; utime and stime are fields 14
	// and 15, so the 12th and 13th of these.
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: %d fields after the command name, want at least 13", errProcStat, len(f))
	}
	var t int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || t > math.MaxInt64-n {
			return 0, fmt.Errorf("%w: CPU time %q", errProcStat, v)
		}
		t += n
	}
	return t, nil
}

// groupTicks returns the summed utime + stime ticks of the group's
// processes.
func groupTicks(g ProcessGroup) (int64, error) {
	var t int64
	for _, pid := range g.PIDs {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return 0, fmt.Errorf("process group %q: CPU time of process %d: %w", g.Name, pid, err)
		}
		n, err := parseProcStat(b)
		if err != nil {
			return 0, fmt.Errorf("process group %q: process %d: %w", g.Name, pid, err)
		}
		t += n
	}
	return t, nil
}

// selfCPU returns the harness process's user + system CPU time so far.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("CPU time of the harness: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// cpuSample is the CPU time so far of the generator and of each group.
type cpuSample struct {
	self   time.Duration
	groups []int64 // ticks, in the order of Config.CPUOf
}

// sampleCPU reads the CPU time of the harness and of every group.
func sampleCPU(groups []ProcessGroup) (cpuSample, error) {
	var s cpuSample
	var err error
	if s.self, err = selfCPU(); err != nil {
		return s, err
	}
	s.groups = make([]int64, len(groups))
	for i, g := range groups {
		if s.groups[i], err = groupTicks(g); err != nil {
			return s, err
		}
	}
	return s, nil
}

// cpuUses turns two samples, taken at the start and the end of the
// recorded window, into the generator's and each group's use, per one of
// ok requests.
func cpuUses(groups []ProcessGroup, from, to cpuSample, ok int64) []CPUUse {
	use := func(name string, pids []int, secs float64) CPUUse {
		u := CPUUse{Name: name, PIDs: pids, Seconds: round3(secs)}
		if ok > 0 {
			u.PerRequest = round1(secs * 1e6 / float64(ok))
		}
		return u
	}
	out := []CPUUse{use(GeneratorGroup, nil, (to.self - from.self).Seconds())}
	for i, g := range groups {
		out = append(out, use(g.Name, g.PIDs, float64(to.groups[i]-from.groups[i])/userHZ))
	}
	return out
}

// round1 rounds v to one decimal.
func round1(v float64) float64 { return math.Round(v*10) / 10 }
