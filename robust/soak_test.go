package robust

import (
	"os"
	"testing"
	"time"
)

// scenarios lists every scenario test, for TestSoak.
var scenarios = []struct {
	name string
	run  func(*testing.T)
}{
	{"TestBaseline", TestBaseline},
	{"TestLeaderStopLoop", TestLeaderStopLoop},
	{"TestLostResponses", TestLostResponses},
	{"TestRouterCutOff", TestRouterCutOff},
	{"TestDiskFailure", TestDiskFailure},
	{"TestDiskStall", TestDiskStall},
	{"TestLostDiskSnapshot", TestLostDiskSnapshot},
	{"TestLeaderKillLoop", TestLeaderKillLoop},
	{"TestMinorityPartition", TestMinorityPartition},
	{"TestRollingRestart", TestRollingRestart},
	{"TestPausedLeader", TestPausedLeader},
	{"TestLostDisk", TestLostDisk},
}

// TestSoak runs every scenario, each with a fresh seed, over and over
// while $LINKRAFT_SOAK (a duration, e.g. 10m) lasts; `make soak` runs it.
// A failed round leaves its history and the checker's report in
// $LINKRAFT_REPORT_DIR/<scenario>-<seed> and the soak goes on.
func TestSoak(t *testing.T) {
	v := os.Getenv("LINKRAFT_SOAK")
	if v == "" {
		t.Skip("set LINKRAFT_SOAK=<duration> (make soak DURATION=10m) to run the scenarios in a loop")
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("LINKRAFT_SOAK=%q: %v", v, err)
	}
	end := time.Now().Add(d)
	rounds, failed := 0, []string{}
	for time.Now().Before(end) {
		for _, s := range scenarios {
			if !time.Now().Before(end) {
				break
			}
			rounds++
			start := time.Now()
			result := "PASS"
			if !t.Run(s.name, s.run) {
				failed = append(failed, s.name)
				result = "FAIL"
			}
			t.Logf("soak round %d: %s %s in %s", rounds, s.name, result, time.Since(start).Round(time.Millisecond))
		}
	}
	t.Logf("soak of %s: %d scenario runs, %d failed %v", d, rounds, len(failed), failed)
}
