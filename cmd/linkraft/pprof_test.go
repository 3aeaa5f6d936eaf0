package main

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAdminServesPprofOnly(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if a, err := startAdmin("", logger); a != nil || err != nil {
		t.Fatalf("startAdmin without an address: %v, %v; want nothing", a, err)
	}
	a, err := startAdmin("127.0.0.1:0", logger)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = a.Close()
		}
	})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := client.Get("http://" + a.Addr() + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp.StatusCode, string(b)
	}
	if code, body := get("/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Fatalf("/debug/pprof/: %d %.200s", code, body)
	}
	if code, body := get("/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("goroutine profile: %d %.200s", code, body)
	}
	if code, _ := get("/"); code != http.StatusNotFound {
		t.Fatalf("/: %d, want 404 (only the profiler is served)", code)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if c, err := net.DialTimeout("tcp", a.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatalf("the admin listener still accepts after Close")
	}
}

func TestAdminRefusesBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if a, err := startAdmin(ln.Addr().String(), slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		_ = a.Close()
		t.Fatal("startAdmin on a busy address succeeded")
	}
}
