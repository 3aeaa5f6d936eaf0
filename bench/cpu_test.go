package bench

import (
	"bytes"
	"errors"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// Fields 14 and 15 (utime, stime) are 1200 and 34 here.
	tail := " S 1 1 1 0 -1 4194560 9000 0 0 0 1200 34 0 0 20 0 7 0 100 1000000 2000 18446744073709551615\n"
	cases := []struct {
		stat string
		want int64
	}{
		{"4242 (linkraft)" + tail, 1234},
		{"4242 (a b) c) (d)" + tail, 1234}, // a command name with spaces and parentheses
		{"4242 ()" + tail, 1234},
	}
	for _, tc := range cases {
		got, err := parseProcStat([]byte(tc.stat))
		if err != nil || got != tc.want {
			t.Errorf("parseProcStat(%q) = %d, %v; want %d", tc.stat, got, err, tc.want)
		}
	}
	for _, bad := range []string{
		"",
		"4242 linkraft S 1 1 1 0 -1 4194560 9000 0 0 0 1200 34",
		"4242 (x) S 1 1 1 0 -1 4194560 9000 0 0 0 1200",
		"4242 (x) S 1 1 1 0 -1 4194560 9000 0 0 0 12x0 34",
		"4242 (x) S 1 1 1 0 -1 4194560 9000 0 0 0 -5 34",
	} {
		if _, err := parseProcStat([]byte(bad)); !errors.Is(err, errProcStat) {
			t.Errorf("parseProcStat(%q): %v, want errProcStat", bad, err)
		}
	}
	// The running process's own file parses.
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if _, err := parseProcStat(b); err != nil {
		t.Errorf("/proc/self/stat: %v", err)
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("4242 (linkraft) S 1 1 1 0 -1 4194560 9000 0 0 0 1200 34 0 0 20 0 7 0 100"))
	f.Add([]byte("1 ((sd-pam)) S 0 1 1 0 -1 0 0 0 0 0 9223372036854775807 1"))
	f.Add([]byte(")"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseProcStat(b)
		if err != nil {
			if !errors.Is(err, errProcStat) || n != 0 {
				t.Fatalf("error %v with %d", err, n)
			}
			return
		}
		if n < 0 {
			t.Fatalf("negative CPU time %d from %q", n, b)
		}
	})
}

func TestParseProcessGroup(t *testing.T) {
	g, err := ParseProcessGroup("nodes=11,12,13")
	if err != nil || g.Name != "nodes" || len(g.PIDs) != 3 || g.PIDs[0] != 11 || g.PIDs[2] != 13 {
		t.Fatalf("ParseProcessGroup: %+v, %v", g, err)
	}
	for _, bad := range []string{
		"", "nodes", "nodes=", "=1", "nodes=1,", "nodes=,1", "nodes=0", "nodes=-1", "nodes=+1", "nodes=01",
		"nodes=1,1", "no des=1", "generator=1", strings.Repeat("n", 33) + "=1", "nodes=99999999999999999999",
	} {
		if g, err := ParseProcessGroup(bad); err == nil {
			t.Errorf("ParseProcessGroup(%q) = %+v, want an error", bad, g)
		}
	}
}

func FuzzParseProcessGroup(f *testing.F) {
	for _, s := range []string{"nodes=1,2,3", "router=77", "x=", "=1", "a=1,1", "a=1,b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseProcessGroup(s)
		if err != nil {
			return
		}
		// What parses is a valid Config group, and prints back as given.
		if err := (Config{Target: "http://127.0.0.1:1", CPUOf: []ProcessGroup{g}}).withDefaults().validate(); err != nil {
			t.Fatalf("%q parses to %+v, which Config refuses: %v", s, g, err)
		}
		if back := g.String(); back != s {
			t.Fatalf("%q parses to %+v, which prints as %q", s, g, back)
		}
	})
}

// TestRunMeasuresCPU measures the test process itself as a group: it
// serves and generates, and the harness's own CPU is the same process's,
// so the two must agree within the /proc tick.
func TestRunMeasuresCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	srv := newTestServer(t, nil)
	cfg := quick(srv.url, WorkloadRedirect)
	cfg.Duration = 600 * time.Millisecond // enough CPU to count in ticks
	cfg.CPUOf = []ProcessGroup{{Name: "self", PIDs: []int{os.Getpid()}}}
	res := mustRun(t, cfg)
	if res.CPUError != "" || len(res.CPU) != 2 {
		t.Fatalf("CPU %+v, error %q", res.CPU, res.CPUError)
	}
	gen, self := res.CPU[0], res.CPU[1]
	if gen.Name != GeneratorGroup || self.Name != "self" || len(self.PIDs) != 1 {
		t.Fatalf("groups %+v", res.CPU)
	}
	if gen.Seconds <= 0 || gen.PerRequest <= 0 {
		t.Errorf("the generator used no CPU: %+v", gen)
	}
	if d := math.Abs(gen.Seconds - self.Seconds); d > 0.03+0.2*gen.Seconds {
		t.Errorf("the same process measured %.3fs by getrusage and %.3fs from /proc", gen.Seconds, self.Seconds)
	}
	want := self.Seconds * 1e6 / float64(res.Total.OK)
	if math.Abs(self.PerRequest-want) > 0.051 {
		t.Errorf("per request %.1fµs, want %.1f", self.PerRequest, want)
	}

	var md bytes.Buffer
	if err := res.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "CPU per successful request") || !strings.Contains(md.String(), " self ") {
		t.Errorf("markdown lacks the CPU line:\n%s", md.String())
	}
	var tbl bytes.Buffer
	old := *res
	old.CPU = nil // a result from before CPU was measured
	if err := WriteTable(&tbl, []*Result{res, &old}, ""); err != nil {
		t.Fatal(err)
	}
	checkMarkdownTables(t, tbl.String(), 2+2)
	if !strings.Contains(tbl.String(), "| generator | self |") || !strings.Contains(tbl.String(), "| — | — |") {
		t.Errorf("CPU table:\n%s", tbl.String())
	}
}

// TestRunRefusesGoneProcess: a group whose process cannot be read fails
// the run before it makes any link.
func TestRunRefusesGoneProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	gone := cmd.ProcessState.Pid() // exited and reaped
	srv := newTestServer(t, nil)
	cfg := quick(srv.url, WorkloadRedirect)
	cfg.CPUOf = []ProcessGroup{{Name: "gone", PIDs: []int{gone}}}
	if _, err := Run(t.Context(), cfg); !errors.Is(err, ErrConfig) {
		t.Fatalf("Run with a gone process: %v, want ErrConfig", err)
	}
	if n := srv.posts.Load(); n != 0 {
		t.Errorf("%d links created before the refusal", n)
	}
	if _, err := sampleCPU(cfg.CPUOf); err == nil {
		t.Error("sampleCPU of a gone process succeeded")
	}
}
