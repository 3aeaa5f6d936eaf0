package node

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestHCLogAdapter(t *testing.T) {
	var buf bytes.Buffer
	l := newHCLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	raftLog := l.Named("raft").With("group", 7)

	raftLog.Info("entering leader state") // an internal: Debug, filtered out
	if buf.Len() != 0 {
		t.Fatalf("an hclog Info passed an Info handler: %q", buf.String())
	}
	if raftLog.IsInfo() || !raftLog.IsWarn() {
		t.Fatalf("IsInfo %v IsWarn %v with an Info handler", raftLog.IsInfo(), raftLog.IsWarn())
	}
	raftLog.Warn("failed to contact", "server-id", "n2")
	out := buf.String()
	for _, want := range []string{"level=WARN", `msg="failed to contact"`, "logger=raft", "group=7", "server-id=n2"} {
		if !strings.Contains(out, want) {
			t.Fatalf("%q lacks %q", out, want)
		}
	}
	buf.Reset()
	raftLog.Named("snapshots").Error("boom")
	if out := buf.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "logger=raft.snapshots") {
		t.Fatalf("named error: %q", out)
	}
	buf.Reset()
	l.SetLevel(hclog.Off)
	raftLog.Error("silenced")
	if buf.Len() != 0 || l.GetLevel() != hclog.Off {
		t.Fatalf("SetLevel(Off) did not silence the derived loggers: %q", buf.String())
	}
	l.SetLevel(hclog.Trace)
	raftLog.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Error}).Print("from the standard library")
	if out := buf.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "from the standard library") {
		t.Fatalf("standard logger: %q", out)
	}
	if raftLog.Name() != "raft" || len(raftLog.ImpliedArgs()) != 2 || l.ResetNamed("x").Name() != "x" {
		t.Fatalf("names and args: %q %v", raftLog.Name(), raftLog.ImpliedArgs())
	}
}
