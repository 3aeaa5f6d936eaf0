package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// adminServer serves Go's profiler (/debug/pprof/) on the admin-only
// address of a node or router (admin_addr in cluster.yaml). It has its own
// mux: nothing else is served there, and the profiler is never served on
// the public or the internal RPC listeners.
type adminServer struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// startAdmin listens on addr and serves the profiler; an empty addr starts
// nothing and returns nil (whose Close is a no-op).
func startAdmin(addr string, logger *slog.Logger) (*adminServer, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	a := &adminServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan error, 1),
	}
	go func() { a.done <- a.srv.Serve(ln) }()
	logger.Info("admin listener serving /debug/pprof/", "admin_addr", ln.Addr().String())
	return a, nil
}

// Addr returns the address the admin listener is bound to.
func (a *adminServer) Addr() string { return a.ln.Addr().String() }

// Close stops the admin listener: it waits up to 5 s for requests in
// flight (a CPU profile runs for its whole duration), then closes their
// connections, and waits for the server's goroutine.
func (a *adminServer) Close() error {
	if a == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := a.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = a.srv.Close()
	}
	if serr := <-a.done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("stop admin listener: %w", err)
	}
	return nil
}
