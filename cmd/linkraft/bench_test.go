package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/linkraft/linkraft/bench"
	"github.com/valyala/fasthttp"
)

// startRedirectServer serves a 301 for every GET path, like the nginx
// baseline, and 405 for anything else.
func startRedirectServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if !ctx.IsGet() {
				ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
				return
			}
			ctx.Response.Header.Set(fasthttp.HeaderLocation, "https://example.com/target")
			ctx.SetStatusCode(fasthttp.StatusMovedPermanently)
		},
		MaxIdleWorkerDuration: 50 * time.Millisecond,
		CloseOnShutdown:       true,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func TestBenchCommand(t *testing.T) {
	url := startRedirectServer(t)
	dir := t.TempDir()
	for _, label := range []string{"nginx", "other"} {
		var stdout, stderr bytes.Buffer
		out := filepath.Join(dir, label+".json")
		args := []string{"-target", url, "-workload", "redirect",
			"-codes-from", "none", "-links", "50", "-c", "2", "-duration", "200ms", "-warmup", "0",
			"-out", out, "-label", label, "-progress=false"}
		if label == "other" {
			// This test process serves the redirects: measure it too.
			args = append(args, "-cpu-of", fmt.Sprintf("server=%d", os.Getpid()))
		}
		err := runBench(context.Background(), args, &stdout, &stderr)
		if err != nil {
			t.Fatalf("bench: %v\n%s", err, stderr.String())
		}
		if !strings.Contains(stdout.String(), "| redirect |") || stderr.Len() != 0 {
			t.Errorf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
		r, err := bench.ReadResultFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if r.Label != label || r.Warmup != 0 || r.Ops["redirect"].OK == 0 || r.Total.Errors != 0 {
			t.Errorf("result: label %q warmup %v ok %d errors %v", r.Label, r.Warmup, r.Ops["redirect"].OK, r.Total.ErrorKinds)
		}
	}

	var stdout, stderr bytes.Buffer
	err := runBench(context.Background(), []string{"-combine", filepath.Join(dir, "*.json"), "-baseline", "nginx"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("combine: %v", err)
	}
	if !strings.Contains(stdout.String(), "| nginx | redirect |") || !strings.Contains(stdout.String(), "| other | redirect |") ||
		!strings.Contains(stdout.String(), "1.00×") {
		t.Errorf("combined table:\n%s", stdout.String())
	}
	// The CPU table: the generator for both runs, the server for one.
	if !strings.Contains(stdout.String(), "| run | workload | load | generator | server |") ||
		!regexp.MustCompile(`\| nginx \| redirect \| closed c=2 \| [0-9.]+ \| — \|`).MatchString(stdout.String()) ||
		!regexp.MustCompile(`\| other \| redirect \| closed c=2 \| [0-9.]+ \| [0-9.]+ \|`).MatchString(stdout.String()) {
		t.Errorf("combined CPU table:\n%s", stdout.String())
	}
}

func TestBenchCommandInterrupted(t *testing.T) {
	url := startRedirectServer(t)
	out := filepath.Join(t.TempDir(), "r.json")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	var stdout, stderr bytes.Buffer
	err := runBench(ctx, []string{"-target", url, "-codes-from", "none", "-links", "10", "-c", "2",
		"-duration", "1m", "-warmup", "0", "-out", out, "-progress=false"}, &stdout, &stderr)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("interrupted run: %v, want context.Canceled", err)
	}
	r, rerr := bench.ReadResultFile(out)
	if rerr != nil || !r.Interrupted || r.Total.OK == 0 || !strings.Contains(stdout.String(), "| redirect |") {
		t.Errorf("interrupted run wrote %+v (%v) and printed:\n%s", r, rerr, stdout.String())
	}
}

func TestBenchCommandErrors(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := runBench(context.Background(), []string{"-c", "0"}, &stdout, &stderr); !errors.Is(err, errUsage) {
		t.Errorf("-c 0: %v, want a usage error", err)
	}
	if err := runBench(context.Background(), []string{"-cpu-of", "nodes=x"}, &stdout, &stderr); !errors.Is(err, errUsage) {
		t.Errorf("-cpu-of nodes=x: %v, want a usage error", err)
	}
	if err := runBench(context.Background(), []string{"-bogus"}, &stdout, &stderr); !errors.Is(err, errUsage) {
		t.Errorf("unknown flag: %v, want a usage error", err)
	}
	err := runBench(context.Background(), []string{"-workload", "read", "-target", "http://127.0.0.1:1"}, &stdout, &stderr)
	if !errors.Is(err, bench.ErrConfig) {
		t.Errorf("unknown workload: %v, want bench.ErrConfig", err)
	}
	if err := runBench(context.Background(), []string{"-combine", filepath.Join(t.TempDir(), "*.json")}, &stdout, &stderr); err == nil {
		t.Error("combine of no files succeeded")
	}
}

func TestBenchCPUProfile(t *testing.T) {
	url := startRedirectServer(t)
	prof := filepath.Join(t.TempDir(), "gen.cpu.pprof")
	var stdout, stderr bytes.Buffer
	err := runBench(context.Background(), []string{"-target", url, "-workload", "redirect",
		"-codes-from", "none", "-links", "50", "-c", "2", "-duration", "200ms", "-warmup", "0",
		"-progress=false", "-cpuprofile", prof}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	// A CPU profile is a gzipped protocol buffer; an empty one would be
	// a header only, so a profile of a run is longer than that.
	f, err := os.Open(prof)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", prof, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil || !bytes.Contains(raw, []byte("samples")) || !bytes.Contains(raw, []byte("nanoseconds")) {
		t.Fatalf("%s is not a CPU profile (%d bytes, %v)", prof, len(raw), err)
	}

	err = runBench(context.Background(), []string{"-target", url, "-codes-from", "none", "-duration", "100ms",
		"-progress=false", "-cpuprofile", filepath.Join(t.TempDir(), "no", "such", "dir")}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "cpu profile") {
		t.Fatalf("unwritable profile path: %v", err)
	}
}
