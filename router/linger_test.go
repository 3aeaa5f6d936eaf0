package router

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A client still sending a body far over the server's limit gets the JSON
// 413, not a connection reset: the server lingers after answering and
// reads what is still coming before it closes. Without that the close of
// a socket with unread data sends a RST, and the client's kernel discards
// the answer it had not read yet.
func TestOversizedBodyGets413NotReset(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	body := `{"url": "https://example.com/", "alias": "` + strings.Repeat("x", 4<<20) + `"}`
	for i := range 20 {
		a := tr.do(t, http.MethodPost, "/api/v1/links", "application/json", body)
		if a.status != http.StatusRequestEntityTooLarge || errorCode(t, a) != codeBodyTooLarge {
			t.Fatalf("request %d: %d %s", i, a.status, a.body)
		}
	}
	if creates, _ := tr.fake.counts(); creates != 0 {
		t.Fatalf("%d creates from oversized bodies", creates)
	}
}

// The same at the socket: the client writes the whole oversized body
// before it reads anything, as a simple client does, and then reads the
// 413; the server must not have reset the connection meanwhile.
func TestOversizedBodyRawClientReads413(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	addr := strings.TrimPrefix(tr.base, "http://")
	for i := range 10 {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
			t.Fatal(err)
		}
		const size = 2 << 20
		if _, err := fmt.Fprintf(c, "POST /api/v1/links HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte(strings.Repeat("x", size))); err != nil {
			t.Fatalf("connection %d: writing the body: %v", i, err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("connection %d: reading the answer: %v", i, err)
		}
		_ = resp.Body.Close()
		_ = c.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("connection %d: status %d", i, resp.StatusCode)
		}
	}
}

// Shutdown ends a connection lingering for a client that keeps sending,
// instead of leaving it to its timeout.
func TestShutdownEndsLingering(t *testing.T) {
	tr := startRouter(t, testConfig(t, 1000))
	tr.lingering.timeout = time.Hour // only Shutdown can end it within the test
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(tr.base, "http://"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(c, "POST /api/v1/links HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 1<<30); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The server half-closed and lingers, reading: writes still succeed.
	waitLingering(t, tr.Router, 1)
	chunk := []byte(strings.Repeat("x", 64<<10))
	if _, err := c.Write(chunk); err != nil {
		t.Fatalf("write while the server lingers: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	waitLingering(t, tr.Router, 0)
	// The connection is closed for good: the client's writes fail (the
	// kernel answers them with a RST) long before the hour.
	for {
		_, err := c.Write(chunk)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("the server still reads the connection after Shutdown: %v", err)
		}
		if err != nil {
			break
		}
	}
}

// waitLingering waits up to 30s until r has n lingering connections.
func waitLingering(t *testing.T, r *Router, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.lingering.mu.Lock()
		got := len(r.lingering.conns)
		r.lingering.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lingering connections, want %d", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
