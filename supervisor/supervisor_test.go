package supervisor

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/linkraft/linkraft/internal/testutil"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPrefixesRestartsAndStops(t *testing.T) {
	defer goleak.VerifyNone(t)
	out := &testutil.SyncBuffer{}
	marker := t.TempDir() + "/ran"
	specs := []Spec{
		// A long-running child that reports SIGTERM.
		{Name: "a", Path: "/bin/sh", Args: []string{"-c", `trap 'echo bye; exit 0' TERM; echo hello; while true; do sleep 0.05; done`}},
		// A child that crashes once, then stays up.
		{Name: "b", Path: "/bin/sh", Args: []string{"-c", `if [ -e ` + marker + ` ]; then echo second; while true; do sleep 0.05; done; else touch ` + marker + `; echo first; exit 3; fi`}},
	}
	sup := New(specs, Options{Output: out, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, StopTimeout: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()

	waitFor(t, "both children to print", func() bool {
		s := out.String()
		return strings.Contains(s, "[a] hello") && strings.Contains(s, "[b] second")
	})
	if !strings.Contains(out.String(), "[b] exited unexpectedly (exit status 3)") {
		t.Errorf("crash not reported:\n%s", out.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if !strings.Contains(out.String(), "[a] bye") {
		t.Errorf("child a was not stopped with SIGTERM:\n%s", out.String())
	}
}

func TestKillsAChildThatIgnoresSIGTERM(t *testing.T) {
	defer goleak.VerifyNone(t)
	out := &testutil.SyncBuffer{}
	specs := []Spec{{Name: "stubborn", Path: "/bin/sh", Args: []string{"-c", `trap '' TERM; echo up; while true; do sleep 0.05; done`}}}
	sup := New(specs, Options{Output: out, StopTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Run(ctx) }()
	waitFor(t, "child to start", func() bool { return strings.Contains(out.String(), "[stubborn] up") })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if !strings.Contains(out.String(), "killing") {
		t.Errorf("expected a kill after the stop timeout:\n%s", out.String())
	}
}

func TestStartFailureStopsEarlierChildren(t *testing.T) {
	defer goleak.VerifyNone(t)
	out := &testutil.SyncBuffer{}
	specs := []Spec{
		{Name: "ok", Path: "/bin/sh", Args: []string{"-c", `while true; do sleep 0.05; done`}},
		{Name: "missing", Path: "/nonexistent/program"},
	}
	err := New(specs, Options{Output: out}).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("Run error = %v, want one naming the missing child", err)
	}
}
