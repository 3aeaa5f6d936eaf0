package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/linkraft/linkraft/router"
	"github.com/linkraft/linkraft/shardrpc"
)

func runRouter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("router --config FILE --id ID",
		"Runs one router: the public HTTP API (shorten, redirect, link records,\n"+
			"health). SIGINT or SIGTERM stops it after in-flight requests finish.", stderr)
	proc, err := parseProcessFlags(fs, args, "router")
	if err != nil {
		return err
	}
	cfg, id, logger := proc.cfg, proc.id, proc.logger
	client := shardrpc.NewClient(cfg, shardrpc.ClientOptions{})
	defer client.Close()
	r, err := router.New(cfg, id, client, router.Options{Logger: logger})
	if err != nil {
		return err
	}
	self, _ := cfg.Router(id) // router.New checked it
	admin, err := startAdmin(self.AdminAddr, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := admin.Close(); err != nil {
			logger.Error("stop admin listener", "err", err)
		}
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- r.ListenAndServe() }()
	logger.Info("router started")
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("stopping")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, router.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
}
